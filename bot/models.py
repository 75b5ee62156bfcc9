"""The tables. Times are aware UTC; local times come from each participant's IANA zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    # Every model maps one Table (never a join or a select), and Core code uses it as one.
    __table__: ClassVar[Table]
    type_annotation_map = {datetime: UTCDateTime()}


# Participant.status values.
INVITED = "invited"
ACTIVE = "active"
OPTED_OUT = "opted_out"
DISCHARGED = "discharged"


class Counselor(Base):
    __tablename__ = "counselors"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    totp_secret: Mapped[str | None] = mapped_column(String(64))  # base32; set once two-factor is confirmed
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # the last code used: never again
    # A new value signs out every session made before it (password change, deactivation).
    session_token: Mapped[str | None] = mapped_column(String(64))

    participants: Mapped[list[Participant]] = relationship(back_populates="counselor")


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str | None] = mapped_column(String(120))
    counselor_id: Mapped[int] = mapped_column(ForeignKey("counselors.id"))
    status: Mapped[str] = mapped_column(String(16), default=INVITED)
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    nudge_time: Mapped[str] = mapped_column(String(5), default="10:00")
    # Days of the week nudges go out, Monday=0 ... Sunday=6, as a string of digits.
    nudge_days: Mapped[str] = mapped_column(String(7), default="0123456")
    quiet_start: Mapped[str] = mapped_column(String(5), default="08:00")  # sending allowed from
    quiet_end: Mapped[str] = mapped_column(String(5), default="21:00")  # sending allowed until
    discreet: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    consent_at: Mapped[datetime | None]
    consent_method: Mapped[str | None] = mapped_column(String(200))
    opted_out_at: Mapped[datetime | None]
    nudges_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_until: Mapped[datetime | None]
    crisis_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    invalid_number: Mapped[bool] = mapped_column(Boolean, default=False)
    admission_date: Mapped[date | None] = mapped_column(Date)
    discharge_date: Mapped[date | None] = mapped_column(Date)
    aftercare_days: Mapped[int] = mapped_column(Integer, default=0)
    ignored_nudges: Mapped[int] = mapped_column(Integer, default=0)
    backoff_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    # Conversation state machine (see bot/conversation.py).
    conv_state: Mapped[str] = mapped_column(String(24), default="idle")
    conv_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_inbound_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id"), index=True)
    # The evening diary card (one question per text), asked at diary_time local when enabled.
    diary_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    diary_time: Mapped[str] = mapped_column(String(5), default="20:00", server_default="20:00")

    counselor: Mapped[Counselor] = relationship(back_populates="participants")


class Cohort(Base):
    """A therapy group: its members get a reminder before each meeting."""

    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    meeting_days: Mapped[str] = mapped_column(String(7))  # Monday=0 digits, like Participant.nudge_days
    meeting_time: Mapped[str] = mapped_column(String(5))  # HH:MM in `timezone`
    timezone: Mapped[str] = mapped_column(String(64))
    reminder_text: Mapped[str] = mapped_column(Text, default="")
    reminder_minutes_before: Mapped[int] = mapped_column(Integer, default=60)
    counselor_id: Mapped[int | None] = mapped_column(ForeignKey("counselors.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CohortReminder(Base):
    """One reminder per member per meeting: the unique key makes concurrent ticks send it once."""

    __tablename__ = "cohort_reminders"
    __table_args__ = (UniqueConstraint("participant_id", "cohort_id", "meeting_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    meeting_date: Mapped[date] = mapped_column(Date)  # in the cohort's zone
    send_at: Mapped[datetime]
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """Every SMS in or out, with its Twilio SID and delivery status."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    phone: Mapped[str] = mapped_column(String(20), index=True)  # the other party
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(24), default="reply")
    twilio_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str | None] = mapped_column(String(24))
    error_code: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]


# Outbox.status values.
PENDING = "pending"
SENT = "sent"
FAILED = "failed"
CANCELLED = "cancelled"


