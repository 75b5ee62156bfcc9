"""One client's record (timeline, distress chart, skills that helped) and managing the client:
settings, pausing nudges, discharge with aftercare, reassignment (admin) and a second consent
invitation. Every page and change is limited to the counselor's own clients (`client_or_404`) and
written to the audit log. The reading and the rules live in `bot.records`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, DateField, IntegerField, SelectChoice, SelectMultipleField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from .. import diary, inbound, records
from ..conversation import allowed_time
from ..models import Counselor, Participant
from ..vocabulary import FLAGS
from . import bp
from .access import audit, client_or_404, db, now

MAX_PAGE = 10_000
DISCHARGE_AFTERCARE_MAX = 90  # days of aftercare nudges the discharge form offers


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SettingsForm(FlaskForm):
    """The client's settings, with the field names of the enrollment form (the number is not here)."""

    name = StringField("Name", validators=[Optional(), Length(max=120)])
    timezone = StringField("Time zone", validators=[DataRequired(), Length(max=64)],
                           description="An IANA zone name, e.g. America/New_York or America/Chicago.")
    nudge_time = StringField("Daily nudge time", validators=[DataRequired(), Length(max=16)],
                             description="The client's local time, e.g. 10:00 or 7pm.")
    nudge_days = StringField("Nudge days", validators=[DataRequired(), Length(max=60)],
                             description="daily, weekdays, mon-fri or mon,wed,fri.")
    quiet_start = StringField("Texts allowed from", validators=[DataRequired(), Length(max=16)],
                              description="No automated text before this local time.")
    quiet_end = StringField("Texts allowed until", validators=[DataRequired(), Length(max=16)],
                            description="No automated text after this local time.")
    discreet = BooleanField("Discreet wording (nudges reveal nothing on a lock screen)")
    flags = MultiCheckboxField("Medical and clearance flags",
                               choices=[SelectChoice(f, f.replace("_", " ")) for f in FLAGS], validate_choice=False)
    admission_date = DateField("Admission date", validators=[Optional()])
    discharge_date = DateField("Discharge date", validators=[Optional()])
    aftercare_days = IntegerField("Aftercare days", validators=[InputRequired(),
                                                                 NumberRange(0, records.MAX_AFTERCARE_DAYS)],
                                  description="Days of nudges after the discharge date.")


def _library() -> Any:
    return current_app.extensions["library"]


def _title_of(library: Any) -> Callable[[str], str]:
    def title(skill_id: str) -> str:
        try:
            return str(library.skill(skill_id).title)
        except KeyError:
            return skill_id  # a skill since removed from the library
    return title


def _label(participant: Participant) -> str:
    return participant.name or f"Client {participant.id}"


def _back(participant_id: int) -> BaseResponse:
    return redirect(url_for("dashboard.client", participant_id=participant_id))


def _require_form() -> None:
    """Every change is a form post carrying the page's CSRF token."""
    if not FlaskForm().validate_on_submit():
        abort(400)


# --- the record ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordView:
    participant: Participant
    counselor: Counselor
    timeline: records.TimelinePage
    points: list[records.RatingPoint]
    helped: list[records.SkillHelp]
    counselors: list[Counselor]
    diary: diary.WeekGrid


