"""Crisis events: the open ones first, one event with the client's number, acknowledgement.

A counselor sees and acknowledges their own clients' crisis and check events, an admin every
event (unknown numbers' too); anything else is a 404 (`access.event_or_404`). The rules of an
acknowledgement (who may, what it records, when nudges resume) live in `bot.crises`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectChoice, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from .. import crises as domain
from ..models import Counselor, CrisisEvent, Message, Participant, SafetyPlan
from ..sms import mask_phone
from . import bp
from .access import audit, db, event_or_404, now

LISTED_KINDS = ("crisis", "check")  # lapses are notes on the client's record, nothing to act on
LIST_LIMIT = 200


def open_count() -> int:
    """Unacknowledged crisis events this counselor may act on (an admin: all)."""
    query = select(func.count(CrisisEvent.id)).where(CrisisEvent.kind == "crisis",
                                                     CrisisEvent.acknowledged_at.is_(None))
    if not current_user.is_admin:
        query = query.join(Participant, Participant.id == CrisisEvent.participant_id).where(
            Participant.counselor_id == current_user.id)
    with db().session() as s:
        return int(s.scalar(query) or 0)


def open_count_context() -> dict[str, Any]:
    if not current_user.is_authenticated:
        return {}
    return {"open_crises": open_count()}


@bp.get("/crises/count")
@login_required
def crisis_count() -> str:
    return render_template("dashboard/_crisis_count.html")


# --- shared helpers ---------------------------------------------------------------------------------


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _when(moment: datetime | None, zone_name: str | None) -> str:
    """`moment` in the client's zone (named), or in UTC when there is no client."""
    if moment is None:
        return ""
    zone = _zone(zone_name)
    local = moment.astimezone(zone or UTC)
    return f"{local:%a %d %b %Y %H:%M} {local.tzname() or 'UTC'}"


def _names(s: Session, emails: set[str]) -> dict[str, str]:
    if not emails:
        return {}
    rows = s.execute(select(Counselor.email, Counselor.name).where(Counselor.email.in_(emails)))
    return {email: name for email, name in rows}


@dataclass(frozen=True)
class Row:
    """One event as the pages show it."""

    id: int
    kind: str
    level: str
    categories: list[str]
    answer: str | None
    client: str
    participant_id: int | None
    masked_phone: str
    when: str
    when_iso: str
    text: str | None  # None: no stored text; "": text blanked after the retention period
    acknowledged: bool
    acknowledged_by: str | None
    acknowledged_when: str
    outcome: str | None
    alerts_sent: int


def _row(event: CrisisEvent, participant: Participant | None, text: str | None, names: dict[str, str]) -> Row:
    zone = participant.timezone if participant is not None else None
    by = event.acknowledged_by
    return Row(
        id=event.id, kind=event.kind, level=event.level,
        categories=[c.replace("_", " ") for c in (event.categories or "").split(",") if c],
        answer=event.answer,
        client=(participant.name or f"Client {participant.id}") if participant is not None else "Unknown number",
        participant_id=participant.id if participant is not None else None,
        masked_phone=mask_phone(event.phone),
        when=_when(event.created_at, zone), when_iso=event.created_at.isoformat(),
        text=text,
        acknowledged=event.acknowledged_at is not None,
        acknowledged_by=(names.get(by) or by) if by else None,
        acknowledged_when=_when(event.acknowledged_at, zone),
        outcome=event.ack_outcome,
        alerts_sent=event.alerts_sent or 0,
    )


# --- the list ----------------------------------------------------------------------------------------


@bp.get("/crises")
@login_required
def crises() -> str:
    show_all = request.args.get("show") == "all"
    query = (
        select(CrisisEvent, Participant, Message.body)
        .outerjoin(Participant, Participant.id == CrisisEvent.participant_id)
        .outerjoin(Message, Message.id == CrisisEvent.message_id)
        .where(CrisisEvent.kind.in_(LISTED_KINDS))
        .order_by(case((CrisisEvent.acknowledged_at.is_(None), 0), else_=1),
                  CrisisEvent.created_at.desc(), CrisisEvent.id.desc())
        .limit(LIST_LIMIT + 1)
    )
    if not current_user.is_admin:
        query = query.where(Participant.counselor_id == current_user.id)
    if not show_all:
        query = query.where(CrisisEvent.acknowledged_at.is_(None))

    def read(s: Session) -> list[Row]:
        found = [(event, participant, body) for event, participant, body in s.execute(query)]
        names = _names(s, {e.acknowledged_by for e, _, _ in found if e.acknowledged_by})
        # The list shows what clients wrote: who looked is recorded, as for a client's record.
        audit(s, "view_crises", None, show="all" if show_all else "open", events=len(found[:LIST_LIMIT]))
        return [_row(event, participant, body, names) for event, participant, body in found]

    rows = db().run(read)
    return render_template("dashboard/crises.html", rows=rows[:LIST_LIMIT], more=len(rows) > LIST_LIMIT,
                           show_all=show_all, limit=LIST_LIMIT)


