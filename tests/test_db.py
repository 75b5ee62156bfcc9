"""bot.db: the plain-record data access on the hot path, retries of a briefly locked database, and
the timeouts that keep a hung database from holding a webhook past Twilio's 15 seconds."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError

import bot.db
from bot.app import create_app
from bot.conversation import PARTICIPANTS
from bot.db import RETRY_ATTEMPTS, SQLITE_BUSY_TIMEOUT_MS, make_engine, worst_write_seconds
from bot.models import Message
from bot.scheduler import tick
from tests.conftest import SmsPoster, new_sid

PHONE = "+12025550101"


def captured_sql(db: Any) -> list[str]:
    statements: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    return statements


def test_save_writes_only_changed_columns_and_nothing_when_unchanged(db: Any, participant: Any) -> None:
    statements = captured_sql(db)

    def work(session: Any) -> None:
        connection = session.connection()
        record = PARTICIPANTS.load(connection, participant.phone)
        assert record is not None and record.status == "active"
        statements.clear()
        PARTICIPANTS.save(connection, record)
        assert statements == []
        record.conv_state = "menu"
        record.conv_data = {"categories": ["breathing"]}
        PARTICIPANTS.save(connection, record)
        updates = [s for s in statements if s.startswith("UPDATE")]
        assert len(updates) == 1
        assert "conv_state" in updates[0] and "conv_data" in updates[0] and "status" not in updates[0]

    db.run(work)
    with db.session() as session:
        reloaded = PARTICIPANTS.load(session.connection(), participant.phone)
    assert reloaded.conv_state == "menu" and reloaded.conv_data == {"categories": ["breathing"]}


def test_in_place_change_of_a_json_value_is_still_saved(db: Any, participant: Any) -> None:
    def work(session: Any) -> None:
        record = PARTICIPANTS.load(session.connection(), participant.phone)
        record.flags.append("pregnancy")
        PARTICIPANTS.save(session.connection(), record)

    db.run(work)
    with db.session() as session:
        assert PARTICIPANTS.load(session.connection(), participant.phone).flags == ["pregnancy"]


def test_a_briefly_locked_database_is_retried(db: Any) -> None:
    calls = []

    def work(session: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return "done"

    assert db.run(work) == "done" and len(calls) == 3


def test_other_database_errors_are_not_retried(db: Any) -> None:
    calls = []

    def work(session: Any) -> None:
        calls.append(1)
        raise OperationalError("SELECT", {}, Exception("no such table: nope"))

    with pytest.raises(OperationalError):
        db.run(work)
    assert len(calls) == 1


# --- timeouts: a hung database fails a webhook into the outage path, well inside Twilio's 15 s ----------


def test_a_locked_sqlite_database_fails_a_text_into_the_outage_path_after_a_bounded_wait(
    app: Any, db: Any, sms: SmsPoster, participant: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if db.is_postgres:
        pytest.skip("SQLite's busy timeout")
    with db.engine.connect() as connection:
        busy_ms = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert busy_ms == SQLITE_BUSY_TIMEOUT_MS
    # Every attempt waits out the busy timeout: all of them, with the backoffs, well inside 15 s.
    assert worst_write_seconds(busy_ms) <= 10
    # The same path with a shorter wait, so this test takes a second rather than nine.
    monkeypatch.setattr(bot.db, "SQLITE_BUSY_TIMEOUT_MS", 100)
    db.engine.dispose()
    statements = captured_sql(db)
    holder = sqlite3.connect(db.engine.url.database, isolation_level=None)  # another program's write lock
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = sms.post(sms.form("feeling kind of anxious about tomorrow", PHONE))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.status == 200 and len(result.replies) == 1 and "text again" in result.replies[0].lower()
    assert statements.count("BEGIN IMMEDIATE") == RETRY_ATTEMPTS  # then it stopped waiting
    assert [entry.body for _, entry in app.extensions["spool"].inbound()] == ["feeling kind of anxious about tomorrow"]


def _setting(engine: Any, name: str) -> str:
    with engine.connect() as connection:
        return str(connection.exec_driver_sql(f"SHOW {name}").scalar())


def test_postgres_connections_carry_the_web_timeouts_the_scheduler_its_own_and_migrations_none(
    app: Any, db: Any, runner: Any,
) -> None:
    if not db.is_postgres:
        pytest.skip("PostgreSQL's connect and statement timeouts: set TEST_DATABASE_URL")
    assert _setting(db.engine, "statement_timeout") == "5s"
    with db.engine.connect() as connection:
        parameters = connection.connection.dbapi_connection.info.get_parameters()
    assert parameters["connect_timeout"] == "5"
    result = runner.invoke(args=["nudges", "tick"])  # the scheduler's own command
    assert result.exit_code == 0, result.output
    assert _setting(app.extensions["db"].engine, "statement_timeout") == "1min"
    migrations = make_engine(db.url)  # what `flask init-db` migrates with
    try:
        assert _setting(migrations, "statement_timeout") == "0"
    finally:
        migrations.dispose()


def test_a_statement_stuck_behind_a_lock_fails_a_text_into_the_outage_path_on_postgres(
    app_config: dict[str, Any], db: Any, participant: Any, clock: Any,
) -> None:
    if not db.is_postgres:
        pytest.skip("PostgreSQL's statement timeout: set TEST_DATABASE_URL")
    short = create_app({**app_config, "DATABASE_STATEMENT_TIMEOUT_MS": 300})  # 5 s by default
    short.extensions["clock"] = clock
    sid = new_sid()
    try:
        with db.engine.connect() as holder:  # a hung transaction holds the texter's row
            holder.execute(text("SELECT id FROM participants WHERE phone = :phone FOR UPDATE"), {"phone": PHONE})
            result = SmsPoster(short.test_client()).post(SmsPoster(None).form("hello there", PHONE, sid=sid))
            holder.rollback()
        assert result.status == 200 and "text again" in result.replies[0].lower()
        tick(short)  # the row is free again: the text kept on disk is recorded
        with db.session() as session:
            assert session.scalar(select(Message.body).where(Message.twilio_sid == sid)) == "hello there"
    finally:
        short.extensions["db"].dispose()
