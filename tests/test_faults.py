"""Faults must not turn into harm: a database outage, a slow Twilio, a send that cannot be recorded,
an opt-out racing a send. Each test reproduces the fault through the path a user takes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import outbox
from bot.db import Database
from bot.models import AuditLog, CrisisEvent, Message, Outbox, Participant
from bot.scheduler import tick
from bot.sms import ConsoleSender, SendResult
from tests.conftest import SmsPoster, new_sid

PHONE = "+12025550101"
COUNSELOR_PHONE = "+12025550100"
BACKUP = "+12025550199"
CRISIS_TEXT = "i have the pills in my hand and i am going to take them all tonight"


def _dead_database(db: Database) -> Database:
    """A real engine that cannot reach its database (same dialect as the test's)."""
    if db.is_postgres:
        return Database("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=1")
    import tempfile

    # SQLite cannot open a directory as its database file: "unable to open database file".
    return Database(f"sqlite:///{tempfile.mkdtemp(prefix='dead-db-')}")


@contextmanager
def outage(app: Any) -> Iterator[None]:
    """The database is unreachable inside the block, and back after it."""
    real = app.extensions["db"]
    dead = _dead_database(real)
    app.extensions["db"] = dead
    try:
        yield
    finally:
        app.extensions["db"] = real
        dead.dispose()


def _count(db: Any, *where: Any, model: Any = Message) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


# --- a database outage -----------------------------------------------------------------------------


def test_crisis_text_during_an_outage_gets_resources_and_alerts_once_the_database_is_back(
    app: Any, sms: SmsPoster, participant: Any, fake_twilio: Any, db: Any, clock: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sid = new_sid()
    received_at = clock()
    with outage(app):
        result = sms.post(sms.form(CRISIS_TEXT, PHONE, sid=sid))
    # 200, so Twilio delivers the body (a 4xx/5xx body never reaches the texter, error 11217).
    assert result.status == 200 and result.content_type.startswith("text/xml")
    assert any("988" in r for r in result.replies) and any("911" in r for r in result.replies)
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == [] or all(
        "URGENT" not in b for b in fake_twilio.bodies_to(COUNSELOR_PHONE))
    assert _count(db, CrisisEvent.id.is_not(None), model=CrisisEvent) == 0

    clock.advance(minutes=3)
    tick(app)  # the database is back: the spooled text is recorded and the counselor alerted

    alerts = [b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]
    assert len(alerts) == 1
    with db.session() as s:
        event = s.scalars(select(CrisisEvent)).one()
        assert event.kind == "crisis" and event.created_at == received_at
        assert s.scalar(select(Participant.crisis_hold)) is True
        inbound = s.scalars(select(Message).where(Message.twilio_sid == sid)).one()
        assert inbound.body == CRISIS_TEXT
        # What the texter was actually answered is on record, and nothing more went to them.
        replies = s.scalars(select(Message.body).where(Message.direction == "out", Message.kind == "reply")).all()
        assert replies == result.replies
    assert all("988" not in b for b in fake_twilio.bodies_to(PHONE)[1:])  # only the invitation before

    tick(app)  # replayed once only
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]) == 1
    assert _count(db, Message.twilio_sid == sid) == 1
    # Privacy: no full phone number and no message text in any log line, outage included.
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        assert PHONE not in line and PHONE[1:] not in line and "pills" not in line, line


def test_a_crisis_text_from_an_unknown_number_during_an_outage_alerts_the_backup_later(
    app: Any, sms: SmsPoster, counselor: Any, fake_twilio: Any, db: Any,
) -> None:
    app.config["CRISIS_BACKUP_PHONE"] = BACKUP
    with outage(app):
        result = sms.post(sms.form(CRISIS_TEXT, "+12025550177"))
    assert result.status == 200 and any("988" in r for r in result.replies)
    tick(app)
    assert len([b for b in fake_twilio.bodies_to(BACKUP) if "URGENT" in b]) == 1


