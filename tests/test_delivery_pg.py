"""Exactly once on the real PostgreSQL: concurrent ticks in several processes, and a killed one.

Each test gets a private, migrated schema (never the shared public one). Skipped unless
TEST_DATABASE_URL names a PostgreSQL database, e.g.
TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test pytest tests/test_delivery_pg.py
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from bot import outbox
from bot.db import Database
from bot.models import ACTIVE, NudgeLog, Outbox, Participant
from bot.sms import TwilioSender
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.nudge_fixtures import add_counselor, postgres_url, private_postgres_schema, tick_in_process, utc

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        postgres_url() is None,
        reason="PostgreSQL concurrency tests: set TEST_DATABASE_URL=postgresql+psycopg://user@host/db to run them",
    ),
]

NOW = utc(2026, 6, 1, 14, 0)  # 10:00 in New York


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = postgres_url()
    assert url is not None
    with private_postgres_schema(url) as scoped:
        yield scoped


def _add_due_participants(db: Database, count: int) -> None:
    counselor_id = add_counselor(db)
    rows = [
        {
            "phone": f"+1555{7_000_000 + i}",
            "status": ACTIVE,
            "timezone": "America/New_York",
            "nudge_time": "10:00",
            "counselor_id": counselor_id,
            "created_at": NOW,
            "conv_data": {},
            "flags": [],
        }
        for i in range(count)
    ]
    db.run(lambda s: s.execute(insert(Participant), rows))


def test_four_processes_ticking_at_once_send_each_of_1000_nudges_exactly_once(
    pg_url: str, fake_twilio: FakeTwilio
) -> None:
    db = Database(pg_url)
    _add_due_participants(db, 1000)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(5)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=tick_in_process, args=(pg_url, fake_twilio.base_url, NOW.isoformat(), start, results, 8))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    start.wait(120)  # all four are loaded and connected: go
    summaries = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    planned = sum(s[0] for s in summaries)
    sent = sum(s[1] for s in summaries)
    assert (planned, sent) == (1000, 1000), summaries
    arrived = Counter(m.to for m in fake_twilio.messages)
    assert len(arrived) == 1000 and max(arrived.values()) == 1
    assert fake_twilio.requests == 1000
    counts = db.run(
        lambda s: (
            s.scalar(select(func.count()).select_from(NudgeLog)),
            s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "sent")),
        )
    )
    assert counts == (1000, 1000)
    db.dispose()


def _kill_while_sending(pg_url: str, base_url: str) -> None:
    db = Database(pg_url)
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006", base_url=base_url)
    outbox.deliver(db, sender, NOW, threads=4)


def test_a_tick_killed_mid_delivery_loses_nothing(pg_url: str, fake_twilio: FakeTwilio) -> None:
    db = Database(pg_url)
    for i in range(120):
        db.run(lambda s, i=i: outbox.enqueue(s, to=f"+1555600{i:04d}", body=f"m{i}", kind="invitation", now=NOW))
    fake_twilio.latency = 0.2
    ctx = multiprocessing.get_context("spawn")
    victim = ctx.Process(target=_kill_while_sending, args=(pg_url, fake_twilio.base_url))
    victim.start()
    deadline = time.monotonic() + 60
    while fake_twilio.requests < 12 and time.monotonic() < deadline:  # let it send a few, then kill -9
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
    victim.join(10)
    fake_twilio.latency = 0.0
    time.sleep(0.3)  # let the fake finish answering requests the victim had in flight
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006", base_url=fake_twilio.base_url)
    # Before the lease ends nothing of the victim's is touched; after it, everything goes out.
    outbox.deliver(db, sender, NOW + timedelta(minutes=1), threads=4)
    outbox.deliver(db, sender, NOW + outbox.LEASE + timedelta(seconds=1), threads=4)
    arrived = Counter(m.body for m in fake_twilio.messages)
    assert set(arrived) == {f"m{i}" for i in range(120)}
    # The documented window: only sends in flight at the kill can arrive twice (one per thread).
    assert sum(n - 1 for n in arrived.values()) <= 4
    statuses = db.run(lambda s: Counter(s.scalars(select(Outbox.status))))
    assert statuses == Counter({"sent": 120})
    db.dispose()


def test_skip_locked_claims_are_disjoint(pg_url: str) -> None:
    db = Database(pg_url)
    for i in range(50):
        db.run(lambda s, i=i: outbox.enqueue(s, to=f"+1555610{i:04d}", body="x", kind="invitation", now=NOW))
    engine_hold = db.sessions()
    held: Any = engine_hold.begin()
    # Another transaction holds 20 rows FOR UPDATE: claims must skip them, not wait.
    locked = list(engine_hold.scalars(select(Outbox.id).order_by(Outbox.id).limit(20).with_for_update()))
    try:
        first = outbox.claim(db, NOW, "a", limit=25)
        second = outbox.claim(db, NOW, "b", limit=25)
        ids_a, ids_b = {c.id for c in first}, {c.id for c in second}
        assert len(ids_a) == 25 and len(ids_b) == 5
        assert not ids_a & ids_b and not (ids_a | ids_b) & set(locked)
    finally:
        held.rollback()
        engine_hold.close()
    db.dispose()
