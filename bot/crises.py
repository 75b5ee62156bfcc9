"""Crisis events after detection: listing them and a counselor's acknowledgement."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditLog, Counselor, CrisisEvent, Participant


class CrisisError(ValueError):
    pass


def open_events(session: Session) -> list[CrisisEvent]:
    return list(session.scalars(select(CrisisEvent).order_by(CrisisEvent.created_at.desc(), CrisisEvent.id.desc())))


def acknowledge(session: Session, event_id: int, by_email: str, now: datetime) -> CrisisEvent:
    """Mark an event handled; nudges resume once none of the participant's events is open."""
    event = session.get(CrisisEvent, event_id)
    if event is None:
        raise CrisisError(f"no crisis event #{event_id}")
    counselor = session.scalar(select(Counselor).where(Counselor.email == by_email.strip().lower()))
    if counselor is None:
        raise CrisisError(f"no counselor with email {by_email}")
    if event.acknowledged_at is None:
        event.acknowledged_at = now
        event.acknowledged_by = counselor.email
        session.add(AuditLog(actor=counselor.email, action="crisis_ack", participant_id=event.participant_id,
                             detail={"event": event.id}, created_at=now))
    if event.participant_id is not None:
        still_open = session.scalar(
            select(CrisisEvent.id).where(
                CrisisEvent.participant_id == event.participant_id, CrisisEvent.kind == "crisis",
                CrisisEvent.acknowledged_at.is_(None),
            )
        )
        if still_open is None:
            participant = session.get(Participant, event.participant_id)
            if participant is not None:
                participant.crisis_hold = False
    return event