def test_an_ordinary_text_during_an_outage_is_asked_to_text_again_and_kept(
    app: Any, sms: SmsPoster, participant: Any, fake_twilio: Any, db: Any,
) -> None:
    sid = new_sid()
    with outage(app):
        result = sms.post(sms.form("feeling kind of anxious about tomorrow", PHONE, sid=sid))
    assert result.status == 200
    assert len(result.replies) == 1 and "text again" in result.replies[0].lower()
    tick(app)
    assert _count(db, Message.twilio_sid == sid) == 1
    assert _count(db, CrisisEvent.id.is_not(None), model=CrisisEvent) == 0
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []
    with db.session() as s:  # no late skill out of nowhere: the only reply on record is the one sent
        assert s.scalars(select(Message.body).where(Message.kind == "reply")).all() == result.replies


def test_stop_during_an_outage_is_confirmed_and_applied_once_the_database_is_back(
    app: Any, sms: SmsPoster, participant: Any, db: Any,
) -> None:
    with outage(app):
        result = sms.post(sms.form("STOP", PHONE))
    assert result.status == 200 and "opted out" in result.replies[0]
    tick(app)
    with db.session() as s:
        assert s.scalar(select(Participant.status)) == "opted_out"


def test_the_webhook_itself_replays_the_spool_when_the_database_is_back(
    app: Any, sms: SmsPoster, participant: Any, fake_twilio: Any,
) -> None:
    from bot import webhook

    with outage(app):
        sms.post(sms.form(CRISIS_TEXT, PHONE))
    webhook._spool_checked = 0.0
    sms("hello", from_=PHONE)  # no tick: the next text that gets through replays the spool
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]) == 1


def test_healthz_answers_503_only_when_the_database_is_down(app: Any, client: Any, clock: Any,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    body = client.get("/healthz").get_json()
    assert body["database"] == "ok" and body["scheduler"] == "never" and body["last_tick_age_seconds"] is None
    tick(app)
    clock.advance(seconds=42)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["last_tick_age_seconds"] == 42.0 and response.get_json()["scheduler"] == "ok"
    clock.advance(seconds=180)
    with caplog.at_level(logging.ERROR, logger="bot.health"):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["scheduler"] == "stale"
    assert any("stale" in r.getMessage() for r in caplog.records)
    with outage(app):
        response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json()["database"] == "unavailable"


# --- alerts ----------------------------------------------------------------------------------------


def test_the_backup_gets_the_first_crisis_alert_not_only_repeats(
    app: Any, sms: SmsPoster, participant: Any, fake_twilio: Any,
) -> None:
    app.config["CRISIS_BACKUP_PHONE"] = BACKUP
    sms(CRISIS_TEXT, from_=PHONE)
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]) == 1
    assert len([b for b in fake_twilio.bodies_to(BACKUP) if "URGENT" in b]) == 1


def test_a_crisis_text_from_an_unknown_number_alerts_the_backup_at_once(
    app: Any, sms: SmsPoster, counselor: Any, fake_twilio: Any, db: Any,
) -> None:
    app.config["CRISIS_BACKUP_PHONE"] = BACKUP
    replies = sms(CRISIS_TEXT, from_="+12025550177")
    assert any("988" in r for r in replies)
    alerts = fake_twilio.bodies_to(BACKUP)
    assert len(alerts) == 1 and "unknown number" in alerts[0] and "0177" in alerts[0]
    assert "+12025550177" not in alerts[0]


def test_the_crisis_reply_is_written_before_the_counselor_alert_is_sent(
    app: Any, client: Any, participant: Any, fake_twilio: Any,
) -> None:
    poster = SmsPoster(client)
    params = poster.form(CRISIS_TEXT, PHONE)
    signature = poster.validator.compute_signature(poster.url, params)
    response = client.post("/sms", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200 and b"988" in response.data
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []  # the answer is out; the alert has not left yet
    response.close()  # the server has written the answer
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]) == 1


# --- no text after an opt-out ---------------------------------------------------------------------


