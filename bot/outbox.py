"""The outbox: one delivery path for everything that is not the TwiML reply.

Rows are written in the same transaction as the change that caused them (an enrollment, a
crisis, a nudge) and delivered after commit, by `deliver`:

- Claims: due rows are leased to one delivery run (`lease_owner`, `lease_until`) in a short
  transaction; on PostgreSQL with SELECT ... FOR UPDATE SKIP LOCKED, so runs in several processes
  never claim the same row. A run killed mid-way loses nothing: its leases expire (LEASE) and the
  next run claims the rows again.
- Sending: a small pool of threads sends concurrently (Twilio answers in ~100-300 ms; one thread
  would cap throughput at a few messages a second) while one shared limiter keeps the whole run
  within `rate` messages per second. A thread never starts a send once its claim is older than
  LEASE_SAFE, so a send cannot outlive its lease.
- Recording: each thread records its outcome in its own transaction right after the provider
  answers. The only possible double is a message the provider accepted in the instant before the
  process died, before the record committed: at most one message per sending thread.
- Errors: 5xx, 429 and timeouts retry after 5, 10 and 15 minutes, then fail and the counselor
  is told; 21610 marks the participant opted out (no retry, pending texts cancelled); 21211 and
  21614 mark the number invalid, cancel pending texts and tell the counselor.
- Nudges are re-checked when claimed: one whose participant is no longer eligible (opted out,
  paused, in crisis, invalid number) is cancelled; one outside the participant's allowed window
  waits, and is cancelled once it is more than the late window old.

`realert_crises` enqueues the repeat alerts for unacknowledged crisis events.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from . import crises, metrics
from .db import Database, retrying, rowcount
from .models import (
    ACTIVE,
    CANCELLED,
    FAILED,
    OPTED_OUT,
    PENDING,
    SENT,
    AuditLog,
    Counselor,
    CrisisEvent,
    Message,
    Outbox,
    Participant,
    outbox_values,
)
from .nudges import NOTICE_KIND, NUDGE_KIND, in_window, parse_hhmm, participant_label, zone_for
from .sms import UNSUBSCRIBED, SendResult, SmsSender, mask_phone
from .spool import SentEntry, Spool

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
# A claimed row is not sent once its claim is this old: the send must end before the lease does.
LEASE_SAFE = timedelta(seconds=80)
RETRY_DELAYS = (timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=15))
# A nudge claimed outside the participant's allowed window is looked at again this much later.
WINDOW_RECHECK = timedelta(minutes=5)
REALERT_KIND = "crisis_realert"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def enqueue(session: Session, **fields: Any) -> Outbox:
    """Add a message to the outbox in the caller's transaction (fields as for `row_values`)."""
    row = Outbox(**outbox_values(**fields))
    session.add(row)
    session.flush()
    return row


def enqueue_once(session: Session, *, dedupe_key: str, **fields: Any) -> int | None:
    """Add a message unless one with `dedupe_key` exists; returns the new row's id or None."""
    dialect = session.get_bind().dialect.name
    table_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        table_insert(Outbox)
        .values(**outbox_values(dedupe_key=dedupe_key, **fields))
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Outbox.id)
    )
    return session.scalar(stmt)


def cancel_pending_for(session: Session, participant_id: int, *, kinds: Iterable[str] | None = None) -> int:
    """Cancel undelivered messages to a participant (after an opt-out). Returns how many."""
    stmt = (
        update(Outbox).where(Outbox.participant_id == participant_id, Outbox.status == PENDING).values(status=CANCELLED)
    )
    if kinds is not None:
        stmt = stmt.where(Outbox.kind.in_(list(kinds)))
    return rowcount(session.execute(stmt))


# --------------------------------------------------------------------------------------------
# Rate limiting


