"""`GET /metrics`: Prometheus text format, safe under gunicorn's several worker processes.

Counters (process-global, incremented where things happen):
- `bot_inbound_messages_total{result}`: texts posted to the webhook; result is handled,
  duplicate (a redelivered MessageSid), error (database down or a bug: the fallback reply went
  out) or forged (bad or missing signature).
- `bot_replies_total`: TwiML reply messages sent back.
- `bot_crisis_events_total{tier}`: handled texts that opened a crisis or check event.
- `bot_delivery_failures_total{code}`: failed outbox send attempts, by Twilio error code (or
  HTTP status) or a short reason ("timeout", an exception name, "sender_error").

Gauges read from the database at scrape time (the scheduler is another process):
`bot_database_up` (0/1), `bot_outbox_pending`, `bot_outbox_oldest_pending_seconds` (how long the
longest-waiting due row has been due; 0 when none is), `bot_tick_duration_seconds` and
`bot_last_tick_timestamp_seconds` (the scheduler's heartbeat; absent until its first tick). When
the database is unreachable only `bot_database_up 0` is reported: a scrape never fails.

Multiprocess mode: with PROMETHEUS_MULTIPROC_DIR set (before the process starts), every process
writes its counters to files in that directory and a scrape of any worker sums them all. The
directory must be emptied when a deploy starts, and gunicorn's `child_exit` hook should call
`child_exit` below (`multiprocess.mark_process_dead`). Without the variable, the process's own
registry is served.

No label ever holds a phone number or message text. This module imports no Flask (the route is
added by `init_app`), so the outbox may count through it.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, disable_created_metrics, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from . import heartbeat
from .models import PENDING, Outbox

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# `_created` series double the output and are not written in multiprocess mode anyway.
disable_created_metrics()
if os.environ.get(MULTIPROC_ENV):
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

INBOUND_RESULTS = ("handled", "duplicate", "error", "forged")
TIERS = ("crisis", "check")

INBOUND = Counter("bot_inbound_messages", "Inbound texts posted to the Twilio webhook, by result.", ["result"])
REPLIES = Counter("bot_replies", "TwiML reply messages sent back to Twilio.")
CRISIS_EVENTS = Counter("bot_crisis_events", "Handled inbound texts that opened a crisis or check event.", ["tier"])
DELIVERY_FAILURES = Counter(
    "bot_delivery_failures", "Failed outbox send attempts, by Twilio error code or short reason.", ["code"]
)
for _result in INBOUND_RESULTS:
    INBOUND.labels(result=_result)
for _tier in TIERS:
    CRISIS_EVENTS.labels(tier=_tier)


def count_inbound(result: str, tiers: Iterable[str] = ()) -> None:
    """One text posted to the webhook; `tiers` are the risk events it opened ("crisis", "check")."""
    INBOUND.labels(result=result if result in INBOUND_RESULTS else "error").inc()
    for tier in tiers:
        if tier in TIERS:
            CRISIS_EVENTS.labels(tier=tier).inc()


def count_replies(count: int) -> None:
    if count > 0:
        REPLIES.inc(count)


def count_delivery_failure(result: Any) -> None:
    """A failed send (a bot.sms.SendResult with ok False)."""
    code = failure_code(getattr(result, "error_code", None), getattr(result, "detail", None))
    DELIVERY_FAILURES.labels(code=code).inc()


_TIMEOUT = re.compile("time ?out", re.IGNORECASE)


def failure_code(error_code: Any, detail: str | None) -> str:
    """A small, safe label: a Twilio code or HTTP status (at most 6 digits, never a phone
    number), "timeout", or a short name without digits."""
    if error_code is not None:
        code = str(error_code).strip()
        return code if code.isdigit() and len(code) <= 6 else "other"
    if detail and _TIMEOUT.search(detail):
        return "timeout"
    return re.sub(r"[^A-Za-z_]", "", detail or "")[:32] or "error"


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's `child_exit` hook (in gunicorn.conf.py: `from bot.metrics import child_exit`)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(worker.pid)


# --------------------------------------------------------------------------------------------
# Scrape


class DatabaseCollector(Collector):
    """Gauges computed from the database when scraped: outbox backlog and the scheduler's tick."""

    def __init__(self, db: Any, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("bot_database_up", "1 when the database answered this scrape, else 0.")
        try:
            now = self.clock()
            with self.db.engine.connect() as connection:
                pending, first_due = connection.execute(
                    select(func.count(), func.min(Outbox.next_attempt_at)).where(Outbox.status == PENDING)
                ).one()
        except Exception as exc:  # a scrape must never fail: report the database as down
            log.warning("metrics: database unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("bot_outbox_pending", "Outbox rows waiting to be sent (due or not).", value=pending)
        waited = max(0.0, (now - first_due).total_seconds()) if first_due is not None else 0.0
        yield GaugeMetricFamily(
            "bot_outbox_oldest_pending_seconds",
            "Seconds the longest-waiting due outbox row has been due (0 when none is due).",
            value=waited,
        )
        try:
            beat = heartbeat.last(self.db)
        except Exception as exc:
            log.warning("metrics: heartbeat unreadable (%s)", type(exc).__name__)
            return
        if beat is not None:
            yield GaugeMetricFamily(
                "bot_tick_duration_seconds", "How long the scheduler's last tick took.", value=beat.duration_seconds
            )
            yield GaugeMetricFamily(
                "bot_last_tick_timestamp_seconds", "When the scheduler's last tick ended (Unix time).",
                value=beat.beat_at.timestamp(),
            )


class _Forward(Collector):
    """This process's own metrics (the default registry), when not in multiprocess mode."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def registry_for(db: Any, clock: Callable[[], datetime]) -> CollectorRegistry:
    """A fresh registry for one scrape: every process's counters (or this one's), and the gauges."""
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_Forward())
    registry.register(DatabaseCollector(db, clock))
    return registry


def render(db: Any, clock: Callable[[], datetime], accept: str = "") -> tuple[bytes, str]:
    """The exposition body and its content type, negotiated from the Accept header."""
    encoder, content_type = choose_encoder(accept)
    try:
        return encoder(registry_for(db, clock)), content_type
    except Exception:  # e.g. an unreadable multiprocess file: still answer with the gauges
        log.exception("metrics: collecting failed; serving the database gauges only")
        fallback = CollectorRegistry(auto_describe=False)
        fallback.register(DatabaseCollector(db, clock))
        return encoder(fallback), content_type


def authorized(header: str, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(given.strip().encode(), token.encode())


def init_app(app: Any) -> None:
    """Add `GET /metrics` (Bearer METRICS_TOKEN when that is set, else open)."""
    from flask import Response, current_app, request

    def metrics_view() -> Any:
        token = current_app.config.get("METRICS_TOKEN")
        if token and not authorized(request.headers.get("Authorization", ""), str(token)):
            return Response("unauthorized\n", status=401, mimetype="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        services = current_app.extensions
        body, content_type = render(services["db"], services["clock"], request.headers.get("Accept", ""))
        return Response(body, status=200, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
