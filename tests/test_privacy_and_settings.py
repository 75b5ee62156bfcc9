"""Privacy (retention, export, erasure, no data in logs) and settings that must refuse to run unsafe."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from bot.app import create_app
from bot.config import ROOT, ConfigError
from bot.models import (
    AuditLog,
    Counselor,
    CrisisEvent,
    DiaryEntry,
    ExerciseSession,
    Message,
    Outbox,
    Participant,
    Trigger,
)
from bot.scheduler import tick
from bot.spool import MAX_TRIES, InboundEntry
from tests.conftest import SmsPoster

PHONE = "+12025550101"
UK_PHONE = "+447400123456"
OTHER_PHONE = "+12025550102"
COUNSELOR_PHONE = "+12025550100"
BACKUP = "+12025550199"
CRISIS_TEXT = "i have the pills in my hand and i am going to take them all tonight"


# --- retention, export, erasure ------------------------------------------------------------------


def test_the_tick_blanks_message_text_older_than_the_retention_but_keeps_the_rows(
    app: Any, sms: SmsPoster, participant: Any, db: Any, clock: Any,
) -> None:
    sms("feeling anxious", from_=PHONE)
    clock.advance(days=179)
    sms("still anxious", from_=PHONE)
    rows_before = _count(db, Message)
    clock.advance(days=2)
    tick(app)
    with db.session() as s:
        bodies = {m.body for m in s.scalars(select(Message).where(Message.direction == "in"))}
    assert bodies == {"", "still anxious"}
    assert _count(db, Message) >= rows_before  # rows (and counts) kept


def test_retention_zero_keeps_every_message(app: Any, sms: SmsPoster, participant: Any, db: Any, clock: Any) -> None:
    app.config["MESSAGE_RETENTION_DAYS"] = 0
    sms("feeling anxious", from_=PHONE)
    clock.advance(days=400)
    tick(app)
    with db.session() as s:
        assert s.scalar(select(Message.body).where(Message.direction == "in")) == "feeling anxious"


def _count(db: Any, model: Any, *where: Any) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


def test_export_prints_everything_stored_about_a_participant(
    runner: Any, sms: SmsPoster, participant: Any,
) -> None:
    sms("i feel so anxious", from_=PHONE)
    sms("5", from_=PHONE)
    result = runner.invoke(args=["participant", "export", "(202) 555-0101"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["participant"]["phone"] == PHONE
    assert "i feel so anxious" in [m["body"] for m in data["messages"]]
    assert data["exercise_sessions"] and data["counselor"]["email"] == "casey@clinic.example"
    assert runner.invoke(args=["participant", "export", "+12025550999"]).exit_code != 0


def test_erase_asks_first_removes_texts_keeps_aggregates_and_is_audited(
    runner: Any, sms: SmsPoster, participant: Any, db: Any, counselor: Any,
) -> None:
    sms("i feel so anxious", from_=PHONE)
    sms("7", from_=PHONE)
    sms("i want to die", from_=PHONE)
    declined = runner.invoke(args=["participant", "erase", PHONE, "--by", counselor.email], input="n\n")
    assert declined.exit_code != 0 and _count(db, Message, Message.participant_id.is_not(None)) > 0

    result = runner.invoke(args=["participant", "erase", PHONE, "--by", counselor.email], input="y\n")
    assert result.exit_code == 0, result.output
    assert _count(db, Message, Message.phone == PHONE) == 0
    with db.session() as s:
        person = s.scalars(select(Participant)).one()
        assert person.phone.startswith("erased") and person.name is None and person.status == "erased"
        assert s.scalar(select(ExerciseSession.rating_before)) == 7  # the aggregate survives
        assert PHONE not in {e.phone for e in s.scalars(select(CrisisEvent))}
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "erase")).one()
        assert audit.actor == counselor.email and audit.detail["messages"] > 0
    assert runner.invoke(args=["participant", "erase", PHONE, "--by", counselor.email, "--yes"]).exit_code != 0


def test_erase_removes_triggers_diary_words_and_ack_notes_and_keeps_diary_ratings(
    runner: Any, sms: SmsPoster, participant: Any, db: Any, counselor: Any, clock: Any,
) -> None:
    sms("LOG fight with my sister about money", from_=PHONE)
    sms("i want to die", from_=PHONE)

    def seed(s: Any) -> None:
        person = s.scalars(select(Participant)).one()
        s.add(DiaryEntry(participant_id=person.id, local_date=date(2026, 11, 26), item="emotion",
                         text="shame about the fight", created_at=clock.now))
        s.add(DiaryEntry(participant_id=person.id, local_date=date(2026, 11, 26), item="urge_use", value=3,
                         created_at=clock.now))
        event = s.scalars(select(CrisisEvent)).first()
        event.acknowledged_at, event.acknowledged_by = clock.now, counselor.email
        event.ack_note = "Spoke to her, she named her sister and the debt"

    db.run(seed)
    assert _count(db, Trigger) == 1
    result = runner.invoke(args=["participant", "erase", PHONE, "--by", counselor.email, "--yes"])
    assert result.exit_code == 0, result.output
    with db.session() as s:
        assert s.scalar(select(func.count(Trigger.id))) == 0
        assert {(d.item, d.value, d.text) for d in s.scalars(select(DiaryEntry))} == {
            ("emotion", None, None), ("urge_use", 3, None)}
        assert {e.ack_note for e in s.scalars(select(CrisisEvent))} == {None}
        assert {e.acknowledged_by for e in s.scalars(select(CrisisEvent)) if e.acknowledged_at} == {counselor.email}


def test_retention_also_blanks_diary_words_and_triggers(
    app: Any, sms: SmsPoster, participant: Any, db: Any, clock: Any,
) -> None:
    sms("LOG payday and old friends calling", from_=PHONE)
    clock.advance(days=181)
    sms("LOG the anniversary", from_=PHONE)
    tick(app)
    with db.session() as s:
        assert sorted(t.text for t in s.scalars(select(Trigger))) == ["", "the anniversary"]


def _counselor_texts(db: Any) -> list[tuple[str, str, str, str | None]]:
    """(table, kind, body, status) of every text to or from a counselor's or the backup phone."""
    with db.session() as s:
        rows = [("outbox", o.kind, o.body, o.status) for o in s.scalars(
            select(Outbox).where(Outbox.participant_id.is_(None)).order_by(Outbox.id))]
        rows += [("messages", m.kind, m.body, m.status) for m in s.scalars(
            select(Message).where(Message.participant_id.is_(None), Message.phone.in_((COUNSELOR_PHONE, BACKUP)))
            .order_by(Message.id))]
    return rows


