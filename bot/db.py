"""Database engine and sessions (SQLAlchemy 2).

SQLite is the embedded default and PostgreSQL the production database. On SQLite every
transaction starts with BEGIN IMMEDIATE so that two texts from one person cannot interleave
read-modify-write cycles (SQLite has no row locks); a busy timeout turns a briefly locked
database into a short wait instead of an error. On PostgreSQL the participant row is locked
with SELECT ... FOR UPDATE and outbox rows are claimed with SKIP LOCKED.

`Records` reads and writes plain row objects with prebuilt Core statements, for the paths every
inbound text takes (the ORM's per-object machinery costs more there than the SQL does).

Timeouts: Twilio gives up on a webhook that has not answered within 15 seconds (error 11200,
https://www.twilio.com/docs/api/errors/11200), and then nobody gets the crisis lines. So a hung
database must fail a webhook's write well before that, into the outage path (answered, spooled):

- SQLite: a write waits at most SQLITE_BUSY_TIMEOUT_MS for a lock, and `Database.run` tries
  RETRY_ATTEMPTS times with backoffs between them: 4 x 2 s + 0.1 + 0.2 + 0.4 s = 8.7 s at worst
  (`worst_write_seconds`).
- PostgreSQL: connecting gives up after PG_CONNECT_TIMEOUT_SECONDS (libpq's `connect_timeout`,
  unless the URL sets its own), and a statement is cancelled after the engine's statement timeout
  (`statement_timeout`, sent as a startup option). A cancelled statement is not retried; only
  lock conflicts are, and PostgreSQL reports those at once (serialization) or after
  `deadlock_timeout` (1 s by default). The web process uses DATABASE_STATEMENT_TIMEOUT_MS (5 s);
  the scheduler, whose bulk statements are longer, SCHEDULER_STATEMENT_TIMEOUT_MS (bot/scheduler.py);
  migrations none.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 2_000
PG_CONNECT_TIMEOUT_SECONDS = 5
RETRY_ATTEMPTS = 4
RETRY_BACKOFF_SECONDS = 0.05  # doubled per attempt: waits of 0.1, 0.2 and 0.4 s between four attempts


def worst_write_seconds(busy_timeout_ms: int | None = None, attempts: int = RETRY_ATTEMPTS) -> float:
    """The longest `Database.run` waits on a locked SQLite database before it raises: every
    attempt waits out the busy timeout, with the backoffs between attempts."""
    busy = (SQLITE_BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms) / 1000
    return attempts * busy + sum(_backoff(attempt) for attempt in range(1, attempts))


def _backoff(attempt: int) -> float:
    return RETRY_BACKOFF_SECONDS * 2.0**attempt


def make_engine(url: str, *, statement_timeout_ms: int | None = None, **options: Any) -> Engine:
    """An engine configured for this app's concurrency rules on SQLite or PostgreSQL.

    `hide_parameters`: a database error's text never carries the statement's values (phone
    numbers, message text), so logging the error cannot leak them. On PostgreSQL, connections
    give up after PG_CONNECT_TIMEOUT_SECONDS and, when `statement_timeout_ms` is given (0 or None:
    none), cancel any statement that runs longer (see the module's docstring).
    """
    options.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **options)
        _configure_sqlite(engine)
        return engine
    options.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **options)
    _configure_postgres(engine, statement_timeout_ms)
    return engine


def _configure_postgres(engine: Engine, statement_timeout_ms: int | None) -> None:
    @event.listens_for(engine, "do_connect")
    def _on_connect(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        # libpq keywords (https://www.postgresql.org/docs/current/libpq-connect.html): a URL's
        # own connect_timeout wins; the statement timeout goes in as a startup option, so it
        # costs no round trip and holds from the connection's first statement.
        params.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_SECONDS)
        if statement_timeout_ms:
            option = f"-c statement_timeout={int(statement_timeout_ms)}"
            params["options"] = f"{params.get('options') or ''} {option}".strip()


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

    def __init__(self, url: str, *, statement_timeout_ms: int | None = None, **options: Any) -> None:
        self.url = url
        self.statement_timeout_ms = statement_timeout_ms or 0
        self._options = options
        self.engine = make_engine(url, statement_timeout_ms=statement_timeout_ms, **options)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self._writer_lock = _WriterLock(database + ".lock") if database and database != ":memory:" else None

    def use_statement_timeout(self, statement_timeout_ms: int | None) -> None:
        """From now on, cancel PostgreSQL statements after `statement_timeout_ms` (0 or None: never).

        For a process that is about to run other work than the web's (the scheduler): call it
        before that work starts. The engine is replaced (pooled connections carry the old value
        as a startup option); SQLite has no statement timeout and keeps its engine.
        """
        if self.engine.dialect.name != "postgresql" or (statement_timeout_ms or 0) == self.statement_timeout_ms:
            return
        previous = self.engine
        self.engine = make_engine(self.url, statement_timeout_ms=statement_timeout_ms, **self._options)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.statement_timeout_ms = statement_timeout_ms or 0
        previous.dispose()

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

    def run(self, work: Callable[[Session], T], *, attempts: int = RETRY_ATTEMPTS) -> T:
        """Run `work` in one transaction, retrying when the database is briefly locked.

        Only operational errors that mean "try again" (locked, busy, serialization, deadlock)
        are retried; the whole transaction is replayed, so `work` must not have side effects
        outside the session.
        """

        def once() -> T:
            with self.session() as session:
                return work(session)

        return retrying(once, attempts=attempts)

    def dispose(self) -> None:
        self.engine.dispose()


def retrying(attempt_once: Callable[[], T], *, attempts: int = RETRY_ATTEMPTS) -> T:
    """Call `attempt_once` until it succeeds, again after a short backoff (0.1, 0.2, 0.4 s) when
    the database was briefly locked or busy; any other error, or the last attempt's, is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return attempt_once()
        except OperationalError as exc:
            if attempt == attempts or not _is_transient(exc):
                raise
            time.sleep(_backoff(attempt))
    raise AssertionError("unreachable")


def _is_transient(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(word in text for word in ("locked", "busy", "deadlock", "could not serialize"))


# --- plain records for hot paths ------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Record:
    """Some of a row's columns (its integer key `id` among them) as plain attributes, with the
    values they had when loaded.

    Cheaper than ORM objects where every text passes: no identity map, no attribute
    instrumentation, no unit-of-work flush. `Records.save` writes only the columns that changed.
    Replace JSON values instead of changing them in place (the loaded ones are copies, so an
    in-place change is still found, but only at the top level).
    """

    id: int
    loaded: dict[str, Any] = field(default_factory=dict, repr=False, kw_only=True)

    def changes(self) -> dict[str, Any]:
        """Column values that differ from those loaded."""
        return {name: getattr(self, name) for name, value in self.loaded.items() if getattr(self, name) != value}

    def remember(self, values: dict[str, Any]) -> None:
        self.loaded.update((name, _copy(value)) for name, value in values.items())


R = TypeVar("R", bound=Record)


class Records(Generic[R]):
    """Load, create and save records of one type from one table.

    Statements are built once; executing a statement's cached compiled form is much cheaper than
    building it. They run on the connection given, in its transaction (`Session.connection()`:
    fetch it once, as asking a session for its connection costs about as much as a statement).
    """

    def __init__(self, record_type: type[R], table: Table, *, by: str = "id") -> None:
        self.record_type = record_type
        self.columns = tuple(f.name for f in fields(record_type) if f.name != "loaded")
        self._select = select(*(table.c[name] for name in self.columns)).where(table.c[by] == bindparam("key_"))
        self._select_locked = self._select.with_for_update()
        self._insert = insert(table).returning(table.c.id)
        # The SET clause comes from the parameter names given (compiled once per set of columns).
        self._update = update(table).where(table.c.id == bindparam("id_"))

    def load(self, connection: Connection, key: Any, *, for_update: bool = False) -> R | None:
        """The row whose key column equals `key`, locked (FOR UPDATE) when asked; None if absent."""
        stmt = self._select_locked if for_update else self._select
        row = connection.execute(stmt, {"key_": key}).first()
        if row is None:
            return None
        record = self.record_type(**row._asdict())
        record.remember(row._asdict())
        return record

    def create(self, connection: Connection, **values: Any) -> R:
        """Insert a row with `values` (every record column but id among them) and return its record."""
        new_id = connection.execute(self._insert, values).scalar_one()
        own = {name: values[name] for name in self.columns if name != "id"}
        record = self.record_type(id=new_id, **own)
        record.remember({"id": new_id, **own})
        return record

    def save(self, connection: Connection, record: R) -> None:
        """Write the record's changed columns in one UPDATE (no statement when nothing changed)."""
        changes = record.changes()
        if changes:
            connection.execute(self._update, {"id_": record.id, **changes})
            record.remember(changes)


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, dict | list) else value


def rowcount(result: object) -> int:
    """The rows an UPDATE or DELETE run by `Session.execute` matched (0 if the driver cannot tell).

    `Session.execute` is typed as returning a `Result`; for these statements it returns the
    `CursorResult` that carries the count.
    """
    return (result.rowcount or 0) if isinstance(result, CursorResult) else 0
