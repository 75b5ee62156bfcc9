"""`GET /healthz`: is the database reachable, and is the scheduler still ticking?

Answers JSON: {"database": "ok"|"unavailable", "scheduler": "ok"|"stale"|"never",
"last_tick_age_seconds": float|null, "stale_after_seconds": int}. The status is 503 only when the
database is unreachable (a load balancer should stop sending texts to this process); a stale
scheduler is reported and logged as an error, but the web process itself can still answer texts.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from . import heartbeat

log = logging.getLogger(__name__)


def healthz() -> tuple[dict[str, Any], int]:
    services = current_app.extensions
    stale_after = int(current_app.config.get("SCHEDULER_STALE_SECONDS") or 180)
    body: dict[str, Any] = {"database": "ok", "scheduler": "never", "last_tick_age_seconds": None,
                            "stale_after_seconds": stale_after}
    try:
        beat = heartbeat.last(services["db"])
    except SQLAlchemyError as exc:
        log.error("health check: database unavailable (%s)", type(exc).__name__)
        body["database"] = "unavailable"
        body["scheduler"] = "unknown"
        return body, 503
    if beat is not None:
        age = beat.age_seconds(services["clock"]())
        body["last_tick_age_seconds"] = round(age, 1)
        body["scheduler"] = "ok" if age <= stale_after else "stale"
        if age > stale_after:
            log.error("health check: the scheduler's last tick was %.0f s ago (stale after %d s): "
                      "nudges and crisis re-alerts are not going out", age, stale_after)
    return body, 200


def init_app(app: Flask) -> None:
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