def test_erase_blanks_the_alerts_and_notices_to_counselors_that_name_the_participant(
    app: Any, runner: Any, sms: SmsPoster, enroll_participant: Any, db: Any, counselor: Any, clock: Any,
) -> None:
    app.config["CRISIS_BACKUP_PHONE"] = BACKUP
    sms(CRISIS_TEXT, from_=PHONE)  # before they were enrolled: the backup hears of an unknown number
    enroll_participant(PHONE, name="Pat")
    enroll_participant(OTHER_PHONE, name="Robin")
    sms(CRISIS_TEXT, from_=PHONE)
    sms(CRISIS_TEXT, from_=OTHER_PHONE)
    clock.advance(minutes=16)
    tick(app)  # repeat alerts
    with db.session() as s:
        event_id = s.scalar(select(CrisisEvent.id).join(Participant).where(Participant.name == "Pat"))
    sms(f"ACK {event_id} called Pat, she is at her sister's", from_=COUNSELOR_PHONE)
    sms("STOP", from_=PHONE)  # her counselor is told she opted out
    before = _counselor_texts(db)
    about_pat = [t for t in before if "Pat" in t[2] or "0101" in t[2]]
    assert {t[1] for t in about_pat} >= {"crisis_alert", "crisis_realert", "counselor_ack", "counselor_reply",
                                         "optout_notice"}

    result = runner.invoke(args=["participant", "erase", PHONE, "--by", counselor.email, "--yes"])
    assert result.exit_code == 0, result.output
    assert f"{len(about_pat)} counselor texts" in result.output
    after = _counselor_texts(db)
    # The rows stay (kind, status, time), their text about her goes; Robin's alerts are untouched.
    assert [(table, kind, status) for table, kind, _, status in after] == [
        (table, kind, status) for table, kind, _, status in before]
    assert not [t for t in after if "Pat" in t[2] or "0101" in t[2]]
    assert [t for t in after if "Robin (***0102)" in t[2]] == [t for t in before if "Robin (***0102)" in t[2]] != []
    with db.session() as s:
        assert PHONE not in set(s.scalars(select(CrisisEvent.phone)))  # the event from before she enrolled too


