"""`GET /metrics` through the real app: counters moved by signed webhooks and outbox sends, gauges
read from the database at scrape time, the Bearer token, no phone numbers, and gunicorn-style
multiprocess aggregation (PROMETHEUS_MULTIPROC_DIR) across real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from bot import heartbeat, metrics, outbox
from bot.db import Database
from bot.scheduler import tick
from tests.conftest import SmsPoster

ROOT = Path(__file__).resolve().parent.parent
PHONE = "+12025550101"
STRANGER = "+12025550199"
COUNSELOR_PHONE = "+12025550100"
CHECK_TEXT = "i wish i could go to sleep and not wake up"
TOKEN = "metrics-token-0123456789"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    # CSRF on, as in production; this test's own spool (never another run's leftover texts).
    return {**app_config, "WTF_CSRF_ENABLED": True, "SPOOL_DIR": str(tmp_path / "spool")}


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_text(client: Any, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return str(response.get_data(as_text=True))


def scrape(client: Any, token: str | None = None) -> Samples:
    return parse(scrape_text(client, token))


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_webhook_texts_move_the_inbound_reply_and_crisis_counters(
    client: Any, sms: SmsPoster, participant: Any, fake_twilio: Any
) -> None:
    before = scrape(client)
    replies = sms("so nervous about court tomorrow", from_=PHONE)
    replies += sms(CHECK_TEXT, from_=PHONE)  # a check event: the direct question
    replies += sms("yes", from_=PHONE)  # the answer makes it a crisis (the text alone has no risk)
    replies += sms("i want to kill myself", from_=STRANGER)  # a crisis from an unknown number
    params = sms.form("hello again", PHONE)
    params["SmsSid"] = params["MessageSid"]
    first, again = sms.post(params), sms.post(params)  # Twilio redelivers the same MessageSid
    forged = sms.post(sms.form("hi", PHONE), signature="not-a-signature")
    assert (first.status, again.status, forged.status) == (200, 200, 403)
    assert again.replies == [] and forged.replies == []
    replies += first.replies

    text = scrape_text(client)
    after = parse(text)
    assert delta(before, after, "bot_inbound_messages_total", result="handled") == 5
    assert delta(before, after, "bot_inbound_messages_total", result="duplicate") == 1
    assert delta(before, after, "bot_inbound_messages_total", result="forged") == 1
    assert delta(before, after, "bot_inbound_messages_total", result="error") == 0
    assert delta(before, after, "bot_replies_total") == len(replies) > 5
    assert delta(before, after, "bot_crisis_events_total", tier="crisis") == 2
    assert delta(before, after, "bot_crisis_events_total", tier="check") == 1
    assert value(after, "bot_database_up") == 1
    for phone in (PHONE, STRANGER, COUNSELOR_PHONE):
        assert phone[-10:] not in text and phone[-7:] not in text
    for words in ("court", "wake up", "kill", "hello"):
        assert words not in text


def test_outbox_gauges_count_pending_rows_and_the_longest_wait_at_scrape_time(
    app: Any, client: Any, db: Any, clock: Any, fake_twilio: Any
) -> None:
    empty = scrape(client)
    assert value(empty, "bot_outbox_pending") == 0
    assert ("bot_outbox_oldest_pending_seconds", ()) in empty
    assert value(empty, "bot_outbox_oldest_pending_seconds") == 0
    now = clock()

    def add(session: Any) -> None:
        for due, to in ((now - timedelta(seconds=90), "+12025550171"), (now - timedelta(seconds=30), "+12025550172"),
                        (now + timedelta(hours=1), "+12025550173")):
            outbox.enqueue(session, to=to, body="a notice", kind="notice", now=due)

    db.run(add)
    waiting = scrape(client)
    assert value(waiting, "bot_outbox_pending") == 3
    assert value(waiting, "bot_outbox_oldest_pending_seconds") == 90
    clock.advance(seconds=10)  # read at scrape time with the app's clock
    assert value(scrape(client), "bot_outbox_oldest_pending_seconds") == 100

    tick(app, clock())  # sends the two due rows; the third is not due for an hour
    assert len(fake_twilio.messages) == 2
    after = scrape(client)
    assert value(after, "bot_outbox_pending") == 1
    assert value(after, "bot_outbox_oldest_pending_seconds") == 0


def test_tick_gauges_come_from_the_scheduler_heartbeat(app: Any, client: Any, db: Any, clock: Any) -> None:
    never = scrape(client)
    assert not any(name.startswith(("bot_tick_", "bot_last_tick_")) for name, _ in never)
    first = clock()
    tick(app, first)
    beat = heartbeat.last(db)
    assert beat is not None
    samples = scrape(client)
    assert value(samples, "bot_last_tick_timestamp_seconds") == first.timestamp()
    assert value(samples, "bot_tick_duration_seconds") == pytest.approx(beat.duration_seconds)
    assert 0 <= beat.duration_seconds < 30

    later = clock.advance(minutes=1)
    tick(app, later)
    assert value(scrape(client), "bot_last_tick_timestamp_seconds") == later.timestamp()


def test_the_token_is_required_when_configured(app: Any, client: Any) -> None:
    assert client.get("/metrics").status_code == 200  # open while METRICS_TOKEN is unset
    app.config["METRICS_TOKEN"] = TOKEN
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert b"bot_" not in response.data
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert value(scrape(client, TOKEN), "bot_database_up") == 1
    assert client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405


def test_an_unreachable_database_drops_the_database_gauges_but_never_fails(
    app: Any, client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tick(app, app.extensions["clock"]())  # a heartbeat exists, but cannot be read below
    broken = Database(f"sqlite:///{tmp_path / 'missing' / 'nowhere.sqlite3'}")
    monkeypatch.setitem(app.extensions, "db", broken)
    samples = scrape(client)
    assert value(samples, "bot_database_up") == 0
    assert ("bot_database_up", ()) in samples
    names = {name for name, _ in samples}
    assert not names & {"bot_outbox_pending", "bot_outbox_oldest_pending_seconds", "bot_tick_duration_seconds",
                        "bot_last_tick_timestamp_seconds"}
    assert ("bot_inbound_messages_total", (("result", "handled"),)) in samples  # the counters still answer
    broken.dispose()


def test_failed_sends_count_by_twilio_error_code(
    app: Any, client: Any, db: Any, clock: Any, fake_twilio: Any
) -> None:
    fake_twilio.errors_for["+12025550181"] = (400, 21211)  # invalid number: final
    fake_twilio.errors_for["+12025550182"] = (429, 20429)  # too many requests: retried later
    now = clock()
    db.run(lambda s: [outbox.enqueue(s, to=to, body="a notice", kind="notice", now=now)
                      for to in ("+12025550181", "+12025550182", "+12025550183")])
    before = scrape(client)
    summary = tick(app, now)
    assert (summary.sent, summary.retrying, summary.failed) == (1, 1, 1)
    text = scrape_text(client)
    after = parse(text)
    assert delta(before, after, "bot_delivery_failures_total", code="21211") == 1
    assert delta(before, after, "bot_delivery_failures_total", code="20429") == 1
    assert "2025550181" not in text and "2025550182" not in text

    clock.advance(minutes=5)  # the retry fails again
    tick(app, clock())
    assert delta(after, scrape(client), "bot_delivery_failures_total", code="20429") == 1


@pytest.mark.parametrize(("code", "detail", "label"), [
    (21610, None, "21610"),
    (503, None, "503"),
    (None, "ReadTimeout", "timeout"),
    (None, "ConnectTimeout", "timeout"),
    (None, "ConnectionError", "ConnectionError"),
    (None, "sender_error", "sender_error"),
    (None, None, "error"),
    ("+12025550101", None, "other"),  # never a phone number, whatever a sender puts there
    (12025550101, None, "other"),
    (None, "to +12025550101", "to"),
])
def test_failure_labels_are_few_and_never_phone_numbers(code: Any, detail: str | None, label: str) -> None:
    assert metrics.failure_code(code, detail) == label


# --- multiprocess mode (gunicorn workers) ----------------------------------------------------------

WORKER = """
from bot import metrics
from bot.sms import SendResult
metrics.count_inbound("handled", ["crisis"])
metrics.count_replies(2)
metrics.count_delivery_failure(SendResult(ok=False, error_code=21610))
"""

SCRAPER = """
import sys
from bot import metrics
from bot.app import create_app
metrics.count_inbound("handled")
app = create_app({"TESTING": True, "DATABASE_URL": sys.argv[1], "SECRET_KEY": "x", "SPOOL_DIR": sys.argv[2],
                  "METRICS_TOKEN": "t"})
