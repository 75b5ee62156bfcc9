"""Helpers for the nudge, outbox and scheduler tests: participants, a recording sender, and
private PostgreSQL schemas (so concurrency tests never touch another test's tables)."""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, func, select, text

from bot.db import Database
from bot.models import ACTIVE, Counselor, NudgeLog, Outbox, Participant
from bot.sms import SendResult

COUNSELOR_PHONE = "+15551110000"
BACKUP_PHONE = "+15551119999"
_phones = itertools.count(1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def add_counselor(db: Database, phone: str = COUNSELOR_PHONE) -> int:
    def work(session: Any) -> int:
        existing = session.scalar(select(Counselor.id).where(Counselor.phone == phone))
        if existing is not None:
            return int(existing)
        counselor = Counselor(
            email=f"c{uuid.uuid4().hex[:8]}@clinic.example", name="Casey", phone=phone, password_hash="x"
        )
        session.add(counselor)
        session.flush()
        return int(counselor.id)

    return db.run(work)


def add_participant(db: Database, **fields: Any) -> int:
    """An active participant (defaults: New York, 10:00 every day, 08:00-21:00); returns the id."""
    counselor_id = fields.pop("counselor_id", None) or add_counselor(db)
    values: dict[str, Any] = {
        "phone": f"+1555{next(_phones):07d}",
        "status": ACTIVE,
        "timezone": "America/New_York",
        "nudge_time": "10:00",
        "created_at": utc(2026, 1, 1),
        "counselor_id": counselor_id,
        **fields,
    }

    def work(session: Any) -> int:
        participant = Participant(**values)
        session.add(participant)
        session.flush()
        return int(participant.id)

    return db.run(work)


def update_participant(db: Database, participant_id: int, **fields: Any) -> None:
    def work(session: Any) -> None:
        participant = session.get(Participant, participant_id)
        for key, value in fields.items():
            setattr(participant, key, value)

    db.run(work)


def get_participant(db: Database, participant_id: int) -> Participant:
    return db.run(lambda s: s.get(Participant, participant_id))


def nudge_rows(db: Database, participant_id: int | None = None) -> list[NudgeLog]:
    def work(session: Any) -> list[NudgeLog]:
        stmt = select(NudgeLog).order_by(NudgeLog.participant_id, NudgeLog.local_date)
        if participant_id is not None:
            stmt = stmt.where(NudgeLog.participant_id == participant_id)
        return list(session.scalars(stmt))

    return db.run(work)


def outbox_rows(db: Database, **where: Any) -> list[Outbox]:
    def work(session: Any) -> list[Outbox]:
        stmt = select(Outbox).order_by(Outbox.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(Outbox, key) == value)
        return list(session.scalars(stmt))

    return db.run(work)


def count_rows(db: Database, model: Any) -> int:
    return int(db.run(lambda s: s.scalar(select(func.count()).select_from(model))))


@dataclass
class RecordingSender:
    """An SmsSender that records every send; `script[to]` gives the results for a number in turn."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    script: dict[str, list[SendResult]] = field(default_factory=dict)
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        with self._lock:
            self.calls += 1
            queue = self.script.get(to)
            if queue:
                result = queue.pop(0) if len(queue) > 1 else queue[0]
                if not result.ok:
                    return result
            self.sent.append((to, body))
            return SendResult(ok=True, sid=f"SM{uuid.uuid4().hex}", status="queued")

    def to(self, phone: str) -> list[str]:
        return [body for to, body in self.sent if to == phone]


def local_dates(rows: list[NudgeLog], content: tuple[str, ...] = ("practice", "checkin")) -> list[date]:
    return [r.local_date for r in rows if r.content in content]


# --------------------------------------------------------------------------------------------
# PostgreSQL: a private schema per test


def postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    return url if url.startswith("postgresql") else None


@contextmanager
def private_postgres_schema(url: str) -> Iterator[str]:
    """A migrated schema of its own on the PostgreSQL at `url`; yields a URL whose search_path is it."""
    from bot.cli import migrate

    schema = f"nudges_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    scoped = f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        migrate(scoped)
        yield scoped
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def tick_in_process(url: str, base_url: str, now_iso: str, start: Any, results: Any, threads: int) -> None:
    """A child process: wait for `start`, run one tick against the fake Twilio, report the summary."""
    from bot.scheduler import run_tick
    from bot.skills import load_library
    from bot.sms import TwilioSender
    from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN

    db = Database(url)
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006", base_url=base_url)
    library = load_library()
    config = {"SEND_RATE_PER_SECOND": 0, "DELIVERY_THREADS": threads, "NUDGE_BACKOFF_AFTER": 5}
    start.wait(60)
    summary = run_tick(db, sender, library, datetime.fromisoformat(now_iso), config)
    results.put((summary.planned, summary.sent, summary.retrying, summary.failed))
    db.dispose()
