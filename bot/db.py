"""Database engine and sessions (SQLAlchemy 2).

SQLite is the embedded default and PostgreSQL the production database. On SQLite every
transaction starts with BEGIN IMMEDIATE so that two texts from one person cannot interleave
read-modify-write cycles (SQLite has no row locks); a busy timeout turns a briefly locked
database into a short wait instead of an error. On PostgreSQL the participant row is locked
with SELECT ... FOR UPDATE and outbox rows are claimed with SKIP LOCKED.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str, **options: Any) -> Engine:
    """An engine configured for this app's concurrency rules on SQLite or PostgreSQL."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **options)
        _configure_sqlite(engine)
        return engine
    options.setdefault("pool_pre_ping", True)
    return create_engine(url, **options)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module so BEGIN IMMEDIATE is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class _WriterLock:
    """Serialises SQLite write transactions across threads and processes with flock.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so two gunicorn workers waiting
    on each other spend most of their time asleep. A blocking flock wakes the next writer the
    moment the previous one commits. Each thread opens its own descriptor (flock locks belong to
    the open file description, so threads sharing one would not exclude each other).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        fd = getattr(self._local, "fd", None)
        if fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._local.fd = fd
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            fcntl.flock(fd, fcntl.LOCK_EX)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            if self._local.depth == 0:
                fcntl.flock(fd, fcntl.LOCK_UN)


class Database:
    """The engine and a session factory; lives on the Flask app as extensions["db"]."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **options)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self._writer_lock = _WriterLock(database + ".lock") if database and database != ":memory:" else None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        if self._writer_lock is None:
            with self.sessions() as session, session.begin():
                yield session
            return
        with self.sessions() as session, self._writer_lock.held(), session.begin():
            yield session

    def run(self, work: Callable[[Session], T], *, attempts: int = 4) -> T:
        """Run `work` in one transaction, retrying when the database is briefly locked.

        Only operational errors that mean "try again" (locked, busy, serialization, deadlock)
        are retried; the whole transaction is replayed, so `work` must not have side effects
        outside the session.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.session() as session:
                    return work(session)
            except OperationalError as exc:
                if attempt == attempts or not _is_transient(exc):
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def _is_transient(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(word in text for word in ("locked", "busy", "deadlock", "could not serialize"))
