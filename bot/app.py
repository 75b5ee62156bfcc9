"""The web application: `create_app` assembles it; read it as a table of contents."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask_wtf import CSRFProtect

from .config import ConfigError, defaults, finalise, from_environment, production_problems, refuse
from .conversation import Context
from .db import Database
from .matching import Matcher
from .models import utcnow
from .skills import Library, load_library
from .sms import ConsoleSender, SmsSender, TwilioSender
from .spool import Spool

csrf = CSRFProtect()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(defaults())
    app.config.from_prefixed_env()
    app.config.update(from_environment())
    app.config.update(config or {})
    finalise(app.config)
    _configure_logging(app)

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.extensions["db"] = Database(app.config["DATABASE_URL"],
                                    statement_timeout_ms=int(app.config.get("DATABASE_STATEMENT_TIMEOUT_MS") or 0))
    library = load_library(Path(app.config["SKILLS_LIBRARY"]))
    app.extensions["library"] = library
    _check_settings(app.config, library)
    app.extensions["matcher"] = Matcher(library)
    app.extensions.setdefault("clock", utcnow)
    app.extensions["sms_sender"] = app.config.get("SMS_SENDER") or make_sender(app.config)
    app.extensions["make_context"] = lambda now: make_context(app, now)
    app.extensions["spool"] = Spool(app.config.get("SPOOL_DIR") or Path(app.instance_path) / "spool")

    if int(app.config.get("PROXY_HOPS") or 0) > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)  # type: ignore[method-assign]
    csrf.init_app(app)
    from . import cli, dashboard, health, metrics, scheduler, simulator, webhook

    webhook.init_app(app)
    csrf.exempt(webhook.bp)
    dashboard.init_app(app)
    simulator.init_app(app)
    cli.init_app(app)
    scheduler.init_cli(app)
    health.init_app(app)
    metrics.init_app(app)

    return app


def _check_settings(config: Any, library: Library) -> None:
    """Settings that only make sense against the content: fail start-up with one clear message."""
    problems = []
    country = str(config.get("CRISIS_COUNTRY") or "").strip().upper()
    if country not in library.resources:
        known = ", ".join(sorted(library.resources))
        problems.append(f"CRISIS_COUNTRY={config.get('CRISIS_COUNTRY')!r} has no crisis resources file "
                        f"(ISO 3166 alpha-2 codes with a file: {known}; the UK is GB)")
    if config.get("BOT_ENV") == "production":
        # Every country's file, not only CRISIS_COUNTRY's: texters get their own country's lines.
        unverified = sorted(library.unverified_resources(utcnow().date()))
        problems += production_problems(config, unreviewed_skills=len(library.unreviewed()),
                                        unverified_resources=unverified)
    if problems:
        if config.get("BOT_ENV") == "production":
            refuse(problems)
        raise ConfigError("\n".join(problems))


def make_context(app: Flask, now: datetime) -> Context:
    return Context(
        library=app.extensions["library"],
        matcher=app.extensions["matcher"],
        now=now,
        program_name=app.config["PROGRAM_NAME"],
        crisis_country=app.config["CRISIS_COUNTRY"],
        risk_context=timedelta(hours=app.config["RISK_CONTEXT_HOURS"]),
        backup_phone=app.config.get("CRISIS_BACKUP_PHONE") or None,
        public_base_url=app.config.get("PUBLIC_BASE_URL") or None,
    )


def make_sender(config: Mapping[str, Any]) -> SmsSender:
    """Twilio when credentials are configured, else the console sender (the embedded default)."""
    if config.get("TWILIO_ENABLED"):
        return TwilioSender(
            config["TWILIO_ACCOUNT_SID"],
            config["TWILIO_AUTH_TOKEN"],
            from_number=config.get("TWILIO_FROM_NUMBER"),
            messaging_service_sid=config.get("TWILIO_MESSAGING_SERVICE_SID"),
            base_url=config.get("TWILIO_API_BASE_URL"),
            timeout=float(config.get("TWILIO_TIMEOUT_SECONDS") or 10),
        )
    return ConsoleSender()


def _configure_logging(app: Flask) -> None:
    level = getattr(logging, str(app.config.get("LOG_LEVEL", "INFO")).upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bot").setLevel(level)
    # twilio's HTTP client logs request bodies (message text, phone numbers) at INFO.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
