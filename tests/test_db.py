"""bot.db: the plain-record data access on the hot path, and retries of a briefly locked database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot.conversation import PARTICIPANTS


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