def test_retention_blanks_old_alerts_to_counselors_too(
    app: Any, sms: SmsPoster, participant: Any, db: Any, clock: Any,
) -> None:
    sms(CRISIS_TEXT, from_=PHONE)
    sent_at = clock.now
    assert any("Pat" in body for _, _, body, _ in _counselor_texts(db))
    clock.advance(days=181)
    tick(app)
    with db.session() as s:
        old = [o.body for o in s.scalars(select(Outbox).where(Outbox.participant_id.is_(None),
                                                               Outbox.created_at <= sent_at))]
        old += [m.body for m in s.scalars(select(Message).where(Message.phone == COUNSELOR_PHONE,
                                                                 Message.created_at <= sent_at))]
    assert old and set(old) == {""}


def test_retention_deletes_spooled_texts_that_could_not_be_replayed_once_they_are_old(
    app: Any, clock: Any,
) -> None:
    spool = app.extensions["spool"]

    def given_up(sid: str, days_ago: int) -> None:
        entry = InboundEntry(sid=sid, phone=PHONE, body="i cant do this anymore", replies=[],
                             received_at=clock.now.isoformat())
        spool.retry_later(spool.put_inbound(entry), replace(entry, tries=MAX_TRIES - 1))  # moved to failed/
        moment = (clock.now - timedelta(days=days_ago)).timestamp()
        for path in (spool.root / "failed").glob(f"inbound-{sid}-*.json"):
            os.utime(path, (moment, moment))

    given_up("SMold", 181)
    given_up("SMrecent", 179)
    tick(app)
    assert [p.name.split("-")[1] for p in (spool.root / "failed").glob("*.json")] == ["SMrecent"]


def test_erase_needs_a_known_counselor(runner: Any, participant: Any) -> None:
    result = runner.invoke(args=["participant", "erase", PHONE, "--by", "nobody@x.example", "--yes"])
    assert result.exit_code != 0 and "no counselor" in result.output


def test_counselor_create_asks_for_the_password_twice_hidden(runner: Any, db: Any) -> None:
    result = runner.invoke(args=["counselor", "create", "a@clinic.example", "--name", "A", "--phone", "2025550122"],
                           input="a long password\na long password\n")
    assert result.exit_code == 0, result.output
    assert "a long password" not in result.output  # hidden
    mismatch = runner.invoke(args=["counselor", "create", "b@clinic.example", "--name", "B", "--phone",
                                   "2025550123"], input="one password\nanother one\none pass\n")
    assert mismatch.exit_code != 0
    from_env = runner.invoke(args=["counselor", "create", "c@clinic.example", "--name", "C", "--phone", "2025550124"],
                             env={"COUNSELOR_PASSWORD": "from the environment"})
    assert from_env.exit_code == 0, from_env.output
    with db.session() as s:
        assert s.scalars(select(Counselor.email).order_by(Counselor.email)).all() == [
            "a@clinic.example", "c@clinic.example"]


# --- no data in logs ----------------------------------------------------------------------------------


def test_a_database_error_during_a_crisis_text_logs_neither_number_nor_text(
    app: Any, sms: SmsPoster, participant: Any, db: Any, fake_twilio: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = "i have the pills in my hand and i am taking them all tonight"
    with db.engine.begin() as conn:  # the statement that stores the text fails, values and all
        conn.execute(text("ALTER TABLE messages RENAME TO messages_moved"))
    try:
        result = sms.post(sms.form(body, PHONE))
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE messages_moved RENAME TO messages"))
    assert result.status == 200 and any("988" in r for r in result.replies)
    assert any(r.levelno >= logging.ERROR for r in caplog.records)
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "") + str(record.exc_info[1] if record.exc_info else "")
        assert PHONE not in line and PHONE[2:] not in line and "pills" not in line, line
    tick(app)  # and once it works again, the counselor hears about it
    assert any("URGENT" in b for b in fake_twilio.bodies_to("+12025550100"))


# --- crisis lines for the texter's country -------------------------------------------------------------


