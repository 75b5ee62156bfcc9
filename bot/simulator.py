"""A browser simulator: text the bot as a participant without a phone or a Twilio account.

On only when the configuration allows it (no Twilio credentials, never in production). It calls
the same `inbound.receive` as the Twilio webhook, so what you see is what a participant gets.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Flask, abort, current_app, jsonify, render_template, request
from sqlalchemy import select

from . import inbound
from .conversation import InboundSms
from .enrollment import EnrollmentError, normalise_phone
from .models import Message, Participant

bp = Blueprint("simulator", __name__, url_prefix="/simulator")


@bp.before_request
def _only_when_enabled() -> None:
    if not current_app.config.get("SIMULATOR_ENABLED"):
        abort(404)


@bp.get("")
def page() -> str:
    db = current_app.extensions["db"]
    with db.session() as session:
        rows = session.scalars(select(Participant).order_by(Participant.id))
        people = [(p.phone, p.name or "", p.status) for p in rows]
    return render_template("simulator.html", people=people)


@bp.post("/send")
def send() -> Any:
    payload = request.get_json(silent=True) or {}
    text = str(payload.get("text", ""))[: inbound.MAX_BODY]
    try:
        phone = normalise_phone(str(payload.get("phone", "")), current_app.config["DEFAULT_REGION"])
    except EnrollmentError as exc:
        return jsonify(error=str(exc)), 400
    services = current_app.extensions
    now = services["clock"]()
    sms = InboundSms(phone=phone, body=text, sid="SIM" + uuid.uuid4().hex)
    received = inbound.receive(services["db"], services["make_context"], sms, now)
    inbound.deliver_now(current_app, received.outbox_ids)
    return jsonify(replies=received.replies)


@bp.get("/messages")
def messages() -> Any:
    """Every message to and from one number, oldest first (replies and outbox deliveries)."""
    try:
        phone = normalise_phone(request.args.get("phone", ""), current_app.config["DEFAULT_REGION"])
    except EnrollmentError as exc:
        return jsonify(error=str(exc)), 400
    db = current_app.extensions["db"]
    with db.session() as session:
        rows = session.scalars(select(Message).where(Message.phone == phone).order_by(Message.id)).all()
        items = [{"id": m.id, "direction": m.direction, "kind": m.kind, "body": m.body} for m in rows]
    return jsonify(messages=items)


def init_app(app: Flask) -> None:
    if app.config.get("BOT_ENV") == "production":
        return  # no route at all: it texts as anyone, without a signature
    app.register_blueprint(bp)
