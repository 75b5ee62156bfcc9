"""Outbox delivery: rate limit, threads, retries, permanent errors, leases, nudge re-checks,
crisis re-alerts, and faults injected by the local fake Twilio."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot import outbox
from bot.db import Database
from bot.models import CANCELLED, FAILED, OPTED_OUT, PENDING, SENT, CrisisEvent, Message
from bot.outbox import Notifier, RateLimiter, claim, deliver, realert_crises
from bot.skills import load_library
from bot.sms import SendResult, TwilioSender
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.nudge_fixtures import (
    BACKUP_PHONE,
    COUNSELOR_PHONE,
    RecordingSender,
    add_participant,
    count_rows,
    get_participant,
    outbox_rows,
    update_participant,
    utc,
)

T0 = utc(2026, 6, 1, 14, 0)  # 10:00 in New York
RETRYABLE = SendResult(ok=False, error_code=500, retryable=True)


@pytest.fixture(scope="module")
def library() -> Any:
    return load_library()


@pytest.fixture
def notifier(library: Any) -> Notifier:
    return Notifier(library, "Test IOP")


@pytest.fixture
def ndb(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def put(
    db: Database, to: str, body: str, *, kind: str = "invitation", participant_id: int | None = None, now: datetime = T0
) -> int:
    return db.run(lambda s: outbox.enqueue(s, to=to, body=body, kind=kind, now=now, participant_id=participant_id).id)


class FakeTime:
    """monotonic() and sleep() for the rate limiter: sleeping moves time, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# --- rate limiting --------------------------------------------------------------------------------


def test_rate_limiter_spaces_calls() -> None:
    fake = FakeTime()
    limiter = RateLimiter(4.0, monotonic=fake.monotonic, sleep=fake.sleep)
    for _ in range(9):
        limiter.acquire()
    assert fake.now == pytest.approx(2.0)  # 9 calls at 4/s: the last one starts after 2 s
    assert RateLimiter(None).acquire() == 0.0
    assert RateLimiter(0).acquire() == 0.0


def test_delivery_respects_the_send_rate(ndb: Database) -> None:
    for i in range(10):
        put(ndb, f"+1555000{i:04d}", f"hello {i}")
    fake = FakeTime()
    sender = RecordingSender()
    report = deliver(ndb, sender, T0, rate=5.0, monotonic=fake.monotonic, sleep=fake.sleep)
    assert report.sent == 10
    assert sum(fake.slept) == pytest.approx(9 / 5.0)


# --- sending once ---------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 6])
def test_each_row_is_sent_once_and_recorded(ndb: Database, threads: int) -> None:
    for i in range(120):
        put(ndb, f"+1555100{i:04d}", f"message {i}")
    sender = RecordingSender()
    report = deliver(ndb, sender, T0, threads=threads)
    assert (report.sent, report.retrying, report.failed) == (120, 0, 0)
    assert sorted(body for _, body in sender.sent) == sorted(f"message {i}" for i in range(120))
    assert all(r.status == SENT and r.provider_sid and r.lease_owner is None for r in outbox_rows(ndb))
    assert count_rows(ndb, Message) == 120
    assert deliver(ndb, sender, T0 + timedelta(hours=1), threads=threads).sent == 0
    assert len(sender.sent) == 120


def test_limit_and_ids_select_what_is_sent(ndb: Database) -> None:
    ids = [put(ndb, f"+1555200{i:04d}", f"m{i}") for i in range(5)]
    sender = RecordingSender()
    assert deliver(ndb, sender, T0, ids=ids[3:]).sent == 2
    assert deliver(ndb, sender, T0, limit=2).sent == 2
    assert [b for _, b in sender.sent] == ["m3", "m4", "m0", "m1"]


def test_a_row_not_yet_due_waits(ndb: Database) -> None:
    put(ndb, "+15553000001", "later", now=T0 + timedelta(minutes=10))
    sender = RecordingSender()
    assert deliver(ndb, sender, T0).sent == 0
    assert deliver(ndb, sender, T0 + timedelta(minutes=10)).sent == 1


# --- retries and permanent errors -------------------------------------------------------------------


def test_retries_after_5_10_15_minutes_then_fails_and_tells_the_counselor(ndb: Database, notifier: Notifier) -> None:
    pid = add_participant(ndb, name="Sam", phone="+15554000001")
    put(ndb, "+15554000001", "invite", participant_id=pid)
    sender = RecordingSender(script={"+15554000001": [RETRYABLE]})
    when = T0
    outcomes = []
    for wait_minutes in (0, 5, 10, 15):
        when += timedelta(minutes=wait_minutes)
        early = deliver(ndb, sender, when - timedelta(seconds=1), notifier=notifier)
        assert (early.sent, early.retrying, early.failed) == (0, 0, 0), "retried before its time"
        report = deliver(ndb, sender, when, notifier=notifier)
        outcomes.append((report.retrying, report.failed))
    assert outcomes == [(1, 0), (1, 0), (1, 0), (0, 1)]
    (row,) = outbox_rows(ndb, participant_id=pid)
    assert (row.status, row.attempts, row.error_code) == (FAILED, 4, "500")
    (notice,) = outbox_rows(ndb, kind="counselor_notice")
    assert notice.to_phone == COUNSELOR_PHONE
    assert notice.body == notifier.library.message(
        "counselor_delivery_failed",
        program="Test IOP",
        participant="Sam",
        phone_tail="***0001",
        attempts=4,
        code="500",
    )
    assert sender.sent == [(COUNSELOR_PHONE, notice.body)]  # the notice itself went out in that run


