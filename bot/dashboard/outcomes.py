"""Outcome reports (an admin: every client; a counselor: their own) and one client's export and
erasure. The figures are defined in `bot/reports.py`; export and erasure are `bot/privacy.py`'s,
the same ones `flask participant export/erase` run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Regexp

from .. import privacy
from ..models import CrisisEvent, ExerciseSession, Message, MoodCheckin, Outbox, SafetyPlan
from ..reports import (
    MAX_WEEKS,
    MIN_WEEKS,
    Report,
    build_report,
    chart_data,
    clamp_weeks,
    export_csv,
    report_csv,
    report_window,
)
from . import bp
from .access import audit, client_or_404, db, now


def _report() -> tuple[Report, int]:
    weeks = clamp_weeks(request.args.get("weeks", type=int))
    moment = now()
    start, end = report_window(moment, weeks)
    titles = {skill_id: str(skill.title) for skill_id, skill in current_app.extensions["library"].skills.items()}
    counselor_id = None if current_user.is_admin else current_user.id
    with db().session() as s:
        report = build_report(s, counselor_id=counselor_id, start=start, end=end, now=moment, skill_titles=titles)
    return report, weeks


@bp.get("/reports")
@login_required
def reports() -> str:
    report, weeks = _report()
    return render_template("dashboard/reports.html", report=report, data=chart_data(report), weeks=weeks,
                           min_weeks=MIN_WEEKS, max_weeks=MAX_WEEKS)


def _csv(body: str, filename: str) -> Response:
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/reports.csv")
@login_required
def reports_csv() -> Response:
    report, _ = _report()
    return _csv(report_csv(report), f"outcomes-{report.start:%Y-%m-%d}-to-{report.end:%Y-%m-%d}.csv")


# --- one client's record: export and erasure -----------------------------------------------------


@bp.get("/clients/<int:participant_id>/export.csv")
@login_required
def client_export(participant_id: int) -> Response:
    def work(s: Session) -> str:
        participant = client_or_404(s, participant_id)
        audit(s, "export", participant.id, format="csv")
        s.flush()  # the export lists this export too
        return export_csv(privacy.export(s, participant))

    body = db().run(work)
    return _csv(body, f"client-{participant_id}-export-{now():%Y-%m-%d}.csv")


class EraseForm(FlaskForm):
    confirm = StringField(
        "Last 4 digits of the client's phone number",
        validators=[DataRequired(), Length(min=4, max=4), Regexp(r"^[0-9]{4}$", message="Type four digits.")],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": "4"},
    )


@dataclass(frozen=True)
class _ToErase:
    """What an erasure removes and what it keeps, counted for the confirmation page."""

    label: str
    erased: bool
    messages: int
    unknown_number_messages: int
    outbox: int
    safety_plan: int
    exercises: int
    checkins: int
    events: int


def _count(s: Session, query: Any) -> int:
    return int(s.scalar(query) or 0)


def _to_erase(s: Session, participant_id: int) -> _ToErase:
    p = client_or_404(s, participant_id)
    return _ToErase(
        label=p.name or f"Client {p.id}",
        erased=p.status == privacy.ERASED,
        messages=_count(s, select(func.count(Message.id)).where(Message.participant_id == p.id)),
        unknown_number_messages=_count(s, select(func.count(Message.id)).where(
            Message.phone == p.phone, Message.participant_id.is_(None))),
        outbox=_count(s, select(func.count(Outbox.id)).where(Outbox.participant_id == p.id)),
        safety_plan=_count(s, select(func.count(SafetyPlan.id)).where(SafetyPlan.participant_id == p.id)),
        exercises=_count(s, select(func.count(ExerciseSession.id)).where(ExerciseSession.participant_id == p.id)),
        checkins=_count(s, select(func.count(MoodCheckin.id)).where(MoodCheckin.participant_id == p.id)),
        events=_count(s, select(func.count(CrisisEvent.id)).where(CrisisEvent.participant_id == p.id)),
    )


@bp.route("/clients/<int:participant_id>/erase", methods=["GET", "POST"])
@login_required
def client_erase(participant_id: int) -> Any:
    form = EraseForm()
    with db().session() as s:
        summary = _to_erase(s, participant_id)
    if summary.erased:
        flash(f"Client {participant_id}'s record was already erased.", "info")
        return redirect(url_for("dashboard.clients"))
    if form.validate_on_submit():
        typed = (form.confirm.data or "").strip()

        def work(s: Session) -> dict[str, int] | None:
            participant = client_or_404(s, participant_id)
            if participant.status == privacy.ERASED or participant.phone[-4:] != typed:
                return None
            return privacy.erase(s, participant, current_user.email, now())

        counts = db().run(work)
        if counts is not None:
            flash(f"Client {participant_id}'s record is erased: {counts['messages']} messages, "
                  f"{counts['outbox']} outgoing texts and the safety plan removed; exercise ratings, "
                  "check-ins and event counts kept without their name or number.", "success")
            return redirect(url_for("dashboard.clients"))
        form.confirm.errors = ["Those are not the last 4 digits of this client's phone number."]
    status = 422 if request.method == "POST" else 200
    return render_template("dashboard/reports_erase.html", form=form, summary=summary,
                           participant_id=participant_id), status

