"""A browser simulator: text the bot as a participant without a phone or a Twilio account.

A dashboard page for signed-in counselors, on only when the configuration allows it (by default
when there are no Twilio credentials) and never in production: there the blueprint is not even
registered. It calls the same `inbound.receive` as the Twilio webhook, so what you see is what a
participant gets. A counselor may text as one of their own clients (an admin: as anyone) or as a
number that belongs to no client; another counselor's client's number is refused, as is reading
that client's thread.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request
from flask_login import current_user
from sqlalchemy import select

from . import inbound
from .conversation import InboundSms
from .dashboard.access import visible_participants
from .enrollment import EnrollmentError, normalise_phone
from .models import Message, Participant

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

# Suggested in the "demo number" field: a number of the 555-01xx range reserved for fiction.
DEMO_NUMBER = "+12025550199"


def _gate() -> Response | None:
    """Before every other hook of the app: the simulator is a 404 when off (as if it did not
    exist, even signed out), and its JSON endpoints answer 401 to a signed-out request instead of
    the sign-in redirect a page gets (a `fetch` cannot follow that usefully)."""
    if request.blueprint != bp.name:
        return None
    if not current_app.config.get("SIMULATOR_ENABLED"):
        abort(404)
    if request.endpoint != "simulator.page" and not current_user.is_authenticated:
        return Response("sign in first", 401, mimetype="text/plain")
    return None


def _phone_or_error(raw: str) -> tuple[str | None, Any]:
    """The number in E.164 if the current counselor may use it, else (None, error response)."""
    try:
        phone = normalise_phone(raw, current_app.config["DEFAULT_REGION"])
    except EnrollmentError as exc:
        return None, (jsonify(error=str(exc)), 400)
    db = current_app.extensions["db"]
    with db.session() as session:
        owner = session.scalar(select(Participant).where(Participant.phone == phone))
        visible = owner is None or session.scalar(
            visible_participants().where(Participant.id == owner.id)) is not None
    if not visible:
        return None, (jsonify(error="That number belongs to another counselor's client."), 403)
    return phone, None


@bp.get("")
def page() -> str:
    db = current_app.extensions["db"]
    with db.session() as session:
        rows = session.scalars(visible_participants().order_by(Participant.name, Participant.id))
        people = [(p.phone, p.name or "", p.status) for p in rows]
    return render_template("dashboard/simulator.html", people=people, demo_number=DEMO_NUMBER)


@bp.post("/send")
def send() -> Any:
    payload = request.get_json(silent=True) or {}
    text = str(payload.get("text", ""))[: inbound.MAX_BODY]
    if not text.strip():
        return jsonify(error="Type a text first."), 400
    phone, error = _phone_or_error(str(payload.get("phone", "")))
    if phone is None:
        return error
    services = current_app.extensions
    now = services["clock"]()
    sms = InboundSms(phone=phone, body=text, sid="SIM" + uuid.uuid4().hex)
    received = inbound.receive(services["db"], services["make_context"], sms, now)
    inbound.deliver_now(current_app, received.outbox_ids)
    return jsonify(replies=received.replies)


@bp.get("/messages")
def messages() -> Any:
    """Every message to and from one number, oldest first (replies and outbox deliveries)."""
    phone, error = _phone_or_error(request.args.get("phone", ""))
    if phone is None:
        return error
    db = current_app.extensions["db"]
    with db.session() as session:
        rows = session.scalars(select(Message).where(Message.phone == phone).order_by(Message.id)).all()
        items = [{"id": m.id, "direction": m.direction, "kind": m.kind, "body": m.body} for m in rows]
    return jsonify(phone=phone, messages=items)


def init_app(app: Flask) -> None:
    if app.config.get("BOT_ENV") == "production":
        return  # no route at all: it texts as anyone, without a signature
    app.register_blueprint(bp)
    # First of the app's before-request hooks, ahead of the dashboard's sign-in redirect.
    app.before_request_funcs.setdefault(None, []).insert(0, _gate)
