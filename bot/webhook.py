"""Twilio endpoints: thin routes that validate, parse, call the domain, and answer TwiML.

Every answer is TwiML with Content-Type text/xml, whatever happens: Twilio treats anything
else (an HTML error page) as error 12300.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from sqlalchemy.exc import OperationalError
from twilio.request_validator import RequestValidator, compare
from twilio.twiml.messaging_response import MessagingResponse

from . import inbound, metrics, outbox, statuses
from .conversation import InboundSms
from .statuses import STATUS_RANK

log = logging.getLogger(__name__)

bp = Blueprint("webhook", __name__)


def twiml(replies: list[str] | None = None, status: int = 200) -> Response:
    response = MessagingResponse()
    metrics.count_replies(len(replies or []))
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
        metrics.count_inbound("forged")
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
    except Exception as exc:
        metrics.count_inbound("error")
        return _answer_without_database(message, now, exc)
    metrics.count_inbound("duplicate" if received.duplicate else "handled", received.risk_events)
    if received.duplicate:
        return twiml()
    response = twiml(received.replies)
    _replay_spool_after(response)
    if received.outbox_ids:
        # The texter's reply first: counselor alerts go out once the response is written (a slow
        # Twilio API must not delay a crisis reply). The rows are in the outbox already, so if
        # this process dies first, the scheduler's next tick sends them.
        app, ids = current_app._get_current_object(), list(received.outbox_ids)  # type: ignore[attr-defined]
        response.call_on_close(lambda: inbound.deliver_now(app, ids))
    return response


_spool_checked = 0.0
SPOOL_CHECK_SECONDS = 30.0


def _replay_spool_after(response: Response) -> None:
    """The database answers again: replay texts this host spooled during an outage, after the
    response (looked for at most every SPOOL_CHECK_SECONDS; the scheduler's tick replays too)."""
    global _spool_checked
    moment = time.monotonic()
    if moment - _spool_checked < SPOOL_CHECK_SECONDS:
        return
    _spool_checked = moment
    if current_app.extensions["spool"].has_entries():
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        response.call_on_close(lambda: statuses.replay_spool(app))


def _answer_without_database(message: InboundSms, now: Any, exc: Exception) -> Response:
    """The database (or a bug) failed this text: answer 200 anyway and keep the text for replay.

    Twilio does not deliver the body of a 4xx/5xx answer (error 11217), so a 503 with crisis lines
    would reach nobody. The text is spooled to disk and replayed once the database answers, so a
    crisis text still alerts the counselor.
    """
    services = current_app.extensions
    if isinstance(exc, OperationalError):
        log.error("database unavailable while handling %s (%s): answered and spooled",
                  message.sid[-6:], type(exc.orig or exc).__name__)
    else:
        log.exception("unexpected error while handling %s: answered and spooled", message.sid[-6:])
    replies = inbound.fallback_replies(services["make_context"](now), message)
    inbound.keep_for_replay(services["spool"], message, now, replies)
    return twiml(replies)


@bp.post("/sms/status")
def status() -> Response:
    if not signature_ok():
        return twiml(status=403)
    sid = request.form.get("MessageSid") or request.form.get("SmsSid")
    new_status = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").lower()
    error_code = request.form.get("ErrorCode") or None
    if sid and new_status in STATUS_RANK:
        services = current_app.extensions
        now = services["clock"]()
        notifier = outbox.Notifier(services["library"], current_app.config["PROGRAM_NAME"])
        try:
            services["db"].run(lambda session: statuses.apply(session, sid, new_status, error_code, now, notifier))
        except Exception as exc:
            # Kept and applied once the database answers: Twilio would not post it again after a
            # 503 (bot/statuses.py), and a carrier opt-out (21610) must not be lost.
            log.error("status callback for %s not recorded (%s): spooled", sid[-6:], type(exc).__name__)
            if not statuses.keep_for_replay(services["spool"], sid, new_status, error_code, now):
                return twiml(status=503)  # lost after all: say so, never a 500 page
            return twiml()
        response = twiml()
        _replay_spool_after(response)
        return response
    return twiml()


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.errorhandler(405)
    def _method_not_allowed(error: Any) -> Any:
        if request.path.startswith("/sms"):
            return twiml(status=405)
        return error