def _pending_practice(db: Any, participant: Any, clock: Any) -> int:
    return db.run(lambda s: outbox.enqueue(s, to=participant.phone, body="Time for a minute of practice.",
                                           kind="nudge", now=clock(), participant_id=participant.id).id)


def test_a_text_claimed_before_stop_is_not_sent_after_it(
    app: Any, sms: SmsPoster, participant: Any, fake_twilio: Any, db: Any, clock: Any,
) -> None:
    row_id = _pending_practice(db, participant, clock)
    claimed = outbox.claim(db, clock(), "tick-1", ids=[row_id])
    assert [c.id for c in claimed] == [row_id]
    sms("STOP", from_=PHONE)  # arrives while the tick holds the claim
    before = len(fake_twilio.bodies_to(PHONE))
    assert not outbox.still_sendable(db, claimed[0], "tick-1")
    # The claimed row is delivered by that tick's run: nothing leaves, and it stays cancelled.
    report = outbox.deliver(db, app.extensions["sms_sender"], clock(), ids=[row_id])
    assert report.sent == 0 and len(fake_twilio.bodies_to(PHONE)) == before
    with db.session() as s:
        assert s.get(Outbox, row_id).status == "cancelled"


def test_a_cancelled_row_never_flips_back_to_sent(app: Any, participant: Any, db: Any, clock: Any) -> None:
    row_id = _pending_practice(db, participant, clock)
    claimed = outbox.claim(db, clock(), "tick-1", ids=[row_id])[0]
    db.run(lambda s: outbox.cancel_pending_for(s, participant.id))
    outbox.record(db, claimed, "tick-1", SendResult(ok=True, sid="SM" + "f" * 32, status="queued"), clock())
    with db.session() as s:
        assert s.get(Outbox, row_id).status == "cancelled"
        # It did leave (the provider accepted it in the instant before the opt-out): on record.
        assert s.scalar(select(func.count()).select_from(Message).where(Message.twilio_sid == "SM" + "f" * 32)) == 1


def _carrier_opt_out(db: Any, participant: Any, clock: Any) -> tuple[dict[str, str], int]:
    """A status callback saying the carrier refused the invitation because the person opted out
    (21610), and a practice text waiting in the outbox."""
    with db.session() as s:
        sid = s.scalar(select(Message.twilio_sid).where(Message.kind == "invitation"))
    row_id = _pending_practice(db, participant, clock)
    return ({"MessageSid": sid, "SmsSid": sid, "MessageStatus": "undelivered", "ErrorCode": "21610",
             "AccountSid": "AC"}, row_id)


def test_a_carrier_opt_out_in_a_status_callback_opts_the_participant_out(
    app: Any, sms: SmsPoster, participant: Any, db: Any, fake_twilio: Any, clock: Any,
) -> None:
    params, row_id = _carrier_opt_out(db, participant, clock)
    result = sms.post(params, url="http://localhost/sms/status", path="/sms/status")
    assert result.status == 200
    with db.session() as s:
        assert s.scalar(select(Participant.status)) == "opted_out"
        assert s.get(Outbox, row_id).status == "cancelled"
        assert s.scalar(select(AuditLog.actor).where(AuditLog.action == "opt_out")) == "carrier"
    tick(app)
    notices = fake_twilio.bodies_to(COUNSELOR_PHONE)
    assert len(notices) == 1 and "opted out" in notices[0].lower()
    sms.post(params, url="http://localhost/sms/status", path="/sms/status")  # a repeat callback
    tick(app)
    assert len(fake_twilio.bodies_to(COUNSELOR_PHONE)) == 1


