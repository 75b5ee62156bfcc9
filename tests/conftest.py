"""Shared fixtures: a migrated database (SQLite per test, or TEST_DATABASE_URL), the app with an
injected clock, a local fake Twilio that the real twilio Client talks to, and `sms`, which posts
webhooks signed the way Twilio signs them."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from bot.app import create_app
from bot.cli import migrate
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

# CI explores the same examples on every run (a gate must not flake); locally they vary.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Real-browser fixtures (live_server, browser_page) and helpers: tests/browser.py.
pytest_plugins = ["tests.browser"]

FROM_NUMBER = "+15005550006"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()


def pytest_report_header(config: Any) -> str:
    return f"database: {'PostgreSQL ' + TEST_DATABASE_URL if TEST_DATABASE_URL else 'SQLite (per test)'}"


class Clock:
    """An injectable clock: aware UTC, moved by tests instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now


@pytest.fixture(scope="session")
def fake_twilio_server() -> Iterator[FakeTwilio]:
    server = FakeTwilio().start()
    yield server
    server.stop()


@pytest.fixture
def fake_twilio(fake_twilio_server: FakeTwilio) -> FakeTwilio:
    fake_twilio_server.reset()
    return fake_twilio_server


@pytest.fixture(scope="session")
def _template_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _migrated_postgres() -> str:
    engine = create_engine(TEST_DATABASE_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated, empty database for this test."""
    if TEST_DATABASE_URL:
        url: str = request.getfixturevalue("_migrated_postgres")
        engine = create_engine(url)
        with engine.begin() as conn:
            tables = [r[0] for r in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"))]
            if tables:
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return url
    template: Path = request.getfixturevalue("_template_sqlite")
    path = tmp_path / "bot.sqlite3"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))


@pytest.fixture
def app_config(database_url: str, fake_twilio: FakeTwilio, tmp_path: Path) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "PUBLIC_BASE_URL": None,
        "WTF_CSRF_ENABLED": False,
        "SIMULATOR_ENABLED": True,
        "SPOOL_DIR": str(tmp_path / "spool"),
    }


@pytest.fixture
def app(app_config: dict[str, Any], clock: Clock) -> Iterator[Any]:
    application = create_app(app_config)
    application.extensions["clock"] = clock
    yield application
    application.extensions["db"].dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def dash_app(app_config: dict[str, Any], clock: Clock) -> Iterator[Any]:
    """The app as counselors use it: CSRF checked on every form."""
    application = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    application.extensions["clock"] = clock
    yield application
    application.extensions["db"].dispose()


@pytest.fixture
def dash(dash_app: Any) -> Any:
    from tests.dashboard_helpers import Dashboard

    return Dashboard(dash_app.test_client())


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def db(app: Any) -> Any:
    return app.extensions["db"]


_sids = count(1)


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


@dataclass
class WebhookResult:
    status: int
    content_type: str
    replies: list[str]
    raw: bytes


def parse_twiml(raw: bytes) -> list[str]:
    root = ET.fromstring(raw)
    assert root.tag == "Response"
    return [(m.text or "") for m in root.findall("Message")]


class SmsPoster:
    """Posts inbound SMS webhooks to /sms the way Twilio does: form fields + X-Twilio-Signature."""

    def __init__(self, client: Any, token: str = AUTH_TOKEN, url: str = "http://localhost/sms") -> None:
        self.client = client
        self.validator = RequestValidator(token)
        self.url = url

    def form(self, body: str, from_: str, sid: str | None = None, **extra: str) -> dict[str, str]:
        return {
            "MessageSid": sid or new_sid(), "SmsSid": sid or "", "AccountSid": ACCOUNT_SID, "From": from_,
            "To": FROM_NUMBER, "Body": body, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
            "ApiVersion": "2010-04-01", "FromCountry": "US", "ToCountry": "US", **extra,
        }

    def post(self, params: dict[str, str], *, signature: str | None = None, url: str | None = None,
             path: str = "/sms", headers: dict[str, str] | None = None) -> WebhookResult:
        sign_url = url or self.url
        sig = signature if signature is not None else self.validator.compute_signature(sign_url, params)
        response = self.client.post(path, data=params, headers={"X-Twilio-Signature": sig, **(headers or {})})
        replies = parse_twiml(response.data) if response.data.strip() else []
        response.close()  # as a WSGI server does once the answer is written: alerts go out now
        return WebhookResult(response.status_code, response.content_type, replies, response.data)

    def __call__(self, body: str, from_: str = "+12025550101", sid: str | None = None, **extra: str) -> list[str]:
        params = self.form(body, from_, sid, **extra)
        if not params["SmsSid"]:
            params["SmsSid"] = params["MessageSid"]
        result = self.post(params)
        assert result.status == 200, result.raw
        assert result.content_type.startswith("text/xml")
        return result.replies


@pytest.fixture
def sms(client: Any) -> SmsPoster:
    return SmsPoster(client)


@pytest.fixture
def counselor(db: Any) -> Any:
    from bot.enrollment import create_counselor

    return db.run(lambda s: create_counselor(s, email="casey@clinic.example", name="Casey Counselor",
                                             phone="+12025550100", password="correct horse battery", region="US"))


@pytest.fixture
def enroll_participant(app: Any, db: Any, counselor: Any, clock: Clock) -> Any:
    """Enroll (and by default activate) a participant; returns the Participant."""
    from bot.enrollment import EnrollmentRequest, enroll
    from bot.inbound import deliver_now
    from bot.models import Participant

    def make(phone: str = "+12025550101", *, active: bool = True, **fields: Any) -> Participant:
        request = EnrollmentRequest(phone=phone, counselor_email=counselor.email,
                                    name=fields.pop("name", "Pat"), **fields)

        def work(session: Any) -> tuple[Participant, int]:
            participant, outbox_id = enroll(session, app.extensions["library"], request, now=clock(), region="US",
                                            program_name=app.config["PROGRAM_NAME"])
            if active:
                participant.status = "active"
                participant.consent_at = clock()
            return participant, outbox_id

        participant, outbox_id = db.run(work)
        deliver_now(app, [outbox_id])  # as `flask enroll` does
        return participant

    return make


@pytest.fixture
def participant(enroll_participant: Any) -> Any:
    return enroll_participant()
