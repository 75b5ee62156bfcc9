"""When recurring work last ran: the scheduler's tick writes a heartbeat, health checks read it.

A dead scheduler stops nudges and crisis re-alerts without any error a web process could see;
the heartbeat row makes its silence visible (`GET /healthz`, `GET /metrics`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .db import Database
from .models import Heartbeat

TICK = "tick"


@dataclass(frozen=True)
class Beat:
    name: str
    beat_at: datetime
    duration_seconds: float
    host: str | None

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.beat_at).total_seconds())


def record(db: Database, now: datetime, duration_seconds: float, *, name: str = TICK) -> None:
    """Upsert the heartbeat `name` as of `now` (one row per name, whatever the number of processes)."""
    values = {"name": name, "beat_at": now, "duration_seconds": float(duration_seconds),
              "host": socket.gethostname()[:120]}
    table_insert = pg_insert if db.is_postgres else sqlite_insert
    stmt = table_insert(Heartbeat).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"beat_at": stmt.excluded.beat_at, "duration_seconds": stmt.excluded.duration_seconds,
              "host": stmt.excluded.host},
    )
    db.run(lambda session: session.execute(stmt))


def last(db: Database, *, name: str = TICK) -> Beat | None:
    """The latest heartbeat `name`, or None when it never beat. Raises if the database is down."""
    with db.engine.connect() as connection:
        row = connection.execute(
            select(Heartbeat.name, Heartbeat.beat_at, Heartbeat.duration_seconds, Heartbeat.host)
            .where(Heartbeat.name == name)
        ).first()
    return None if row is None else Beat(row.name, row.beat_at, row.duration_seconds, row.host)