@bp.get("/clients/<int:participant_id>")
@login_required
def client(participant_id: int) -> str:
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    title_of = _title_of(_library())

    def read(s: Session) -> RecordView:
        participant = client_or_404(s, participant_id)
        audit(s, "view_client", participant.id, page=page)
        counselors: list[Counselor] = []
        if current_user.is_admin:
            counselors = list(s.scalars(select(Counselor).where(Counselor.active.is_(True))
                                        .order_by(Counselor.name, Counselor.id)))
        return RecordView(
            participant=participant,
            counselor=s.get_one(Counselor, participant.counselor_id),
            timeline=records.timeline(s, participant, title_of, page=page),
            points=records.rating_points(s, participant.id, title_of),
            helped=records.skills_helped(s, participant.id, title_of),
            counselors=counselors,
            diary=diary.week_grid(s, participant.id, records.local_date(now(), records.zone_of(participant.timezone)),
                                  card=_library().diary),
        )

    view = db().run(read)
    participant = view.participant
    zone = records.zone_of(participant.timezone)
    moment = now()
    return render_template(
        "dashboard/client.html",
        p=participant, counselor=view.counselor, timeline=view.timeline, points=view.points,
        chart=records.chart_data(view.points, participant.timezone), helped=view.helped,
        counselors=view.counselors, label=_label(participant),
        when=lambda at: records.local_time(at, zone),
        pause=records.pause_state(participant, moment),
        last_nudge_day=records.last_program_day(participant),
        today=records.local_date(moment, zone),
        days=records.days_text(participant.nudge_days),
        crisis_url=lambda event_id: url_for("dashboard.crisis", event_id=event_id),
        plan_url=url_for("dashboard.plan", participant_id=participant.id),
        aftercare_max=DISCHARGE_AFTERCARE_MAX,
        grid=view.diary,
    )


# --- settings ----------------------------------------------------------------------------------------


def _form_data(participant: Participant) -> dict[str, Any]:
    return {
        "name": participant.name or "", "timezone": participant.timezone, "nudge_time": participant.nudge_time,
        "nudge_days": records.days_text(participant.nudge_days), "quiet_start": participant.quiet_start,
        "quiet_end": participant.quiet_end, "discreet": participant.discreet, "flags": list(participant.flags or []),
        "admission_date": participant.admission_date, "discharge_date": participant.discharge_date,
        "aftercare_days": participant.aftercare_days,
    }


def diary_time_allowed(diary_time: str, clean: dict[str, Any]) -> bool:
    return bool(allowed_time(diary_time, clean["quiet_start"], clean["quiet_end"]))


def _settings_input(form: SettingsForm) -> records.SettingsInput:
    return records.SettingsInput(
        name=form.name.data or "", timezone=form.timezone.data or "", nudge_time=form.nudge_time.data or "",
        nudge_days=form.nudge_days.data or "", quiet_start=form.quiet_start.data or "",
        quiet_end=form.quiet_end.data or "", discreet=bool(form.discreet.data), flags=list(form.flags.data or []),
        admission_date=form.admission_date.data, discharge_date=form.discharge_date.data,
        aftercare_days=form.aftercare_days.data,
    )


@bp.route("/clients/<int:participant_id>/settings", methods=["GET", "POST"])
@login_required
def client_settings(participant_id: int) -> Any:
    def load(s: Session) -> Participant:
        participant = client_or_404(s, participant_id)
        if request.method == "GET":
            audit(s, "view_client_settings", participant.id)
        return participant

    current = db().run(load)
    form = SettingsForm(data=_form_data(current))
    if form.validate_on_submit():
        clean, errors = records.check_settings(_settings_input(form))
        if not errors and current.diary_enabled and not diary_time_allowed(current.diary_time, clean):
            errors["quiet_end"] = (f"the diary card is asked at {current.diary_time}: keep it inside the allowed "
                                   "hours, or change the diary time first")
        for name, message in errors.items():
            form[name].errors = [*form[name].errors, message]
        if not errors:
            def save(s: Session) -> list[str]:
                participant = client_or_404(s, participant_id)
                changed = records.apply_settings(participant, clean)
                audit(s, "client_settings", participant.id, fields=changed)
                return changed

            changed = db().run(save)
            flash(f"Settings saved ({', '.join(changed)} changed)." if changed else "Nothing changed.", "success")
            return _back(participant_id)
    status = 400 if request.method == "POST" else 200
    return render_template("dashboard/client_settings.html", form=form, p=current, label=_label(current)), status