response = app.test_client().get("/metrics", headers={"Authorization": "Bearer t"})
assert response.status_code == 200, response.status_code
sys.stdout.write(response.get_data(as_text=True))
"""


def test_multiprocess_mode_sums_the_counters_of_every_process(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prometheus"  # created by the first process that counts
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, env=env, stderr=subprocess.PIPE)
               for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    done = subprocess.run([sys.executable, "-c", SCRAPER, database_url, str(tmp_path / "spool")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    samples = parse(done.stdout)
    assert value(samples, "bot_inbound_messages_total", result="handled") == 3  # 2 workers + the scraper
    assert value(samples, "bot_crisis_events_total", tier="crisis") == 2
    assert value(samples, "bot_replies_total") == 4
    assert value(samples, "bot_delivery_failures_total", code="21610") == 2
    assert value(samples, "bot_database_up") == 1 and value(samples, "bot_outbox_pending") == 0
    assert len(list(directory.glob("counter_*.db"))) == 3  # one file per process

    # gunicorn's child_exit hook: a dead worker's counts are kept (counters never go down).
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    for worker in workers:
        metrics.child_exit(None, SimpleNamespace(pid=worker.pid))
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    again = parse(generate_latest(registry).decode())
    assert value(again, "bot_inbound_messages_total", result="handled") == 3