def test_unsubscribed_21610_opts_the_participant_out_without_retry(ndb: Database, notifier: Notifier) -> None:
    pid = add_participant(ndb, phone="+15554000002")
    put(ndb, "+15554000002", "nudge one", participant_id=pid)
    put(ndb, "+15554000002", "later one", participant_id=pid, now=T0 + timedelta(hours=1))
    sender = RecordingSender(script={"+15554000002": [SendResult(ok=False, error_code=21610)]})
    report = deliver(ndb, sender, T0, notifier=notifier)
    assert report.failed == 1 and sender.calls == 2  # the participant's text, then the counselor notice
    participant = get_participant(ndb, pid)
    assert participant.status == OPTED_OUT and participant.opted_out_at is not None
    assert [r.status for r in outbox_rows(ndb, participant_id=pid)] == [FAILED, CANCELLED]
    assert deliver(ndb, sender, T0 + timedelta(hours=2), notifier=notifier).sent == 0
    assert sender.to("+15554000002") == []


@pytest.mark.parametrize("code", [21211, 21614])
def test_invalid_number_is_marked_and_the_counselor_told_once(ndb: Database, notifier: Notifier, code: int) -> None:
    pid = add_participant(ndb, name="Ana", phone="+15554000003")
    put(ndb, "+15554000003", "first", participant_id=pid)
    put(ndb, "+15554000003", "second", participant_id=pid)
    sender = RecordingSender(script={"+15554000003": [SendResult(ok=False, error_code=code)]})
    deliver(ndb, sender, T0, notifier=notifier)
    assert get_participant(ndb, pid).invalid_number is True
    assert sorted(r.status for r in outbox_rows(ndb, participant_id=pid)) == sorted([FAILED, CANCELLED])
    (notice,) = outbox_rows(ndb, kind="counselor_notice")
    assert notice.body == notifier.library.message(
        "counselor_invalid_number", program="Test IOP", participant="Ana", phone_tail="***0003", code=str(code)
    )


def test_a_sender_that_raises_counts_as_a_failed_attempt(ndb: Database) -> None:
    class Broken:
        def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
            raise RuntimeError("bug")

    put(ndb, "+15554000004", "x")
    assert deliver(ndb, Broken(), T0).retrying == 1
    (row,) = outbox_rows(ndb)
    assert (row.status, row.attempts, row.error_code, row.lease_owner) == (PENDING, 1, "sender_error", None)


# --- leases: a killed run loses nothing -------------------------------------------------------------


def test_rows_of_a_killed_run_are_sent_after_the_lease_expires(ndb: Database) -> None:
    for i in range(3):
        put(ndb, f"+1555500{i:04d}", f"m{i}")
    claimed = claim(ndb, T0, "dead-worker", limit=10)  # then the process is killed
    assert len(claimed) == 3
    sender = RecordingSender()
    assert deliver(ndb, sender, T0 + timedelta(minutes=1)).sent == 0  # still leased
    assert deliver(ndb, sender, T0 + outbox.LEASE + timedelta(seconds=1)).sent == 3
    assert sorted(b for _, b in sender.sent) == ["m0", "m1", "m2"]


def test_a_second_claim_gets_nothing_while_rows_are_leased(ndb: Database) -> None:
    ids = [put(ndb, f"+1555510{i:04d}", "x") for i in range(4)]
    first = claim(ndb, T0, "a", limit=3)
    second = claim(ndb, T0, "b", limit=10)
    assert len(first) == 3 and len(second) == 1
    assert {c.id for c in first} | {c.id for c in second} == set(ids)


# --- nudges are re-checked when claimed -------------------------------------------------------------


def test_nudge_to_a_participant_paused_since_planning_is_cancelled(ndb: Database) -> None:
    pid = add_participant(ndb, phone="+15556000001")
    put(ndb, "+15556000001", "nudge", kind="nudge", participant_id=pid)
    update_participant(ndb, pid, nudges_paused=True)
    sender = RecordingSender()
    assert deliver(ndb, sender, T0).sent == 0
    assert [(r.status, r.error_code) for r in outbox_rows(ndb)] == [(CANCELLED, "ineligible")]


