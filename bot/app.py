"""The web application: `create_app` assembles it; read it as a table of contents."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask_wtf import CSRFProtect

from .config import defaults, finalise, from_environment
from .conversation import Context
from .db import Database
from .matching import Matcher
from .models import utcnow
from .skills import load_library
from .sms import ConsoleSender, SmsSender, TwilioSender

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
    app.extensions["db"] = Database(app.config["DATABASE_URL"])
    library = load_library(Path(app.config["SKILLS_LIBRARY"]))
    app.extensions["library"] = library
    app.extensions["matcher"] = Matcher(library)
    app.extensions.setdefault("clock", utcnow)
    app.extensions["sms_sender"] = app.config.get("SMS_SENDER") or make_sender(app.config)
    app.extensions["make_context"] = lambda now: make_context(app, now)

    csrf.init_app(app)
    from . import cli, scheduler, simulator, webhook

    webhook.init_app(app)
    csrf.exempt(webhook.bp)
    simulator.init_app(app)
    cli.init_app(app)
    scheduler.init_cli(app)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def make_context(app: Flask, now: datetime) -> Context:
    return Context(
        library=app.extensions["library"],
        matcher=app.extensions["matcher"],
        now=now,
        program_name=app.config["PROGRAM_NAME"],
        crisis_country=app.config["CRISIS_COUNTRY"],
        risk_context=timedelta(hours=app.config["RISK_CONTEXT_HOURS"]),
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