def test_a_carrier_opt_out_in_a_status_callback_during_an_outage_is_kept_and_applied_later(
    app: Any, sms: SmsPoster, participant: Any, db: Any, fake_twilio: Any, clock: Any,
) -> None:
    params, row_id = _carrier_opt_out(db, participant, clock)
    with outage(app):
        result = sms.post(params, url="http://localhost/sms/status", path="/sms/status")
    # 200: Twilio would not post the callback again after an error answer; it is kept instead.
    assert result.status == 200
    with db.session() as s:
        assert s.scalar(select(Participant.status)) == "active"
    clock.advance(minutes=2)
    tick(app)  # the database is back: the callback is applied, as of when it arrived
    with db.session() as s:
        assert s.scalar(select(Participant.status)) == "opted_out"
        assert s.get(Outbox, row_id).status == "cancelled"
        assert s.scalar(select(Message.error_code).where(Message.twilio_sid == params["MessageSid"])) == "21610"
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "opt_out")).one()
        assert audit.actor == "carrier" and audit.created_at == clock.now - timedelta(minutes=2)
    tick(app)  # applied once
    notices = fake_twilio.bodies_to(COUNSELOR_PHONE)
    assert len(notices) == 1 and "opted out" in notices[0].lower()
    assert not app.extensions["spool"].has_entries()


# --- never send twice because recording failed -----------------------------------------------------


def test_console_ids_are_unique_across_processes_so_nothing_is_sent_twice(
    app: Any, runner: Any, counselor: Any, db: Any, clock: Any,
) -> None:
    senders = []
    for phone in ("+12025550131", "+12025550132"):
        sender = ConsoleSender(stream=open("/dev/null", "w"))  # noqa: SIM115 - each command is a new process
        senders.append(sender)
        app.extensions["sms_sender"] = sender
        result = runner.invoke(args=["enroll", phone, "--counselor", counselor.email])
        assert result.exit_code == 0, result.output
    assert [len(s.sent) for s in senders] == [1, 1]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "pending")) == 0
    clock.advance(minutes=10)
    tick(app)
    assert [len(s.sent) for s in senders] == [1, 1]


class _FixedSid:
    """A provider that accepts every message with the same id (as the console sender once did)."""

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.sent: list[str] = []

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        self.sent.append(to)
        return SendResult(ok=True, sid=self.sid, status="queued")


def test_a_send_that_was_accepted_but_not_recorded_is_not_sent_again(
    app: Any, participant: Any, db: Any, clock: Any,
) -> None:
    with db.session() as s:
        taken = s.scalar(select(Message.twilio_sid).where(Message.kind == "invitation"))
    sender = _FixedSid(taken)  # recording the send fails on the unique provider id
    row_id = _pending_practice(db, participant, clock)
    report = outbox.deliver(db, sender, clock(), ids=[row_id])
    assert report.sent == 1 and sender.sent == [PHONE]
    with db.session() as s:
        assert s.get(Outbox, row_id).status == "sent"
    clock.advance(minutes=10)
    outbox.deliver(db, sender, clock())
    assert sender.sent == [PHONE]


def test_a_send_the_database_cannot_record_at_all_is_spooled_and_never_claimed_again(
    app: Any, participant: Any, db: Any, clock: Any, tmp_path: Any,
) -> None:
    from bot.spool import Spool

    store = Spool(tmp_path / "spool")
    row_id = _pending_practice(db, participant, clock)
    claimed = outbox.claim(db, clock(), "tick-1", ids=[row_id])[0]
    dead = _dead_database(db)
    try:
        assert outbox.keep_unrecorded(dead, store, claimed, SendResult(ok=True, sid="SM" + "e" * 32), clock()) == "sent"
    finally:
        dead.dispose()
    assert store.unrecorded_outbox_ids() == {row_id}
    clock.advance(minutes=10)  # the lease has expired: without the spool the row would be sent again
    sender = _FixedSid("SM" + "d" * 32)
    outbox.deliver(db, sender, clock(), spool=store)
    assert sender.sent == []
    assert outbox.replay_unrecorded(db, store) == 1
    assert store.unrecorded_outbox_ids() == frozenset()
    with db.session() as s:
        row = s.get(Outbox, row_id)
        assert row.status == "sent" and row.provider_sid == "SM" + "e" * 32
    outbox.deliver(db, sender, clock() + timedelta(minutes=10), spool=store)
    assert sender.sent == []