def test_nudge_retry_waits_out_quiet_hours_then_expires(ndb: Database) -> None:
    pid = add_participant(ndb, phone="+15556000002", nudge_time="20:55")
    planned = utc(2026, 6, 2, 0, 55)  # 20:55 in New York
    put(ndb, "+15556000002", "nudge", kind="nudge", participant_id=pid, now=planned)
    sender = RecordingSender(script={"+15556000002": [RETRYABLE, SendResult(ok=True)]})
    assert deliver(ndb, sender, planned).retrying == 1  # retry due 21:00:00... at 21:00 local
    assert deliver(ndb, sender, planned + timedelta(minutes=6)).sent == 0  # 21:01: quiet hours
    (row,) = outbox_rows(ndb)
    assert row.status == PENDING and row.next_attempt_at == planned + timedelta(minutes=11)
    assert deliver(ndb, sender, planned + timedelta(minutes=125)).sent == 0  # past the late window
    assert [(r.status, r.error_code) for r in outbox_rows(ndb)] == [(CANCELLED, "ineligible")]
    assert sender.to("+15556000002") == []


def test_non_nudge_rows_ignore_quiet_hours_and_status(ndb: Database) -> None:
    pid = add_participant(ndb, phone="+15556000003", status="invited")
    put(ndb, "+15556000003", "invitation", participant_id=pid, now=utc(2026, 6, 2, 3, 0))  # 23:00 local
    assert deliver(ndb, RecordingSender(), utc(2026, 6, 2, 3, 0)).sent == 1


# --- crisis re-alerts -------------------------------------------------------------------------------


def test_crisis_realerts_every_interval_to_counselor_and_backup_until_acknowledged(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb, name="Lee", phone="+15557000001")
    event_id = ndb.run(lambda s: _crisis(s, pid, "+15557000001"))
    every = timedelta(minutes=15)

    def realert(minutes: int) -> list[int]:
        return realert_crises(
            ndb, library, T0 + timedelta(minutes=minutes), every=every, backup_phone=BACKUP_PHONE, program_name="P"
        )

    assert realert(14) == []
    first = realert(15)
    assert len(first) == 2
    assert realert(15) == []  # a concurrent or replayed tick adds nothing
    assert realert(29) == []
    assert len(realert(30)) == 2
    rows = outbox_rows(ndb, kind="crisis_realert")
    assert sorted(r.to_phone for r in rows) == sorted([COUNSELOR_PHONE, BACKUP_PHONE] * 2)
    assert rows[0].body == library.message(
        "crisis_realert",
        program="P",
        participant="Lee",
        phone_tail="***0001",
        event_id=event_id,
        minutes=15,
        count=2,
        link="",
    )

    def acknowledge(session: Any) -> None:
        session.get(CrisisEvent, event_id).acknowledged_at = T0 + timedelta(minutes=31)

    ndb.run(acknowledge)
    assert realert(60) == []
    assert ndb.run(lambda s: s.get(CrisisEvent, event_id).alerts_sent) == 3


def _crisis(session: Any, pid: int, phone: str) -> int:
    event = CrisisEvent(
        participant_id=pid,
        phone=phone,
        level="high",
        categories="suicidal",
        created_at=T0,
        alerts_sent=1,
        last_alert_at=T0,
    )
    session.add(event)
    session.flush()
    return int(event.id)


# --- against the local fake Twilio ----------------------------------------------------------------


def _twilio(fake: FakeTwilio) -> TwilioSender:
    return TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006", base_url=fake.base_url, timeout=5)


@pytest.mark.parametrize(("threads", "total"), [(1, 60), (8, 150)])
def test_twenty_percent_faults_every_message_arrives_exactly_once(
    ndb: Database, fake_twilio: FakeTwilio, notifier: Notifier, threads: int, total: int
) -> None:
    for i in range(total):
        put(ndb, f"+1555800{i:04d}", f"fault test {i}")
    fake_twilio.failure_rate = 0.2
    sender = _twilio(fake_twilio)
    when = T0
    for _ in range(12):  # ticks over 55 minutes: enough for every retry
        deliver(ndb, sender, when, threads=threads, notifier=notifier)
        when += timedelta(minutes=5)
    arrived = Counter(m.body for m in fake_twilio.messages)
    assert max(arrived.values()) == 1, "a message arrived twice"
    failed = [r for r in outbox_rows(ndb) if r.status == FAILED]
    # Four failures in a row (p = 0.2^4 per message) would fail a row for good, never silently.
    assert len(arrived) + len(failed) == total
    assert all(r.status in (SENT, FAILED) for r in outbox_rows(ndb) if r.kind == "invitation")
    assert fake_twilio.requests > total  # faults were injected and retried
    if threads == 1:  # deterministic order, seeded faults: every message makes it
        assert len(arrived) == total


def test_fake_twilio_21610_opts_out(ndb: Database, fake_twilio: FakeTwilio, notifier: Notifier) -> None:
    pid = add_participant(ndb, phone="+15558100001")
    put(ndb, "+15558100001", "hello", kind="nudge", participant_id=pid)
    fake_twilio.errors_for["+15558100001"] = (400, 21610)
    report = deliver(ndb, _twilio(fake_twilio), T0, notifier=notifier)
    assert report.failed == 1
    assert get_participant(ndb, pid).status == OPTED_OUT
    assert fake_twilio.bodies_to("+15558100001") == []
