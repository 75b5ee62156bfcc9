"""What is kept about a participant, for how long, and how it is handed over or erased.

- Retention: message text older than MESSAGE_RETENTION_DAYS is blanked by the scheduler's tick;
  the rows stay (direction, kind, time, delivery status), so counts and ratings survive.
- Export: everything stored about one participant, as plain JSON-ready data (a subject access
  request under HIPAA's right of access, 45 CFR 164.524, or GDPR article 15).
- Erasure: their messages, pending texts, exercise and safety-plan texts are removed and their
  number and name replaced by a token; aggregates (exercise ratings, mood check-ins, event
  counts) are kept without anything that identifies them, and the erasure is audited.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, inspect, select, update
from sqlalchemy.orm import Session

from .db import Database, rowcount
from .models import (
    PENDING,
    AuditLog,
    CohortReminder,
    CrisisEvent,
    DiaryEntry,
    ExerciseSession,
    Message,
    MoodCheckin,
    NudgeLog,
    Outbox,
    Participant,
    SafetyPlan,
    Trigger,
)

ERASED = "erased"


def blank_old_messages(db: Database, now: datetime, days: int) -> int:
    """Blank the text of messages (and finished outbox rows) older than `days`; 0 keeps all.

    Returns how many message rows were blanked.
    """
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)

    def work(session: Session) -> int:
        done = rowcount(session.execute(
            update(Message).where(Message.created_at < cutoff, Message.body != "").values(body="")
        ))
        session.execute(
            update(Outbox).where(Outbox.created_at < cutoff, Outbox.status != PENDING, Outbox.body != "")
            .values(body="")
        )
        # The participant's own words on diary cards and in logged triggers age out the same way.
        session.execute(update(Trigger).where(Trigger.created_at < cutoff, Trigger.text != "").values(text=""))
        session.execute(update(DiaryEntry).where(DiaryEntry.created_at < cutoff, DiaryEntry.text.is_not(None),
                                                 DiaryEntry.text != "").values(text=""))
        return int(done or 0)

    return db.run(work)


def _row(obj: Any) -> dict[str, Any]:
    values = {}
    for column in inspect(obj).mapper.column_attrs:
        value = getattr(obj, column.key)
        values[column.key] = value.isoformat() if isinstance(value, datetime | date) else value
    return values


def export(session: Session, participant: Participant) -> dict[str, Any]:
    """Everything stored about `participant`, table by table."""
    pid = participant.id

    def rows(model: Any, *where: Any) -> list[dict[str, Any]]:
        return [_row(r) for r in session.scalars(select(model).where(*where).order_by(model.id))]

    counselor = participant.counselor
    return {
        "participant": {k: v for k, v in _row(participant).items()},
        "counselor": {"email": counselor.email, "name": counselor.name},
        "messages": rows(Message, Message.participant_id == pid),
        "outbox": rows(Outbox, Outbox.participant_id == pid),
        "exercise_sessions": rows(ExerciseSession, ExerciseSession.participant_id == pid),
        "risk_events": rows(CrisisEvent, CrisisEvent.participant_id == pid),
        "safety_plan": rows(SafetyPlan, SafetyPlan.participant_id == pid),
        "nudges": rows(NudgeLog, NudgeLog.participant_id == pid),
        "mood_checkins": rows(MoodCheckin, MoodCheckin.participant_id == pid),
        "diary_entries": rows(DiaryEntry, DiaryEntry.participant_id == pid),
        "triggers": rows(Trigger, Trigger.participant_id == pid),
        "cohort_reminders": rows(CohortReminder, CohortReminder.participant_id == pid),
        "audit_log": rows(AuditLog, AuditLog.participant_id == pid),
    }


def erase(session: Session, participant: Participant, by_email: str, now: datetime) -> dict[str, int]:
    """Remove what identifies `participant` and what they wrote; keep the aggregates. Audited."""
    pid, phone = participant.id, participant.phone
    token = f"{ERASED}:{pid}"
    # Nudge rows point at outbox rows and events at messages: keep the rows, drop the links first.
    session.execute(update(NudgeLog).where(NudgeLog.participant_id == pid).values(outbox_id=None))
    session.execute(update(CohortReminder).where(CohortReminder.participant_id == pid).values(outbox_id=None))
    # A counselor's acknowledgement note may quote the participant: it goes too (who and when stay).
    session.execute(update(CrisisEvent).where(CrisisEvent.participant_id == pid)
                    .values(phone=token, message_id=None, ack_note=None))
    counts = {
        "messages": rowcount(session.execute(delete(Message).where(Message.participant_id == pid))),
        "unknown_number_messages": rowcount(session.execute(
            delete(Message).where(Message.phone == phone, Message.participant_id.is_(None)))),
        "outbox": rowcount(session.execute(delete(Outbox).where(Outbox.participant_id == pid))),
        "safety_plan": rowcount(session.execute(delete(SafetyPlan).where(SafetyPlan.participant_id == pid))),
        "triggers": rowcount(session.execute(delete(Trigger).where(Trigger.participant_id == pid))),
        # Diary ratings stay (aggregates); the words written on the card go.
        "diary_texts": rowcount(session.execute(
            update(DiaryEntry).where(DiaryEntry.participant_id == pid, DiaryEntry.text.is_not(None))
            .values(text=None))),
    }
    participant.phone = token[:20]
    participant.name = None
    participant.status = ERASED
    participant.conv_state = "idle"
    participant.conv_data = {}
    participant.flags = []
    participant.nudges_paused = True
    participant.diary_enabled = False
    participant.cohort_id = None
    session.add(AuditLog(actor=by_email.strip().lower(), action="erase", participant_id=pid,
                         detail={k: int(v) for k, v in counts.items()}, created_at=now))
    return {k: int(v) for k, v in counts.items()}