# --- nudges, discharge, counselor, invitation ---------------------------------------------------------


def _change(participant_id: int, work: Callable[[Session, Participant], tuple[str, str]]) -> BaseResponse:
    """Run one change to a client of mine in a transaction, flash its message, go back to the record."""
    _require_form()
    message, category = db().run(lambda s: work(s, client_or_404(s, participant_id)))
    flash(message, category)
    return _back(participant_id)


@bp.post("/clients/<int:participant_id>/pause")
@login_required
def client_pause(participant_id: int) -> BaseResponse:
    def pause(s: Session, participant: Participant) -> tuple[str, str]:
        records.set_paused(participant, True)
        audit(s, "pause_nudges", participant.id)
        return f"Daily nudges for {_label(participant)} are paused until you resume them.", "success"

    return _change(participant_id, pause)


@bp.post("/clients/<int:participant_id>/resume")
@login_required
def client_resume(participant_id: int) -> BaseResponse:
    def resume(s: Session, participant: Participant) -> tuple[str, str]:
        records.set_paused(participant, False)
        audit(s, "resume_nudges", participant.id)
        return f"Daily nudges for {_label(participant)} are on again.", "success"

    return _change(participant_id, resume)


@bp.post("/clients/<int:participant_id>/discharge")
@login_required
def client_discharge(participant_id: int) -> BaseResponse:
    raw = (request.form.get("aftercare_days") or "").strip()
    days = int(raw) if raw.isdigit() else -1

    def discharge(s: Session, participant: Participant) -> tuple[str, str]:
        if not 0 <= days <= DISCHARGE_AFTERCARE_MAX:
            return f"Aftercare must be a whole number of days from 0 to {DISCHARGE_AFTERCARE_MAX}.", "error"
        today = records.local_date(now(), records.zone_of(participant.timezone))
        last: date = records.discharge(participant, today, days)
        audit(s, "discharge", participant.id, discharge_date=today.isoformat(), aftercare_days=days)
        return (f"{_label(participant)} is discharged as of {today:%d %b %Y}; daily nudges end after "
                f"{last:%d %b %Y}.", "success")

    return _change(participant_id, discharge)


@bp.post("/clients/<int:participant_id>/reassign")
@login_required
def client_reassign(participant_id: int) -> BaseResponse:
    if not current_user.is_admin:
        abort(404)
    raw = (request.form.get("counselor_id") or "").strip()

    def reassign(s: Session, participant: Participant) -> tuple[str, str]:
        target = s.get(Counselor, int(raw)) if raw.isdigit() else None
        if target is None or not target.active:
            return "Choose an active counselor.", "error"
        if target.id == participant.counselor_id:
            return f"{_label(participant)} is already with {target.name}.", "info"
        before = s.get_one(Counselor, participant.counselor_id)
        participant.counselor_id = target.id
        audit(s, "reassign", participant.id, **{"from": before.email, "to": target.email})
        return f"{_label(participant)} is now with {target.name}.", "success"

    return _change(participant_id, reassign)


@bp.post("/clients/<int:participant_id>/invite")
@login_required
def client_invite(participant_id: int) -> BaseResponse:
    _require_form()
    library = _library()
    program = current_app.config["PROGRAM_NAME"]

    def invite(s: Session) -> int:
        participant = client_or_404(s, participant_id)
        counselor = s.get_one(Counselor, participant.counselor_id)
        outbox_id = records.resend_invitation(s, library, participant, counselor, now=now(), program_name=program)
        audit(s, "resend_invitation", participant.id, outbox_id=outbox_id)
        return outbox_id

    try:
        outbox_id = db().run(invite)
    except records.InvitationRefused as exc:
        flash(str(exc), "error")
        return _back(participant_id)
    inbound.deliver_now(current_app._get_current_object(), [outbox_id])  # type: ignore[attr-defined]
    flash("The consent invitation was sent again.", "success")
    return _back(participant_id)