class RateLimiter:
    """Spaces calls to `acquire` at least 1/rate seconds apart, across threads.

    Each caller reserves the next free slot under a lock and sleeps outside it, so threads keep
    their order and the long-run rate never exceeds `rate`. A rate of None or <= 0 means no limit.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._monotonic = monotonic
        self._sleep = sleep
        self._next = monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this caller's slot; returns how long it waited (seconds)."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return delay


# --------------------------------------------------------------------------------------------
# Claims


@dataclass(frozen=True)
class Claimed:
    """A leased outbox row, with what is needed to send and record it without reading it again."""

    id: int
    to_phone: str
    body: str
    kind: str
    participant_id: int | None
    attempts: int


def _nudge_verdict(row: Any, now: datetime, late_window: timedelta) -> str:
    """ "send", "wait" or "cancel" for a program text (HELD_KINDS) joined with its participant."""
    paused = (row.paused_until is None and row.nudges_paused) or (
        row.paused_until is not None and row.paused_until > now
    )
    if row.status != ACTIVE or row.crisis_hold or row.invalid_number or paused:
        return "cancel"
    try:
        local = now.astimezone(zone_for(row.timezone)).time()
        allowed = in_window(local, parse_hhmm(row.quiet_start), parse_hhmm(row.quiet_end))
    except (ValueError, KeyError):
        return "cancel"
    if allowed:
        return "send"
    return "cancel" if now - row.created_at > late_window else "wait"


def claim(
    db: Database,
    now: datetime,
    owner: str,
    *,
    limit: int = 100,
    ids: Sequence[int] | None = None,
    late_window: timedelta = timedelta(minutes=120),
    skip: frozenset[int] = frozenset(),
) -> list[Claimed]:
    """Lease up to `limit` due rows (or only `ids`) to `owner`; SKIP LOCKED on PostgreSQL.

    Nudges that may no longer go out are cancelled or postponed here instead of being returned.
    Rows in `skip` (sent, but not yet recorded: see bot/spool.py) are never claimed.
    """

    def work(session: Session) -> list[Claimed]:
        stmt = (
            select(
                Outbox.id,
                Outbox.to_phone,
                Outbox.body,
                Outbox.kind,
                Outbox.participant_id,
                Outbox.attempts,
                Outbox.created_at,
                Participant.status,
                Participant.crisis_hold,
                Participant.invalid_number,
                Participant.nudges_paused,
                Participant.paused_until,
                Participant.timezone,
                Participant.quiet_start,
                Participant.quiet_end,
            )
            .outerjoin(Participant, Participant.id == Outbox.participant_id)
            .where(Outbox.status == PENDING, Outbox.next_attempt_at <= now)
            .where(or_(Outbox.lease_until.is_(None), Outbox.lease_until < now))
            # No tie-break on id: the (status, next_attempt_at) index yields rows in this order,
            # so a claim reads `limit` rows instead of sorting the whole backlog.
            .order_by(Outbox.next_attempt_at)
            .limit(limit)
        )
        if ids is not None:
            stmt = stmt.where(Outbox.id.in_(list(ids)))
        if skip:
            stmt = stmt.where(Outbox.id.not_in(sorted(skip)))
        if db.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True, of=Outbox)
        claimed: list[Claimed] = []
        cancel: list[int] = []
        postpone: list[int] = []
        for row in session.execute(stmt):
            verdict = _nudge_verdict(row, now, late_window) if row.kind in HELD_KINDS else "send"
            if verdict == "cancel":
                cancel.append(row.id)
            elif verdict == "wait":
                postpone.append(row.id)
            else:
                claimed.append(Claimed(row.id, row.to_phone, row.body, row.kind, row.participant_id, row.attempts))
        if claimed:
            session.execute(
                update(Outbox)
                .where(Outbox.id.in_([c.id for c in claimed]))
                .values(lease_until=now + LEASE, lease_owner=owner)
            )
        if cancel:
            session.execute(
                update(Outbox).where(Outbox.id.in_(cancel)).values(status=CANCELLED, error_code="ineligible")
            )
        if postpone:
            session.execute(update(Outbox).where(Outbox.id.in_(postpone)).values(next_attempt_at=now + WINDOW_RECHECK))
        return claimed

    return db.run(work)


# --------------------------------------------------------------------------------------------
# Just before sending


# Program texts (practice nudges and diary cards, group reminders, group broadcasts) wait while a
# participant is held after a crisis, paused or no longer active; replies, alerts and crisis
# texts never do.
HELD_KINDS = frozenset({NUDGE_KIND, "cohort_reminder", "cohort_broadcast"})

_SENDABLE = (
    select(Outbox.status, Outbox.lease_owner, Participant.status.label("participant_status"),
           Participant.invalid_number, Participant.crisis_hold, Participant.nudges_paused,
           Participant.paused_until)
    .outerjoin(Participant, Participant.id == Outbox.participant_id)
    .where(Outbox.id == bindparam("row_id"))
)


def still_sendable(db: Database, row: Claimed, owner: str, now: datetime | None = None) -> bool:
    """Re-check a claimed row right before its send: still pending, still ours, and its
    participant has not opted out since the claim (or, for a program text, been held or paused).

    The claim may be most of a minute old when a send starts; a STOP that arrived meanwhile
    cancelled the row, and nothing may go out after it.
    """
    with db.engine.connect() as connection:
        current = connection.execute(_SENDABLE, {"row_id": row.id}).first()
    if current is None or current.status != PENDING or current.lease_owner != owner:
        return False
    if current.participant_status == OPTED_OUT or current.invalid_number:
        return False
    if row.kind not in HELD_KINDS:
        return True
    # As for planning: a `paused_until` in the past has ended the pause.
    paused = (current.paused_until is None and current.nudges_paused) or (
        current.paused_until is not None and now is not None and current.paused_until > now)
    return not (current.crisis_hold or current.participant_status != ACTIVE or paused)


# --------------------------------------------------------------------------------------------
# Recording outcomes


@dataclass(frozen=True)
class Notifier:
    """What counselor notices need: the library (message texts) and the program name."""

    library: Any
    program_name: str = "IOP Coping Skills"


def record(
    db: Database,
    row: Claimed | int,
    owner: str,
    result: SendResult,
    now: datetime,
    *,
    notifier: Notifier | None = None,
) -> str:
    """Store the outcome of one send; returns "sent", "retrying" or "failed"."""
    if not result.ok:
        metrics.count_delivery_failure(result)
    if result.ok and isinstance(row, Claimed):
        return _record_sent_fast(db, row, result, now)
    row_id = row.id if isinstance(row, Claimed) else row
    return db.run(lambda s: _record_other(s, row_id, owner, result, now, notifier))


_outbox = Outbox.__table__
# Built once: this runs once per message, and building statements costs more than running them.
_MARK_SENT = (
    update(_outbox)
    # Only a pending row becomes sent: one cancelled meanwhile (an opt-out) stays cancelled.
    .where(_outbox.c.id == bindparam("row_id"), _outbox.c.status == PENDING)
    .values(
        status=SENT,
        sent_at=bindparam("sent_at"),
        provider_sid=bindparam("sid"),
        attempts=_outbox.c.attempts + 1,
        lease_until=None,
        lease_owner=None,
        error_code=None,
    )
)
_ADD_MESSAGE = insert(Message.__table__)


def _record_sent(session: Any, row: Claimed, result: SendResult, now: datetime) -> str:
    session.execute(_MARK_SENT, {"row_id": row.id, "sent_at": now, "sid": result.sid})
    session.execute(
        _ADD_MESSAGE,
        {
            "participant_id": row.participant_id,
            "direction": "out",
            "phone": row.to_phone,
            "body": row.body,
            "kind": row.kind,
            "twilio_sid": result.sid,
            "status": result.status or "queued",
            "created_at": now,
        },
    )
    return "sent"


# PostgreSQL: both writes in one statement, run in autocommit: one round trip instead of four
# (BEGIN, UPDATE, INSERT, COMMIT), and still atomic. A data-modifying WITH runs whether or not the
# INSERT reads it: the message that left is recorded even if its row was cancelled meanwhile.
_PG_RECORD_SENT = text(
    "WITH done AS (UPDATE outbox SET status = 'sent', sent_at = CAST(:sent_at AS timestamptz), "
    "provider_sid = :sid, attempts = attempts + 1, lease_until = NULL, lease_owner = NULL, error_code = NULL "
    "WHERE id = :row_id AND status = 'pending' RETURNING id) "
    "INSERT INTO messages (participant_id, direction, phone, body, kind, twilio_sid, status, created_at) "
    "VALUES (CAST(:participant_id AS integer), 'out', :phone, :body, :kind, :sid, :status, "
    "CAST(:sent_at AS timestamptz))"
)


def _record_sent_fast(db: Database, row: Claimed, result: SendResult, now: datetime) -> str:
    """The hot path: no ORM session; retried like Database.run."""

    def once() -> str:
        if db.is_postgres:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(_PG_RECORD_SENT, {
                    "row_id": row.id, "sent_at": now, "sid": result.sid, "participant_id": row.participant_id,
                    "phone": row.to_phone, "body": row.body, "kind": row.kind, "status": result.status or "queued",
                })
            return "sent"
        with db.engine.begin() as conn:
            return _record_sent(conn, row, result, now)

    return retrying(once)


def keep_unrecorded(db: Database, spool: Spool | None, row: Claimed, result: SendResult, now: datetime) -> str:
    """A send the provider accepted could not be recorded: make sure it is never sent again.

    First the row alone is marked sent (the message log entry may be what failed, e.g. a
    duplicate provider id); if the database refuses even that, the send is written to the local
    spool, whose rows claims skip until `replay_unrecorded` records them.
    """
    log.exception("outbox %s was sent (%s) but recording it failed", row.id, (result.sid or "-")[-6:])
    try:
        db.run(lambda session: session.execute(_MARK_SENT, {"row_id": row.id, "sent_at": now, "sid": result.sid}))
        return "sent"
    except Exception:
        log.error("outbox %s: marking it sent failed too; keeping the send in the spool", row.id)
    if spool is None:
        log.error("outbox %s: no spool to keep the send in; it may go out again after its lease", row.id)
        return "sent"
    try:
        spool.put_sent(SentEntry(outbox_id=row.id, sid=result.sid, status=result.status, sent_at=now.isoformat()))
    except OSError:
        log.error("outbox %s: could not spool the send either; it may go out again after its lease", row.id)
    return "sent"


def replay_unrecorded(db: Database, spool: Spool) -> int:
    """Record the spooled sends (see `keep_unrecorded`); returns how many were recorded."""
    recorded = 0
    for path, entry in spool.sent():

        def full(session: Session, entry: SentEntry = entry) -> None:
            row = session.get(Outbox, entry.outbox_id)
            if row is None:
                return
            session.execute(_MARK_SENT, {"row_id": row.id, "sent_at": entry.sent, "sid": entry.sid})
            if entry.sid is None or session.scalar(select(Message.id).where(Message.twilio_sid == entry.sid)) is None:
                session.execute(_ADD_MESSAGE, {
                    "participant_id": row.participant_id, "direction": "out", "phone": row.to_phone, "body": row.body,
                    "kind": row.kind, "twilio_sid": entry.sid, "status": entry.status or "queued",
                    "created_at": entry.sent})

        def row_only(session: Session, entry: SentEntry = entry) -> None:
            session.execute(_MARK_SENT, {"row_id": entry.outbox_id, "sent_at": entry.sent, "sid": entry.sid})

        try:
            try:
                db.run(full)
            except IntegrityError:
                db.run(row_only)
        except OperationalError:
            break  # still down: try again later
        except Exception:
            log.exception("could not record spooled send of outbox %s", entry.outbox_id)
            spool.retry_later(path, entry)
            continue
        spool.done(path)
        recorded += 1
    return recorded


def _record_other(
    session: Session, row_id: int, owner: str, result: SendResult, now: datetime, notifier: Notifier | None
) -> str:
    row = session.get(Outbox, row_id)
    if row is None:
        return "failed"
    if result.ok:
        _record_sent(
            session, Claimed(row.id, row.to_phone, row.body, row.kind, row.participant_id, row.attempts), result, now
        )
        return "sent"
    if row.status != PENDING or (row.lease_owner is not None and row.lease_owner != owner):
        # Cancelled meanwhile, or our lease ran out and another run owns it: leave it to them.
        return "retrying" if row.status == PENDING else "failed"
    row.attempts += 1
    row.lease_until = None
    row.lease_owner = None
    row.error_code = str(result.error_code) if result.error_code is not None else (result.detail or "error")
    if result.retryable and row.attempts <= len(RETRY_DELAYS):
        row.next_attempt_at = now + RETRY_DELAYS[row.attempts - 1]
        return "retrying"
    row.status = FAILED
    _after_permanent_failure(session, row, result, now, notifier)
    return "failed"


def _after_permanent_failure(
    session: Session, row: Outbox, result: SendResult, now: datetime, notifier: Notifier | None
) -> None:
    log.warning("outbox %s to %s failed for good (code %s)", row.id, mask_phone(row.to_phone), row.error_code)
    participant = session.get(Participant, row.participant_id) if row.participant_id else None
    if participant is None:
        if row.kind.startswith("crisis"):
            log.error(
                "crisis alert %s could not reach %s: check the counselor's number", row.id, mask_phone(row.to_phone)
            )
        return
    if result.opted_out:
        carrier_opt_out(session, participant, now, notifier, f"optout:{participant.id}:{row.id}")
        return
    if result.invalid_number:
        first = not participant.invalid_number
        participant.invalid_number = True
        cancel_pending_for(session, participant.id)
        if first:
            _notify(
                session,
                notifier,
                participant,
                "counselor_invalid_number",
                f"invalid:{participant.id}:{row.id}",
                now,
                code=row.error_code,
            )
        return
    _notify(
        session,
        notifier,
        participant,
        "counselor_delivery_failed",
        f"failed:{row.id}",
        now,
        attempts=row.attempts,
        code=row.error_code or "-",
    )


def carrier_opt_out(
    session: Session, participant: Participant, now: datetime, notifier: Notifier | None, dedupe_key: str
) -> bool:
    """The carrier says the person opted out (error 21610, on a send or in a status callback):
    respect it everywhere, cancel what is pending and tell the counselor once. True if it changed."""
    if participant.status == OPTED_OUT:
        return False
    participant.status = OPTED_OUT
    participant.opted_out_at = now
    cancel_pending_for(session, participant.id)
    session.add(AuditLog(actor="carrier", action="opt_out", participant_id=participant.id,
                         detail={"reason": f"error {UNSUBSCRIBED}"}, created_at=now))
    _notify(session, notifier, participant, "counselor_optout_notice", dedupe_key, now)
    return True


def _notify(
    session: Session,
    notifier: Notifier | None,
    participant: Participant,
    key: str,
    dedupe_key: str,
    now: datetime,
    **values: Any,
) -> None:
    """Tell the participant's counselor (an outbox row), once per dedupe key."""
    counselor = session.get(Counselor, participant.counselor_id)
    if notifier is None or counselor is None:
        log.error("cannot tell a counselor about participant %s (%s): no notifier", participant.id, key)
        return
    body = notifier.library.message(
        key,
        program=notifier.program_name,
        participant=participant_label(notifier.library, participant.name),
        phone_tail=mask_phone(participant.phone),
        **values,
    )
    enqueue_once(
        session,
        to=counselor.phone,
        body=body,
        kind=NOTICE_KIND,
        now=now,
        dedupe_key=dedupe_key,
        counselor_id=counselor.id,
    )


