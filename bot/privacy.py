"""What is kept about a participant, for how long, and how it is handed over or erased.

- Retention: message text older than MESSAGE_RETENTION_DAYS is blanked by the scheduler's tick;
  the rows stay (direction, kind, time, delivery status), so counts and ratings survive.
- Export: everything stored about one participant, as plain JSON-ready data (a subject access
  request under HIPAA's right of access, 45 CFR 164.524, or GDPR article 15).
- Erasure: their messages, pending texts, exercise and safety-plan texts are removed and their
  number and name replaced by a token; aggregates (exercise ratings, mood check-ins, event
  counts) are kept without anything that identifies them, and the erasure is audited.
- Texts to counselors about a participant (crisis alerts and their repeats, check alerts,
  notices, a counselor's ACK text and its answer) are stored under no participant (they went to
  the counselor's or the backup phone), yet name the participant and the last digits of the
  number. Erasure blanks them (`counselor_texts_about`); retention blanks them with every other
  text. Their rows stay: time, kind, status, counts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, inspect, or_, select, update
from sqlalchemy.orm import Session

from .db import Database, rowcount
from .models import (
    CANCELLED,
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
from .nudges import NOTICE_KIND
from .outbox import CHECK_ALERT_KIND, REALERT_KIND
from .sms import mask_phone
from .spool import Spool

ERASED = "erased"

# Texts about a crisis or check event, sent to counselors: they name it ("ACK 12", "#12",
# ".../crises/12"; skills_library/messages.yaml). The first alert and the alert after the
# follow-up question are "crisis_alert" (bot/conversation.py); a counselor's ACK text and the bot's
# answer to it are "counselor_ack" and "counselor_reply" (bot/inbound.py).
EVENT_TEXT_KINDS = ("crisis_alert", REALERT_KIND, CHECK_ALERT_KIND)
ACK_TEXT_KINDS = ("counselor_ack", "counselor_reply")
EVENT_REFERENCE = re.compile(r"(?:\bACK\s+#?|#|/crises/)(\d+)\b", re.IGNORECASE)
# Notices to the counselor about a participant: dedupe keys that name the participant, and the
# opt-out notice (bot/conversation.py), which has none.
NOTICE_KEYS = ("optout:{pid}:%", "invalid:{pid}:%", "backoff:{pid}:%")
OPT_OUT_NOTICE_KIND = "optout_notice"


def apply_retention(db: Database, spool: Spool | None, now: datetime, days: int) -> int:
    """The scheduler's retention step: text older than `days` in the database
    (`blank_old_messages`) and in the spool's failed/ entries, which hold the same; 0 keeps all.

    Returns how many message rows were blanked.
    """
    if days <= 0:
        return 0
    if spool is not None:
        spool.forget_failed(now - timedelta(days=days))
    return blank_old_messages(db, now, days)


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
    # Their events: as a participant, and from their number before they were enrolled.
    theirs = or_(CrisisEvent.participant_id == pid,
                 and_(CrisisEvent.participant_id.is_(None), CrisisEvent.phone == phone))
    outbox_texts, message_texts = counselor_texts_about(
        session, participant, session.scalars(select(CrisisEvent.id).where(theirs)).all())
    if outbox_texts:
        # An alert not sent yet would now go out blank: it is not sent at all.
        session.execute(update(Outbox).where(Outbox.id.in_(outbox_texts), Outbox.status == PENDING)
                        .values(status=CANCELLED))
        session.execute(update(Outbox).where(Outbox.id.in_(outbox_texts)).values(body=""))
    if message_texts:
        session.execute(update(Message).where(Message.id.in_(message_texts)).values(body=""))
    # Nudge rows point at outbox rows and events at messages: keep the rows, drop the links first.
    session.execute(update(NudgeLog).where(NudgeLog.participant_id == pid).values(outbox_id=None))
    session.execute(update(CohortReminder).where(CohortReminder.participant_id == pid).values(outbox_id=None))
    # A counselor's acknowledgement note may quote the participant: it goes too (who and when stay).
    session.execute(update(CrisisEvent).where(theirs).values(phone=token, message_id=None, ack_note=None))
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
        "counselor_texts": len(outbox_texts) + len(message_texts),
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


def counselor_texts_about(
    session: Session, participant: Participant, event_ids: Collection[int]
) -> tuple[list[int], list[int]]:
    """The outbox rows and message rows sent to or from counselors, under no participant, whose
    text is about `participant` (see the module's docstring): (outbox ids, message ids).

    - alerts and ACK texts that name one of `event_ids`;
    - notices whose dedupe key names the participant, or one of their own outbox rows;
    - the opt-out notice to their counselor that names them (their name, if any, and the last
      digits of their number);
    - the messages recording the sending of any of those (the same provider SID).
    """
    pid = participant.id
    unowned_outbox = (Outbox.participant_id.is_(None), Outbox.body != "")
    outbox_ids: set[int] = set()
    message_ids: set[int] = set()
    first_event = None
    if event_ids:
        first_event = session.scalar(select(func.min(CrisisEvent.created_at)).where(CrisisEvent.id.in_(event_ids)))
    if first_event is not None:
        wanted = {int(e) for e in event_ids}
        outbox_ids |= _naming_events(session.execute(
            select(Outbox.id, Outbox.body).where(*unowned_outbox, Outbox.kind.in_(EVENT_TEXT_KINDS),
                                                 Outbox.created_at >= first_event)), wanted)
        message_ids |= _naming_events(session.execute(
            select(Message.id, Message.body).where(
                Message.participant_id.is_(None), Message.body != "",
                Message.kind.in_(EVENT_TEXT_KINDS + ACK_TEXT_KINDS), Message.created_at >= first_event)), wanted)
    own_rows = [f"failed:{row_id}" for row_id in session.scalars(select(Outbox.id).where(Outbox.participant_id == pid))]
    keyed = or_(*(Outbox.dedupe_key.like(key.format(pid=pid)) for key in NOTICE_KEYS), Outbox.dedupe_key.in_(own_rows))
    outbox_ids.update(session.scalars(select(Outbox.id).where(*unowned_outbox, Outbox.kind == NOTICE_KIND, keyed)))
    tail = mask_phone(participant.phone)
    for row_id, body in session.execute(select(Outbox.id, Outbox.body).where(
            *unowned_outbox, Outbox.kind == OPT_OUT_NOTICE_KIND, Outbox.counselor_id == participant.counselor_id)):
        if tail in body and (not participant.name or participant.name in body):
            outbox_ids.add(row_id)
    if outbox_ids:
        sids = [sid for sid in session.scalars(select(Outbox.provider_sid).where(Outbox.id.in_(outbox_ids))) if sid]
        if sids:
            message_ids.update(session.scalars(select(Message.id).where(
                Message.participant_id.is_(None), Message.twilio_sid.in_(sids), Message.body != "")))
    return sorted(outbox_ids), sorted(message_ids)


def _naming_events(rows: Iterable[Any], event_ids: set[int]) -> set[int]:
    """The ids of the (id, body) rows whose body names one of `event_ids`."""
    return {row_id for row_id, body in rows
            if any(int(found) in event_ids for found in EVENT_REFERENCE.findall(body or ""))}
