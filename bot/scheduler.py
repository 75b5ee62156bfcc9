"""The scheduler: one tick a minute plans due nudges, re-alerts crises and delivers the outbox.

Process model: `flask scheduler` runs APScheduler 3 (BlockingScheduler, memory
job store) with one interval job, "tick". Web workers never start a scheduler; `flask serve` (the
local all-in-one process) starts a BackgroundScheduler through `start_background_scheduler`.
Running several scheduler processes is safe on PostgreSQL (claims use SKIP LOCKED and unique keys
forbid a second nudge per local date), just wasteful.

A tick is bounded: it stops claiming new outbox rows after TICK_DELIVERY_BUDGET_SECONDS so the
next minute's planning is not delayed; the rest of a backlog goes out in the following ticks.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import cohorts, diary, heartbeat, outbox, privacy, statuses
from .db import Database
from .nudges import NudgeConfig, plan_due_nudges
from .sms import SmsSender
from .spool import Spool

log = logging.getLogger(__name__)

TICK_JOB_ID = "tick"
TICK_SECONDS = 60
# A tick that starts late by more than this is dropped (coalesced into the next one).
MISFIRE_GRACE_SECONDS = 50
DEFAULT_DELIVERY_THREADS = 32
DEFAULT_DELIVERY_BUDGET_SECONDS = 45.0


@dataclass
class TickSummary:
    planned: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def as_json(self) -> str:
        return json.dumps(asdict(self))


def run_tick(
    db: Database, sender: SmsSender, library: Any, now: datetime, config: Mapping[str, Any], *,
    spool: Spool | None = None,
) -> TickSummary:
    """One tick at `now` (aware UTC): crisis re-alerts (delivered first), nudges, then the outbox.

    Safe to run concurrently with other ticks and to replay for a past `now`.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    started = time.monotonic()
    program = str(config.get("PROGRAM_NAME") or "IOP Coping Skills")
    notifier = outbox.Notifier(library, program)
    rate = _float(config.get("SEND_RATE_PER_SECOND"), 10.0)
    late_window = timedelta(minutes=int(config.get("NUDGE_LATE_WINDOW_MINUTES") or 120))
    common: dict[str, Any] = {
        "rate": rate,
        "threads": outbox.thread_count(rate, int(config.get("DELIVERY_THREADS") or DEFAULT_DELIVERY_THREADS)),
        "status_callback": status_callback_url(config),
        "notifier": notifier,
        "late_window": late_window,
        "spool": spool,
    }
    summary = TickSummary()
    realerts = outbox.realert_crises(
        db,
        library,
        now,
        every=timedelta(minutes=int(config.get("CRISIS_REALERT_MINUTES") or 0)),
        backup_phone=config.get("CRISIS_BACKUP_PHONE") or None,
        program_name=program,
        public_base_url=config.get("PUBLIC_BASE_URL") or None,
    )
    realerts += outbox.alert_unanswered_checks(
        db, library, now, timeout=timedelta(minutes=int(config.get("CHECK_TIMEOUT_MINUTES") or 0)),
        program_name=program, public_base_url=config.get("PUBLIC_BASE_URL") or None,
    )
    if realerts:
        _add(summary, outbox.deliver(db, sender, now, ids=realerts, **common))
    try:
        summary.planned = plan_due_nudges(db, library, now, NudgeConfig.coerce(config))
    except Exception:  # planning trouble must not stop delivery of alerts already queued
        log.exception("planning nudges failed; delivering the outbox anyway")
    try:
        summary.planned += len(cohorts.plan_reminders(db, library, now, program))
    except Exception:
        log.exception("planning group reminders failed; delivering the outbox anyway")
    try:
        summary.planned += diary.plan_due_cards(db, library, now, NudgeConfig.coerce(config))
    except Exception:
        log.exception("planning diary cards failed; delivering the outbox anyway")
    budget = _float(config.get("TICK_DELIVERY_BUDGET_SECONDS"), DEFAULT_DELIVERY_BUDGET_SECONDS)
    _add(summary, outbox.deliver(db, sender, now, budget_seconds=budget, **common))
    try:
        previous = heartbeat.last(db)
        if previous is None or previous.beat_at.replace(minute=0, second=0, microsecond=0) != now.replace(
                minute=0, second=0, microsecond=0):  # the first tick of each hour: a full scan
            privacy.apply_retention(db, spool, now, int(config.get("MESSAGE_RETENTION_DAYS") or 0))
    except Exception:
        log.exception("blanking old message text failed; the next tick tries again")
    heartbeat.record(db, now, time.monotonic() - started)
    return summary


def _float(value: Any, default: float) -> float:
    return default if value is None or value == "" else float(value)


def _add(summary: TickSummary, report: outbox.DeliveryReport) -> None:
    summary.sent += report.sent
    summary.retrying += report.retrying
    summary.failed += report.failed