# --- one event and its acknowledgement ---------------------------------------------------------------


class AckForm(FlaskForm):
    outcome = SelectField("Outcome", choices=[SelectChoice(o) for o in domain.OUTCOMES], validators=[DataRequired()])
    note = TextAreaField("Note (what you did, what was agreed)",
                         validators=[DataRequired(message="Write what happened."), Length(max=domain.NOTE_MAX)],
                         render_kw={"rows": 4, "maxlength": domain.NOTE_MAX, "required": True})


@dataclass(frozen=True)
class EventPage:
    row: Row
    phone: str  # the full number (E.164): the page is where a counselor calls from
    note: str | None
    answered_when: str
    last_alert_when: str
    participant_id: int | None
    has_plan: bool
    still_held: bool


def _load(s: Session, event_id: int) -> EventPage:
    event = event_or_404(s, event_id)
    participant = s.get(Participant, event.participant_id) if event.participant_id else None
    text = s.scalar(select(Message.body).where(Message.id == event.message_id)) if event.message_id else None
    names = _names(s, {event.acknowledged_by} if event.acknowledged_by else set())
    has_plan = participant is not None and s.scalar(
        select(SafetyPlan.id).where(SafetyPlan.participant_id == participant.id)) is not None
    zone = participant.timezone if participant is not None else None
    return EventPage(
        row=_row(event, participant, text, names), phone=event.phone, note=event.ack_note,
        answered_when=_when(event.answered_at, zone), last_alert_when=_when(event.last_alert_at, zone),
        participant_id=participant.id if participant is not None else None, has_plan=has_plan,
        still_held=bool(participant is not None and participant.crisis_hold),
    )


def _render(page: EventPage, form: AckForm) -> str:
    pid = page.participant_id
    return render_template(
        "dashboard/crisis.html", page=page, e=page.row, form=form, outcomes=domain.OUTCOMES,
        client_url=url_for("dashboard.client", participant_id=pid) if pid else None,
        plan_url=url_for("dashboard.plan", participant_id=pid) if pid and page.has_plan else None,
    )


@bp.get("/crises/<int:event_id>")
@login_required
def crisis(event_id: int) -> str:
    def read(s: Session) -> EventPage:
        page = _load(s, event_id)
        audit(s, "view_crisis", page.participant_id, event=event_id)
        return page

    return _render(db().run(read), AckForm())


@bp.post("/crises/<int:event_id>/ack")
@login_required
def crisis_ack(event_id: int) -> tuple[str, int] | BaseResponse:
    form = AckForm()
    if not form.validate_on_submit():
        def read(s: Session) -> EventPage:
            page = _load(s, event_id)  # others' events: a 404 before anything is said about the form
            audit(s, "view_crisis", page.participant_id, event=event_id)
            return page

        return _render(db().run(read), form), 400

    def acknowledge(s: Session) -> domain.Acknowledgement:
        event_or_404(s, event_id)
        return domain.acknowledge(s, event_id, current_user.email, now(), outcome=form.outcome.data,
                                  note=form.note.data, channel="dashboard")

    try:
        ack = db().run(acknowledge)
    except domain.CrisisError:
        abort(404)
    client = (ack.participant.name or f"client {ack.participant.id}") if ack.participant else "this number"
    if not ack.new:
        flash(f"Event #{event_id} was already acknowledged by {ack.event.acknowledged_by}; nothing was changed.",
              "info")
    elif ack.hold_lifted:
        flash(f"Event #{event_id} acknowledged. Nudges resume for {client}.", "success")
    elif ack.still_held:
        flash(f"Event #{event_id} acknowledged. Nudges stay held for {client}: another crisis event is open.",
              "success")
    else:
        flash(f"Event #{event_id} acknowledged.", "success")
    return redirect(url_for("dashboard.crisis", event_id=event_id))