class Outbox(Base):
    """Messages waiting to leave through the SmsSender (everything that is not a TwiML reply)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    to_phone: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(24))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"), index=True)
    counselor_id: Mapped[int | None] = mapped_column(ForeignKey("counselors.id"))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(16))
    # A unique key for messages that must exist once (e.g. "nudge:42:2026-11-27").
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


def outbox_values(
    *,
    to: str,
    body: str,
    kind: str,
    now: datetime,
    participant_id: int | None = None,
    counselor_id: int | None = None,
    dedupe_key: str | None = None,
) -> dict[str, Any]:
    """The columns of a new, due outbox row (for ORM, single and bulk inserts alike)."""
    return {
        "to_phone": to,
        "body": body,
        "kind": kind,
        "participant_id": participant_id,
        "counselor_id": counselor_id,
        "dedupe_key": dedupe_key,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


class ExerciseSession(Base):
    __tablename__ = "exercise_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    skill_id: Mapped[str] = mapped_column(String(64))
    distress_state: Mapped[str] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(16), default="text")  # text | nudge | menu
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|completed|abandoned|interrupted
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    rating_before: Mapped[int | None] = mapped_column(Integer)
    rating_after: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]


class CrisisEvent(Base):
    __tablename__ = "crisis_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"), index=True)
    phone: Mapped[str] = mapped_column(String(20))
    # "crisis" (act now: alerts, repeats, nudges held), "check" (the bot asked directly; the
    # answer or its absence decides) or "lapse" (for the counselor's notes: no alert).
    kind: Mapped[str] = mapped_column(String(16), default="crisis", server_default="crisis")
    level: Mapped[str] = mapped_column(String(16))
    categories: Mapped[str] = mapped_column(String(200))
    answer: Mapped[str | None] = mapped_column(String(16))  # check: "yes", "no"
    answered_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(254))
    ack_outcome: Mapped[str | None] = mapped_column(String(32))
    ack_note: Mapped[str | None] = mapped_column(Text)
    alerts_sent: Mapped[int] = mapped_column(Integer, default=0)
    last_alert_at: Mapped[datetime | None]


class SafetyPlan(Base):
    """The Stanley-Brown safety plan a counselor keeps for a participant."""

    __tablename__ = "safety_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), unique=True)
    warning_signs: Mapped[str] = mapped_column(Text, default="")
    coping_strategies: Mapped[str] = mapped_column(Text, default="")
    distractions: Mapped[str] = mapped_column(Text, default="")
    contacts: Mapped[str] = mapped_column(Text, default="")
    professionals: Mapped[str] = mapped_column(Text, default="")
    safe_environment: Mapped[str] = mapped_column(Text, default="")
    reasons_for_living: Mapped[str] = mapped_column(Text, default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(254))


class DiaryEntry(Base):
    """One answer on a participant's diary card for one local date (a number, or words)."""

    __tablename__ = "diary_entries"
    __table_args__ = (UniqueConstraint("participant_id", "local_date", "item", name="uq_diary_item_per_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    local_date: Mapped[date] = mapped_column(Date)
    item: Mapped[str] = mapped_column(String(24))  # a question id from the diary card content
    value: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Trigger(Base):
    """A trigger in the participant's own words: from the diary card or `LOG <words>`."""

    __tablename__ = "triggers"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(8), default="log")  # log | diary
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NudgeLog(Base):
    """One row per participant per local date and kind: the database forbids a second nudge."""

    __tablename__ = "nudge_log"
    __table_args__ = (UniqueConstraint("participant_id", "local_date", "kind", name="uq_nudge_once_per_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    local_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16), default="daily")
    content: Mapped[str] = mapped_column(String(16), default="practice")  # practice | checkin | skipped
    skill_id: Mapped[str | None] = mapped_column(String(64))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), index=True)
    planned_at: Mapped[datetime] = mapped_column(default=utcnow)
    replied_at: Mapped[datetime | None]


class MoodCheckin(Base):
    __tablename__ = "mood_checkins"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginFailure(Base):
    """One failed sign-in, counted per account and per address across every web process."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300))  # "email:<address>" or "ip:<address>"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Heartbeat(Base):
    """The last run of a recurring job (the scheduler's tick): `/healthz` and `/metrics` read it,
    so a dead scheduler is seen from the web processes."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    beat_at: Mapped[datetime]
    duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    host: Mapped[str | None] = mapped_column(String(120))