def status_callback_url(config: Mapping[str, Any]) -> str | None:
    """Where Twilio posts delivery statuses, when the app has a public address."""
    base = config.get("PUBLIC_BASE_URL")
    return f"{str(base).rstrip('/')}/sms/status" if base else None


def tick(app: Flask, now: datetime | None = None) -> TickSummary:
    """One tick with the app's services; `now` defaults to the app's clock."""
    services = app.extensions
    when = now if now is not None else services["clock"]()
    # Texts, sends and status callbacks kept on disk while the database was down are recorded
    # first, and their alerts delivered, before anything else is planned.
    statuses.replay_spool(app)
    return run_tick(services["db"], services["sms_sender"], services["library"], when, app.config,
                    spool=services["spool"])


def use_scheduler_timeouts(app: Flask) -> None:
    """This process runs ticks: its PostgreSQL statements may take SCHEDULER_STATEMENT_TIMEOUT_MS
    (0: no limit) instead of the web's DATABASE_STATEMENT_TIMEOUT_MS, which is short so a webhook
    fails before Twilio's 15 s (bot/db.py). Planning a day's nudges in bulk and the hourly
    retention pass over the messages table take longer than a webhook ever may."""
    app.extensions["db"].use_statement_timeout(int(app.config.get("SCHEDULER_STATEMENT_TIMEOUT_MS") or 0))


def tick_job(app: Flask) -> None:
    """The APScheduler job: a module-level function (APScheduler needs an importable callable)."""
    try:
        with app.app_context():
            summary = tick(app)
        if summary.planned or summary.sent or summary.retrying or summary.failed:
            log.info("tick: %s", summary.as_json())
    except Exception:  # keep the scheduler alive; the next tick tries again
        log.exception("tick failed")


def _add_tick_job(scheduler: Any, app: Flask) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    # APScheduler logs every run at INFO; a tick that did something logs its own summary.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)

    # Ticks on the minute boundary (nudge times are whole minutes) from the next minute on.
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    scheduler.add_job(
        tick_job,
        IntervalTrigger(seconds=TICK_SECONDS, start_date=start, timezone=UTC),
        args=[app],
        id=TICK_JOB_ID,
        name="plan nudges, re-alert crises, deliver the outbox",
        replace_existing=True,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        coalesce=True,
        max_instances=1,
    )


def make_blocking_scheduler(app: Flask) -> Any:
    """A BlockingScheduler (UTC) holding the tick job; call .start() to run it."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone=UTC)
    _add_tick_job(scheduler, app)
    return scheduler


_background: Any = None
_background_lock = threading.Lock()


def start_background_scheduler(app: Flask, *, use_reloader: bool = False) -> Any:
    """Start the tick in a background thread of this process (the local all-in-one), once.

    With the werkzeug reloader, the watching parent process would tick as well as the serving
    child: pass use_reloader=True and only the child (WERKZEUG_RUN_MAIN) starts a scheduler.
    A second call in the same process returns the running scheduler. Returns None when skipped.
    """
    global _background
    if use_reloader and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        return None
    with _background_lock:
        if _background is not None:
            return _background
        from apscheduler.schedulers.background import BackgroundScheduler

        # Web and ticks share this process and its engine: the ticks' longer timeout for both.
        use_scheduler_timeouts(app)
        scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
        _add_tick_job(scheduler, app)
        scheduler.start()
        _background = scheduler
        log.info("scheduler started in the background (one tick a minute)")
        return scheduler


def stop_background_scheduler() -> None:
    """Stop the background scheduler, waiting for a running tick to finish."""
    global _background
    with _background_lock:
        if _background is not None:
            _background.shutdown(wait=True)
            _background = None


# --------------------------------------------------------------------------------------------
# Commands


@click.command("scheduler")
def scheduler_command() -> None:
    """The scheduler process: one tick a minute until stopped (Ctrl-C or SIGTERM)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    use_scheduler_timeouts(app)
    scheduler = make_blocking_scheduler(app)

    def stop(_signum: int, _frame: Any) -> None:
        # Let a running tick finish: its claims are released by recording, not by lease expiry.
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    click.echo("scheduler: one tick a minute; Ctrl-C to stop")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass


nudges_group = AppGroup("nudges", help="Daily practice nudges.")


def parse_now(value: str | None) -> datetime | None:
    """An aware UTC datetime from ISO 8601 ("2026-03-08T07:00Z"); naive values are taken as UTC."""
    if value is None:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 date and time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@nudges_group.command("tick")
@click.option("--now", "now_text", default=None, help="Run the tick as of this instant (ISO 8601).")
def tick_command(now_text: str | None) -> None:
    """Run one tick and print {"planned", "sent", "retrying", "failed"} as one JSON line."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    use_scheduler_timeouts(app)
    summary = tick(app, parse_now(now_text))
    click.echo(summary.as_json())


def init_cli(app: Flask) -> None:
    """Register `flask scheduler` and `flask nudges ...`."""
    app.cli.add_command(scheduler_command)
    app.cli.add_command(nudges_group)
