"""Receiving one text: record it, run the conversation engine, store the replies, in one transaction.

Used by the Twilio webhook, the browser simulator and `flask chat`, so all three behave alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import conversation, outbox, risk
from .conversation import Context, InboundSms
from .db import Database
from .models import Message
from .sms import mask_phone

log = logging.getLogger(__name__)

MAX_BODY = 1600  # Twilio's limit; anything longer is truncated before storage


@dataclass
class Received:
    replies: list[str] = field(default_factory=list)
    duplicate: bool = False
    outbox_ids: list[int] = field(default_factory=list)


def receive(db: Database, make_context: Callable[[datetime], Context], sms: InboundSms, now: datetime) -> Received:
    """Handle one inbound text exactly once per MessageSid; replies are returned, not sent."""
    sms = InboundSms(
        phone=_clean(sms.phone)[:20], body=_clean(sms.body)[:MAX_BODY], sid=_clean(sms.sid)[:64],
        opt_out_type=sms.opt_out_type, num_media=sms.num_media,
    )

    ctx = make_context(now)
    reading = conversation.read(sms, ctx.matcher)  # outside the transaction: it needs no database

    def work(session: Session) -> Received:
        connection = session.connection()
        # Locked for the whole transaction: two quick texts from one person run one after the
        # other (FOR UPDATE on PostgreSQL; on SQLite the writer lock is already held).
        participant = conversation.PARTICIPANTS.load(connection, sms.phone, for_update=db.is_postgres)
        participant_id = participant.id if participant else None
        # A redelivered MessageSid violates the unique key when this transaction commits, and
        # everything it did is rolled back; the first delivery's reply stands.
        connection.execute(_INSERT_MESSAGE, {
            "participant_id": participant_id, "direction": "in", "phone": sms.phone, "body": sms.body,
            "kind": "inbound", "twilio_sid": sms.sid, "status": "received", "created_at": now})
        outcome = conversation.handle(session, ctx, participant, sms, reading)
        if outcome.replies:
            connection.execute(_INSERT_MESSAGE, [
                {"participant_id": participant_id, "direction": "out", "phone": sms.phone, "body": text,
                 "kind": "reply", "status": "replied", "created_at": now}
                for text in outcome.replies
            ])
        return Received(replies=outcome.replies, outbox_ids=outcome.outbox_ids)

    try:
        result = db.run(work)
    except IntegrityError:
        # Twilio delivered this MessageSid before (or concurrently, and the other won the race).
        log.info("inbound %s from %s: duplicate delivery ignored", sms.sid[-6:], mask_phone(sms.phone))
        return Received(duplicate=True)
    log.info("inbound %s from %s: %d replies", sms.sid[-6:], mask_phone(sms.phone), len(result.replies))
    return result


_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


def _clean(value: str) -> str:
    """Drop control characters (PostgreSQL cannot store NUL; none of them carries meaning)."""
    return value.translate(_CONTROL)


# Built once: constructing a statement costs more than executing its cached compiled form.
_INSERT_MESSAGE = insert(Message.__table__)


def fallback_replies(library: object, crisis_country: str, body: str) -> list[str]:
    """Replies when the database is unavailable: crisis resources still go out (fail closed)."""
    resources = library.crisis_resources(crisis_country)  # type: ignore[attr-defined]
    if risk.assess(body).tier != risk.NONE:  # no question can be asked and answered without the database
        return [
            library.message("crisis_emergency", emergency=resources.emergency),  # type: ignore[attr-defined]
            library.message("crisis_reply_unknown", resources=resources.summary),  # type: ignore[attr-defined]
        ]
    return [library.message("error_generic", emergency=resources.emergency)]  # type: ignore[attr-defined]


def deliver_now(app: Any, ids: list[int]) -> None:
    """Send outbox rows right after the commit that created them (alerts must not wait a tick).

    `app` is the Flask app (its extensions and config); failures leave the rows pending for the
    scheduler's tick, which retries them.
    """
    if not ids:
        return
    services, config = app.extensions, app.config
    base = config.get("PUBLIC_BASE_URL")
    try:
        outbox.deliver(
            services["db"], services["sms_sender"], services["clock"](), ids=ids,
            notifier=outbox.Notifier(services["library"], config.get("PROGRAM_NAME") or "IOP Coping Skills"),
            status_callback=f"{str(base).rstrip('/')}/sms/status" if base else None,
        )
    except Exception:
        log.exception("immediate outbox delivery failed; rows left for the tick")
