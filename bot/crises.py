"""Crisis events after detection: listing them, the link in an alert, and a counselor's
acknowledgement (from the dashboard, a counselor's ACK text or `flask crisis ack`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditLog, Counselor, CrisisEvent, Participant


class CrisisError(ValueError):
    pass


class NotYours(CrisisError):
    """No such event, or not one this counselor may acknowledge: the same answer for both, so an
    event id tells nothing about whether it exists."""


# What happened when the counselor acted (CrisisEvent.ack_outcome); the dashboard labels them.
OUTCOMES: tuple[str, ...] = ("reached_safe", "reached_referred", "emergency_services", "not_reached", "false_alarm")
SMS_OUTCOME = "acknowledged_by_sms"  # acknowledged by an ACK text: the note says what happened
NOTE_MAX = 2000

# "ACK 12", "ack #12 called her, safe": a counselor's acknowledgement by text.
ACK_COMMAND = re.compile(r"^\s*ack\s+#?(\d+)\b(.*)$", re.IGNORECASE | re.DOTALL)
MAX_EVENT_ID = 2**31 - 1  # an INTEGER column: a longer number is no event at all


@dataclass(frozen=True)
class AckCommand:
    event_id: int  # 0 for a number no event can have
    note: str
    shown: str  # the number as texted, for the answer


def parse_ack(body: str) -> AckCommand | None:
    """`ACK <id> [note]` as a counselor texts it, or None for anything else."""
    match = ACK_COMMAND.match(body)
    if match is None:
        return None
    digits = match.group(1)
    event_id = int(digits) if len(digits) <= 10 else 0
    note = match.group(2).strip().lstrip(":-,.").strip()
    return AckCommand(event_id if 0 < event_id <= MAX_EVENT_ID else 0, note[:NOTE_MAX], digits[:20])


def event_link(library: Any, base_url: str | None, event_id: int) -> str:
    """The " Open: <base>/crises/<id>" tail of an alert (message `alert_link`), "" without a
    public base URL. The page is behind the dashboard's sign-in; the SMS never carries the text."""
    if not base_url:
        return ""
    return " " + str(library.message("alert_link", url=f"{str(base_url).rstrip('/')}/crises/{event_id}"))


def open_events(session: Session) -> list[CrisisEvent]:
    return list(session.scalars(select(CrisisEvent).order_by(CrisisEvent.created_at.desc(), CrisisEvent.id.desc())))


def may_act_on(counselor: Counselor, participant: Participant | None) -> bool:
    """Counselors act on their own clients' events; an admin on any (unknown numbers' too)."""
    if not counselor.active:
        return False
    return counselor.is_admin or (participant is not None and participant.counselor_id == counselor.id)


@dataclass(frozen=True)
class Acknowledgement:
    event: CrisisEvent
    participant: Participant | None
    new: bool  # False: it was acknowledged before (event.acknowledged_by) and nothing changed
    hold_lifted: bool  # the participant's crisis hold went off: nudges resume
    still_held: bool  # another crisis event of theirs is still open


def acknowledge(
    session: Session, event_id: int, by_email: str, now: datetime, *, outcome: str | None = None,
    note: str | None = None, channel: str = "dashboard",
) -> Acknowledgement:
    """Mark an event handled by the counselor `by_email`, with what happened (`outcome`, `note`).

    Counselors acknowledge their own clients' events, an admin any; otherwise `NotYours`. An
    event acknowledged before keeps its first acknowledgement. Nudges resume (the crisis hold
    goes off) once none of the participant's crisis events is open.
    """
    counselor = session.scalar(select(Counselor).where(Counselor.email == by_email.strip().lower()))
    if counselor is None:
        raise CrisisError(f"no counselor with email {by_email}")
    if outcome is not None and outcome not in (*OUTCOMES, SMS_OUTCOME):
        raise CrisisError(f"unknown outcome {outcome!r} (one of {', '.join(OUTCOMES)})")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise CrisisError(f"the note is longer than {NOTE_MAX} characters")
    event = session.get(CrisisEvent, event_id) if 0 < event_id <= MAX_EVENT_ID else None
    if event is None:
        raise NotYours(f"no crisis event #{event_id} you may acknowledge")
    participant = None
    if event.participant_id is not None:
        # The participant row first, then the event: the order the conversation engine locks them
        # in (it holds the participant while it writes their events), so the two cannot deadlock,
        # and a crisis text being handled right now is seen before the hold is lifted.
        participant = session.get(Participant, event.participant_id, with_for_update=True, populate_existing=True)
        session.refresh(event, with_for_update=True)
    if not may_act_on(counselor, participant):
        raise NotYours(f"no crisis event #{event_id} you may acknowledge")
    new = event.acknowledged_at is None
    if new:
        event.acknowledged_at = now
        event.acknowledged_by = counselor.email
        event.ack_outcome = outcome
        event.ack_note = note or None
        # The note stays on the event (behind the dashboard's sign-in), never in the audit detail.
        session.add(AuditLog(actor=counselor.email, action="crisis_ack", participant_id=event.participant_id,
                             detail={"event": event.id, "outcome": outcome, "via": channel}, created_at=now))
    hold_lifted = still_held = False
    if participant is not None:
        still_open = session.scalar(
            select(CrisisEvent.id).where(
                CrisisEvent.participant_id == participant.id, CrisisEvent.kind == "crisis",
                CrisisEvent.acknowledged_at.is_(None),
            ).limit(1)
        )
        if still_open is None:
            hold_lifted = participant.crisis_hold
            participant.crisis_hold = False
        else:
            still_held = participant.crisis_hold
    session.flush()
    return Acknowledgement(event, participant, new, hold_lifted, still_held)
