"""What a signed-in counselor may see: their own clients and those clients' events (an admin:
all). Anything else is a 404, so an id does not even tell whether a record exists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, current_app
from flask_login import current_user
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..db import Database
from ..models import AuditLog, CrisisEvent, Participant


def db() -> Database:
    database: Database = current_app.extensions["db"]
    return database


def now() -> datetime:
    clock: Any = current_app.extensions["clock"]
    moment: datetime = clock()
    return moment


def visible_participants() -> Select[Participant]:
    query = select(Participant)
    if not current_user.is_admin:
        query = query.where(Participant.counselor_id == current_user.id)
    return query


def client_or_404(session: Session, participant_id: int) -> Participant:
    participant = session.get(Participant, participant_id)
    if participant is None or (not current_user.is_admin and participant.counselor_id != current_user.id):
        abort(404)
    return participant


def event_or_404(session: Session, event_id: int) -> CrisisEvent:
    """An event of one of my clients (an admin: any, including unknown numbers')."""
    event = session.get(CrisisEvent, event_id)
    if event is None:
        abort(404)
    if not current_user.is_admin:
        participant = session.get(Participant, event.participant_id) if event.participant_id else None
        if participant is None or participant.counselor_id != current_user.id:
            abort(404)
    return event


def audit(session: Session, action: str, participant_id: int | None, **detail: Any) -> None:
    session.add(AuditLog(actor=current_user.email, action=action, participant_id=participant_id,
                         detail=detail, created_at=now()))
