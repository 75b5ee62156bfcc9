"""Configuration in three layers: defaults here, then the environment, then a test mapping.

The environment variable names are part of the operator contract (README, deployment scripts):
keep them exactly as they are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Plain environment names (no prefix) that operators set.
ENV_NAMES = (
    "DATABASE_URL",
    "SECRET_KEY",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_API_BASE_URL",
    "PUBLIC_BASE_URL",
    "DEFAULT_REGION",
    "CRISIS_COUNTRY",
    "BOT_ENV",
    "PROGRAM_NAME",
    "SIMULATOR_ENABLED",
    "SKILLS_LIBRARY",
    "NUDGE_BACKOFF_AFTER",
    "NUDGE_LATE_WINDOW_MINUTES",
    "SEND_RATE_PER_SECOND",
    "CRISIS_REALERT_MINUTES",
    "CRISIS_BACKUP_PHONE",
    "CHECK_TIMEOUT_MINUTES",
    "RISK_CONTEXT_HOURS",
    "TWILIO_TIMEOUT_SECONDS",
    "LOG_LEVEL",
    "CHECKIN_WEEKDAY",
    "DELIVERY_THREADS",
    "TICK_DELIVERY_BUDGET_SECONDS",
    "SCHEDULER_STALE_SECONDS",
    "MESSAGE_RETENTION_DAYS",
    "METRICS_TOKEN",
    "ALLOW_UNREVIEWED_CONTENT",
    "SPOOL_DIR",
    "REQUIRE_2FA",
    "PROXY_HOPS",
    "SMS_SEGMENT_PRICE",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "SCHEDULER_STATEMENT_TIMEOUT_MS",
)

_INT_KEYS = {
    "NUDGE_BACKOFF_AFTER",
    "NUDGE_LATE_WINDOW_MINUTES",
    "CRISIS_REALERT_MINUTES",
    "CHECK_TIMEOUT_MINUTES",
    "RISK_CONTEXT_HOURS",
    "TWILIO_TIMEOUT_SECONDS",
    "CHECKIN_WEEKDAY",
    "DELIVERY_THREADS",
    "SCHEDULER_STALE_SECONDS",
    "MESSAGE_RETENTION_DAYS",
    "PROXY_HOPS",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "SCHEDULER_STATEMENT_TIMEOUT_MS",
}
_FLOAT_KEYS = {"SEND_RATE_PER_SECOND", "TICK_DELIVERY_BUDGET_SECONDS", "SMS_SEGMENT_PRICE"}
_BOOL_KEYS = {"SIMULATOR_ENABLED", "ALLOW_UNREVIEWED_CONTENT", "REQUIRE_2FA"}


def defaults() -> dict[str, Any]:
    """Embedded defaults: SQLite in instance/, console sender, simulator on, development mode."""
    return {
        "BOT_ENV": "development",
        "DATABASE_URL": f"sqlite:///{ROOT / 'instance' / 'bot.sqlite3'}",
        "SECRET_KEY": None,
        "TWILIO_ACCOUNT_SID": None,
        "TWILIO_AUTH_TOKEN": None,
        "TWILIO_FROM_NUMBER": None,
        "TWILIO_MESSAGING_SERVICE_SID": None,
        "TWILIO_API_BASE_URL": None,
        "TWILIO_TIMEOUT_SECONDS": 10,
        "PUBLIC_BASE_URL": None,
        "DEFAULT_REGION": "US",
        "CRISIS_COUNTRY": "US",
        "PROGRAM_NAME": "IOP Coping Skills",
        "REQUIRE_2FA": False,
        # Reverse proxies in front of the web process that append X-Forwarded-For: the client's
        # address (sign-in limits, audit) is read that many hops back. 0 trusts no header.
        "PROXY_HOPS": 0,  # every counselor must set up two-factor (TOTP) before any page
        "SIMULATOR_ENABLED": None,  # None: on when no Twilio credentials and not production
        "SKILLS_LIBRARY": str(ROOT / "skills_library"),
        "NUDGE_BACKOFF_AFTER": 5,
        "NUDGE_LATE_WINDOW_MINUTES": 120,
        "SEND_RATE_PER_SECOND": 10.0,
        "CRISIS_REALERT_MINUTES": 15,
        "CRISIS_BACKUP_PHONE": None,
        "CHECK_TIMEOUT_MINUTES": 30,  # no answer to the direct risk question: the counselor is told
        "RISK_CONTEXT_HOURS": 24,  # how long a check or crisis event colours the texts that follow
        "LOG_LEVEL": "INFO",
        "CHECKIN_WEEKDAY": 6,  # Sunday's nudge is a mood check-in; -1 turns check-ins off
        "DELIVERY_THREADS": 32,
        "TICK_DELIVERY_BUDGET_SECONDS": 45.0,
        "SCHEDULER_STALE_SECONDS": 180,  # /healthz reports the scheduler stale after this
        "MESSAGE_RETENTION_DAYS": 180,  # message bodies older than this are blanked; 0 keeps them
        "METRICS_TOKEN": None,  # when set, GET /metrics needs "Authorization: Bearer <token>"
        "ALLOW_UNREVIEWED_CONTENT": False,  # production refuses skills nobody signed off unless set
        "SPOOL_DIR": None,  # texts received while the database was down; default instance/spool
        # PostgreSQL cancels a statement after this long (0: never; see bot/db.py). The web's must
        # fail a webhook well inside Twilio's 15 s (error 11200); the scheduler's bulk work gets longer.
        "DATABASE_STATEMENT_TIMEOUT_MS": 5_000,
        "SCHEDULER_STATEMENT_TIMEOUT_MS": 60_000,
        # The local all-in-one process (README run command) seeds demo data into an empty DB.
        "SEED_DEMO": False,
        "WTF_CSRF_TIME_LIMIT": None,
    }


def _coerce(key: str, value: str) -> Any:
    if key in _INT_KEYS:
        return int(value)
    if key in _FLOAT_KEYS:
        return float(value)
    if key in _BOOL_KEYS:
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return value


def from_environment(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Any]:
    """The values operators set in the environment, typed; empty strings count as unset."""
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for key in ENV_NAMES:
        raw = environ.get(key)
        if raw is not None and raw.strip() != "":
            found[key] = _coerce(key, raw.strip())
    return found


class ConfigError(RuntimeError):
    """The configuration cannot run safely (e.g. production without secrets)."""


def production_problems(
    config: dict[str, Any], *, unreviewed_skills: int = 0, unverified_resources: Sequence[str] = (),
) -> list[str]:
    """Everything that makes a BOT_ENV=production configuration unsafe, each as one line."""
    problems: list[str] = []
    url = str(config.get("DATABASE_URL") or "")
    if not url or url.startswith("sqlite") or url == defaults()["DATABASE_URL"]:
        problems.append("DATABASE_URL must be set to a PostgreSQL database (SQLite is for local use)")
    for key, why in (("SECRET_KEY", "signs counselor sessions"), ("TWILIO_ACCOUNT_SID", "sends texts"),
                     ("TWILIO_AUTH_TOKEN", "sends texts and verifies Twilio's webhooks"),
                     ("PUBLIC_BASE_URL", "the https address Twilio signs its webhooks for")):
        if not config.get(key):
            problems.append(f"{key} is not set ({why})")
    if not (config.get("TWILIO_FROM_NUMBER") or config.get("TWILIO_MESSAGING_SERVICE_SID")):
        problems.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID is not set (the sender)")
    if unreviewed_skills and not config.get("ALLOW_UNREVIEWED_CONTENT"):
        problems.append(f"{unreviewed_skills} skills are not signed off by a clinician (reviewed_by is empty); "
                        "sign them off, or set ALLOW_UNREVIEWED_CONTENT=1 to run them anyway")
    if unverified_resources:
        problems.append("crisis lines nobody has verified: " + ", ".join(unverified_resources) + " (call or text "
                        "each number, then fill last_verified and verified_by in skills_library/crisis/<CC>.yaml)")
    return problems


def refuse(problems: list[str]) -> None:
    if problems:
        raise ConfigError("BOT_ENV=production refuses to start:\n" + "\n".join(f"  - {p}" for p in problems))


def finalise(config: dict[str, Any]) -> None:
    """Derive dependent settings (production's own checks run once the library is loaded)."""
    production = config.get("BOT_ENV") == "production"
    twilio_ready = bool(config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN"))
    if production:
        config["SIMULATOR_ENABLED"] = False  # never in production, whatever SIMULATOR_ENABLED says
    elif config.get("SIMULATOR_ENABLED") is None:
        config["SIMULATOR_ENABLED"] = not twilio_ready
    if not config.get("SECRET_KEY") and not production:
        # Development only: a per-process random key (sessions do not survive a restart).
        config["SECRET_KEY"] = os.urandom(32).hex()
    config["TWILIO_ENABLED"] = twilio_ready
