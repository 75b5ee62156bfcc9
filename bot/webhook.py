"""Twilio endpoints: thin routes that validate, parse, call the domain, and answer TwiML.

Every answer is TwiML with Content-Type text/xml, whatever happens: Twilio treats anything
else (an HTML error page) as error 12300.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from twilio.request_validator import RequestValidator, compare
from twilio.twiml.messaging_response import MessagingResponse

from . import inbound
from .conversation import InboundSms
from .models import Message, Outbox

log = logging.getLogger(__name__)

bp = Blueprint("webhook", __name__)

# Delivery statuses in the order a message moves through them; a later callback never moves a
# message back (callbacks arrive out of order).
STATUS_RANK = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "receiving": 3, "received": 4, "delivered": 5, "read": 6,
    "undelivered": 5, "failed": 5, "canceled": 5, "partially_delivered": 5,
}


def twiml(replies: list[str] | None = None, status: int = 200) -> Response:
    response = MessagingResponse()
    for text in replies or []:
        response.message(text)
    return Response(str(response), status=status, mimetype="text/xml")


def signed_url() -> str:
    """The URL Twilio signed: the public base URL when configured (behind proxies), else ours."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    full_path = request.full_path.rstrip("?")
    if base:
        return str(base).rstrip("/") + full_path
    return request.host_url.rstrip("/") + full_path


def signature_ok() -> bool:
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    validator = RequestValidator(token)
    url = signed_url()
    # Fast path: one HMAC for the URL as configured; `validate` (which also tries the URL with and
    # without an explicit port) only when that does not match.
    if compare(validator.compute_signature(url, request.form), signature):
        return True
    return bool(validator.validate(url, request.form, signature))


@bp.post("/sms")
def sms() -> Response:
    if not signature_ok():
        log.warning("rejected /sms with a missing or invalid signature")
        return twiml(status=403)
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    phone = form.get("From", "")
    if not sid or not phone:
        return twiml()
    try:
        num_media = int(form.get("NumMedia", "0") or 0)
    except ValueError:
        num_media = 0
    message = InboundSms(
        phone=phone, body=form.get("Body", ""), sid=sid, opt_out_type=form.get("OptOutType") or None,
        num_media=num_media,
    )
    services = current_app.extensions
    now = services["clock"]()
    try:
        received = inbound.receive(services["db"], services["make_context"], message, now)
    except OperationalError:
        log.exception("database unavailable while handling %s", sid[-6:])
        # Twilio keeps the message in its logs and tries the fallback URL on 5xx; crisis texts
        # still get resources now.
        return twiml(inbound.fallback_replies(services["library"], current_app.config["CRISIS_COUNTRY"],
                                              message.body), status=503)
    except Exception:
        log.exception("unexpected error while handling %s", sid[-6:])
        return twiml(inbound.fallback_replies(services["library"], current_app.config["CRISIS_COUNTRY"],
                                              message.body))
    if received.duplicate:
        return twiml()
    inbound.deliver_now(current_app, received.outbox_ids)
    return twiml(received.replies)


@bp.post("/sms/status")
def status() -> Response:
    if not signature_ok():
        return twiml(status=403)
    sid = request.form.get("MessageSid") or request.form.get("SmsSid")
    new_status = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").lower()
    error_code = request.form.get("ErrorCode") or None
    if sid and new_status in STATUS_RANK:
        db = current_app.extensions["db"]
        now = current_app.extensions["clock"]()
        db.run(lambda session: _apply_status(session, sid, new_status, error_code, now))
    return twiml()


def _apply_status(session: Any, sid: str, new_status: str, error_code: str | None, now: Any) -> None:
    message = session.scalar(select(Message).where(Message.twilio_sid == sid))
    if message is None:
        return
    if STATUS_RANK.get(message.status or "", -1) < STATUS_RANK[new_status]:
        message.status = new_status
        message.updated_at = now
        if error_code:
            message.error_code = error_code
    row = session.scalar(select(Outbox).where(Outbox.provider_sid == sid))
    if row is not None and error_code and not row.error_code:
        row.error_code = error_code


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.errorhandler(405)
    def _method_not_allowed(error: Any) -> Any:
        if request.path.startswith("/sms"):
            return twiml(status=405)
        return error