# --------------------------------------------------------------------------------------------
# Delivery


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def add(self, outcome: str | None) -> None:
        if outcome in ("sent", "retrying", "failed"):
            setattr(self, outcome, getattr(self, outcome) + 1)


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    # Kept across runs so each thread keeps its Twilio client and its open HTTPS connections.
    key = (os.getpid(), threads)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="outbox")
            _pools[key] = pool
        return pool


def thread_count(rate: float | None, max_threads: int) -> int:
    """Threads enough to keep `rate` messages a second in flight at ~1 s per request, capped."""
    if not rate or rate <= 0:
        return max(1, max_threads)
    return max(1, min(max_threads, math.ceil(rate)))


def deliver(
    db: Database,
    sender: SmsSender,
    now: datetime,
    *,
    ids: Sequence[int] | None = None,
    limit: int | None = None,
    rate: float | None = None,
    threads: int = 1,
    budget_seconds: float | None = None,
    status_callback: str | None = None,
    notifier: Notifier | None = None,
    late_window: timedelta = timedelta(minutes=120),
    spool: Spool | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Claim due rows (or just `ids`), send each once, and record every outcome.

    At most `limit` rows (None: all that are due), at most `rate` sends a second, `threads`
    sends at a time; no new claims after `budget_seconds` (so a tick ends in time for the next).
    Times written to the database are `now` plus the time elapsed since the call began.
    """
    owner = worker_id()
    started = monotonic()
    limiter = RateLimiter(rate, monotonic=monotonic, sleep=sleep)
    report = DeliveryReport()

    def clock() -> datetime:
        # Whole seconds: a short run writes exactly `now` (replays and tests stay exact).
        return now + timedelta(seconds=int(monotonic() - started))

    def send_one(row: Claimed, claimed_at: float) -> str | None:
        if monotonic() - claimed_at > LEASE_SAFE.total_seconds():
            return None  # the lease may be about to end: leave the row for the next claim
        limiter.acquire()
        if monotonic() - claimed_at > LEASE_SAFE.total_seconds():
            return None
        if row.participant_id is not None and not still_sendable(db, row, owner, clock()):
            return None  # cancelled since the claim (an opt-out, a crisis hold): it must not go out
        try:
            result = sender.send(row.to_phone, row.body, status_callback=status_callback)
        except Exception:  # a sender bug must not loop forever: count it as a failed attempt
            log.exception("sender raised for outbox %s", row.id)
            result = SendResult(ok=False, retryable=True, detail="sender_error")
        try:
            return record(db, row, owner, result, clock(), notifier=notifier)
        except Exception:
            if result.ok:  # it left: whatever happens, it must not be sent again as if it had failed
                return keep_unrecorded(db, spool, row, result, clock())
            # Not sent: the row stays leased, and after LEASE it is claimed and tried again.
            log.exception("could not record the failed attempt of outbox %s", row.id)
            return None

    def claim_batch(size: int) -> list[Claimed]:
        skip = spool.unrecorded_outbox_ids() if spool is not None else frozenset()
        return claim(db, clock(), owner, limit=size, ids=ids, late_window=late_window, skip=skip)

    remaining = len(ids) if ids is not None else limit
    threads = max(1, threads)
    batch = max(threads * 4, 20)
    if rate and rate > 0:
        # A batch must be sent well within its lease.
        batch = max(1, min(batch, int(rate * LEASE_SAFE.total_seconds() / 2)))

    def budget_left() -> bool:
        return budget_seconds is None or monotonic() - started < budget_seconds

    if threads == 1:
        while (remaining is None or remaining > 0) and budget_left():
            rows = claim_batch(batch if remaining is None else min(batch, remaining))
            if not rows:
                break
            claimed_at = monotonic()
            for row in rows:
                report.add(send_one(row, claimed_at))
            if remaining is not None:
                remaining -= len(rows)
            if ids is not None:
                break
        return report

    pool = _pool(threads)
    in_flight: set[Future[str | None]] = set()
    more = True  # whether another claim may find rows
    while True:
        # Keep the pool fed: claim again while fewer than two sends per thread are queued.
        while more and len(in_flight) < threads * 2 and budget_left() and (remaining is None or remaining > 0):
            rows = claim_batch(batch if remaining is None else min(batch, remaining))
            if not rows:
                more = False
                break
            claimed_at = monotonic()
            in_flight.update(pool.submit(send_one, row, claimed_at) for row in rows)
            if remaining is not None:
                remaining -= len(rows)
            if ids is not None:
                more = False
        if not in_flight:
            return report
        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            outcome = future.result()
            report.add(outcome)
            if outcome == "failed" and ids is None:
                more = True  # a permanent failure may have enqueued a counselor notice


# --------------------------------------------------------------------------------------------
# Crisis re-alerts


def realert_crises(
    db: Database,
    library: Any,
    now: datetime,
    *,
    every: timedelta,
    backup_phone: str | None = None,
    program_name: str = "IOP Coping Skills",
    public_base_url: str | None = None,
) -> list[int]:
    """Enqueue a repeat alert for each crisis event unacknowledged for `every` since its last alert.

    An acknowledged event gets no more. The alert goes to the participant's counselor and to
    `backup_phone` when set, with a link to the event's page under `public_base_url`. Dedupe keys
    (event, alert number, recipient) make concurrent ticks enqueue each repeat once. Returns the
    new outbox ids (deliver them at once: they must not wait behind a backlog of nudges).
    """
    if every <= timedelta(0):
        return []

    def work(session: Session) -> list[int]:
        last = func.coalesce(CrisisEvent.last_alert_at, CrisisEvent.created_at)
        new_ids: list[int] = []
        for event in _claim_events(db, session, CrisisEvent.kind == "crisis", CrisisEvent.acknowledged_at.is_(None),
                                   last <= now - every):
            participant = session.get(Participant, event.participant_id) if event.participant_id else None
            count = (event.alerts_sent or 0) + 1
            body = library.message(
                "crisis_realert",
                program=program_name,
                participant=participant_label(library, participant.name if participant else None),
                phone_tail=mask_phone(event.phone),
                event_id=event.id,
                minutes=max(1, int((now - event.created_at).total_seconds() // 60)),
                count=count,
                link=crises.event_link(library, public_base_url, event.id),
            )
            recipients: list[tuple[str, str, int | None]] = []
            if participant is not None:
                counselor = session.get(Counselor, participant.counselor_id)
                if counselor is not None:
                    recipients.append(("counselor", counselor.phone, counselor.id))
            if backup_phone:
                recipients.append(("backup", backup_phone, None))
            for who, phone, counselor_id in recipients:
                new_id = enqueue_once(
                    session,
                    to=phone,
                    body=body,
                    kind=REALERT_KIND,
                    now=now,
                    counselor_id=counselor_id,
                    dedupe_key=f"crisis:{event.id}:{count}:{who}",
                )
                if new_id is not None:
                    new_ids.append(new_id)
            event.alerts_sent = count
            event.last_alert_at = now
            log.warning("crisis event %s still unacknowledged: repeat alert %s", event.id, count)
        return new_ids

    return db.run(work)


CHECK_ALERT_KIND = "check_alert"


def alert_unanswered_checks(
    db: Database, library: Any, now: datetime, *, timeout: timedelta, program_name: str = "IOP Coping Skills",
    public_base_url: str | None = None,
) -> list[int]:
    """Tell the counselor, once, about each direct risk question unanswered for `timeout` (and
    not acknowledged by then).

    Lower urgency than a crisis alert: one message, no repeats, nudges not held. A dedupe key per
    event makes concurrent ticks enqueue it once. Returns the new outbox ids.
    """
    if timeout <= timedelta(0):
        return []

    def work(session: Session) -> list[int]:
        new_ids: list[int] = []
        for event in _claim_events(db, session, CrisisEvent.kind == "check", CrisisEvent.answer.is_(None),
                                   CrisisEvent.acknowledged_at.is_(None), CrisisEvent.alerts_sent == 0,
                                   CrisisEvent.created_at <= now - timeout):
            participant = session.get(Participant, event.participant_id) if event.participant_id else None
            counselor = session.get(Counselor, participant.counselor_id) if participant is not None else None
            event.alerts_sent = 1
            event.last_alert_at = now
            if counselor is None:
                continue
            body = library.message(
                "counselor_check_alert", program=program_name,
                participant=participant_label(library, participant.name if participant else None),
                phone_tail=mask_phone(event.phone), event_id=event.id,
                minutes=max(1, int((now - event.created_at).total_seconds() // 60)),
                link=crises.event_link(library, public_base_url, event.id),
            )
            new_id = enqueue_once(session, to=counselor.phone, body=body, kind=CHECK_ALERT_KIND, now=now,
                                  counselor_id=counselor.id, dedupe_key=f"check:{event.id}")
            if new_id is not None:
                new_ids.append(new_id)
            log.warning("check event %s unanswered: counselor told", event.id)
        return new_ids

    return db.run(work)


def _claim_events(db: Database, session: Session, *conditions: Any) -> Iterable[CrisisEvent]:
    """The events matching `conditions`, oldest first, locked against concurrent ticks on
    PostgreSQL (SKIP LOCKED: another tick's events are left to it)."""
    stmt = select(CrisisEvent).where(*conditions).order_by(CrisisEvent.id)
    if db.is_postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt)