def test_a_uk_number_gets_uk_crisis_lines_under_the_default_country(
    sms: SmsPoster, enroll_participant: Any,
) -> None:
    enroll_participant(UK_PHONE)
    replies = sms("i want to kill myself tonight", from_=UK_PHONE)
    assert any("116 123" in r for r in replies) and not any("988" in r for r in replies), replies
    unknown = sms("i want to kill myself tonight", from_="+447911123457")
    assert any("116 123" in r for r in unknown)


def test_a_number_from_a_country_without_a_file_gets_the_clinics_default(sms: SmsPoster, counselor: Any) -> None:
    replies = sms("i want to kill myself tonight", from_="+33612345678")  # France: no file here
    assert any("988" in r for r in replies)


def test_an_unknown_crisis_country_fails_start_up(app_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="CRISIS_COUNTRY='UK'.*GB"):
        create_app({**app_config, "CRISIS_COUNTRY": "UK"})


def _flask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": str(Path.home())}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_the_cli_says_what_is_wrong_in_one_message_not_a_traceback(tmp_path: Path) -> None:
    done = _flask("skills", "check", env={"CRISIS_COUNTRY": "UK", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert done.returncode != 0
    assert "CRISIS_COUNTRY='UK'" in done.stderr and "Traceback" not in done.stderr


# --- production refuses to run unsafe -------------------------------------------------------------------


def test_production_lists_every_missing_item_at_once(tmp_path: Path) -> None:
    done = _flask("skills", "check", env={"BOT_ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert done.returncode != 0 and "Traceback" not in done.stderr
    for item in ("DATABASE_URL", "SECRET_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL",
                 "TWILIO_FROM_NUMBER", "signed off"):
        assert item in done.stderr, item


def _production(app_config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**app_config, "BOT_ENV": "production", "PUBLIC_BASE_URL": "https://bot.clinic.example",
            "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test", **extra}


@pytest.fixture
def verified_library(tmp_path: Path) -> Path:
    """A copy of the library whose crisis lines a person has (for this test) verified."""
    import shutil

    import yaml

    copy = tmp_path / "library"
    shutil.copytree(ROOT / "skills_library", copy)
    for path in (copy / "crisis").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["last_verified"], data["verified_by"] = date(2026, 11, 1), "Test Verifier"
        data["owner"] = "Test clinic"
        for resource in data["resources"]:
            resource.pop("notes", None)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return copy


def test_production_refuses_crisis_lines_nobody_verified(app_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="crisis lines nobody has verified: AU, CA, GB, IE, US, XX"):
        create_app(_production(app_config, ALLOW_UNREVIEWED_CONTENT=True))


def test_production_refuses_content_nobody_signed_off_unless_allowed(
    app_config: dict[str, Any], verified_library: Path,
) -> None:
    config = _production(app_config, SKILLS_LIBRARY=str(verified_library))
    with pytest.raises(ConfigError, match="not signed off") as refused:
        create_app(config)
    assert "DATABASE_URL" not in str(refused.value) and "verified" not in str(refused.value)
    app = create_app({**config, "ALLOW_UNREVIEWED_CONTENT": True, "SIMULATOR_ENABLED": True})
    try:
        assert app.test_client().get("/simulator").status_code == 404  # never in production
        result = app.test_cli_runner().invoke(args=["seed-demo"])
        assert result.exit_code != 0 and "production" in result.output
    finally:
        app.extensions["db"].dispose()


def test_production_refuses_sqlite(app_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app(_production(app_config, ALLOW_UNREVIEWED_CONTENT=True, DATABASE_URL="sqlite:///x.db"))


def test_skills_check_says_how_many_skills_are_signed_off(runner: Any) -> None:
    result = runner.invoke(args=["skills", "check"])
    assert result.exit_code == 0, result.output
    assert "signed off by a clinician" in result.output


def test_clock_based_retention_window_is_exact(app: Any, sms: SmsPoster, participant: Any, db: Any,
                                               clock: Any) -> None:
    sms("feeling anxious", from_=PHONE)
    clock.advance(days=180, seconds=-1)  # one second inside the retention window
    tick(app)
    with db.session() as s:
        assert s.scalar(select(Message.body).where(Message.direction == "in")) == "feeling anxious"
