"""Receiving one text: record it, run the conversation engine, store the replies, in one transaction.

Used by the Twilio webhook, the browser simulator and `flask chat`, so all three behave alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from . import conversation, crises, outbox, risk
from .conversation import Context, InboundSms
from .db import Database
from .models import Counselor, Message
from .sms import mask_phone
from .spool import InboundEntry, Spool

log = logging.getLogger(__name__)

MAX_BODY = 1600  # Twilio's limit; anything longer is truncated before storage


@dataclass
class Received:
    replies: list[str] = field(default_factory=list)
    duplicate: bool = False
    outbox_ids: list[int] = field(default_factory=list)
    risk_events: list[str] = field(default_factory=list)  # "crisis"/"check" events it opened (metrics)


def receive(db: Database, make_context: Callable[[datetime], Context], sms: InboundSms, now: datetime) -> Received:
    """Handle one inbound text exactly once per MessageSid; replies are returned, not sent."""
    sms = InboundSms(
        phone=_clean(sms.phone)[:20], body=_clean(sms.body)[:MAX_BODY], sid=_clean(sms.sid)[:64],
        opt_out_type=sms.opt_out_type, num_media=sms.num_media,
    )

    ctx = make_context(now)
    reading = conversation.read(sms, ctx.matcher)  # outside the transaction: it needs no database
    ack = crises.parse_ack(sms.body)

    def work(session: Session) -> Received:
        connection = session.connection()
        # A registered counselor's "ACK <id> [note]" is a command about an event, not a
        # participant's text: it skips the crisis screen that every participant text goes through
        # first. On a number that is both (demo set-ups), only a text that matches ACK is a command.
        counselors = conversation.counselors_at(session, sms.phone) if ack is not None else []
        if ack is not None and counselors:
            return _counselor_ack(session, ctx, sms, counselors, ack, now)
        # Locked for the whole transaction: two quick texts from one person run one after the
        # other (FOR UPDATE on PostgreSQL; on SQLite the writer lock is already held).
        participant = conversation.PARTICIPANTS.load(connection, sms.phone, for_update=db.is_postgres)
        participant_id = participant.id if participant else None
        # A redelivered MessageSid violates the unique key when this transaction commits, and
        # everything it did is rolled back; the first delivery's reply stands.
        stored = connection.execute(_INSERT_MESSAGE, {
            "participant_id": participant_id, "direction": "in", "phone": sms.phone, "body": sms.body,
            "kind": "inbound", "twilio_sid": sms.sid, "status": "received", "created_at": now})
        # The events this text opens point to it (the dashboard shows the counselor what was said).
        text_ctx = replace(ctx, message_id=_stored_id(stored))
        outcome = conversation.handle(session, text_ctx, participant, sms, reading)
        if outcome.replies:
            connection.execute(_INSERT_MESSAGE, [
                {"participant_id": participant_id, "direction": "out", "phone": sms.phone, "body": text,
                 "kind": "reply", "status": "replied", "created_at": now}
                for text in outcome.replies
            ])
        return Received(replies=outcome.replies, outbox_ids=outcome.outbox_ids, risk_events=outcome.risk_events)

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


def _stored_id(result: Any) -> int | None:
    """The id of the message row one `_INSERT_MESSAGE` execution stored."""
    key = result.inserted_primary_key
    return int(key[0]) if key and key[0] is not None else None


def _counselor_ack(
    session: Session, ctx: Context, sms: InboundSms, counselors: list[Counselor], ack: crises.AckCommand, now: datetime,
    *, sent: list[str] | None = None,
) -> Received:
    """Record a counselor's ACK text (under no participant) and acknowledge the event. Its
    MessageSid is recorded in the same transaction, so a redelivery acknowledges nothing twice
    and is not answered again. A replayed text gives `sent`, the replies it already had."""
    connection = session.connection()
    connection.execute(_INSERT_MESSAGE, {
        "participant_id": None, "direction": "in", "phone": sms.phone, "body": sms.body,
        "kind": "counselor_ack", "twilio_sid": sms.sid, "status": "received", "created_at": now})
    outcome = conversation.acknowledge_by_text(session, ctx, counselors, ack)
    replies = outcome.replies if sent is None else sent
    if replies:
        connection.execute(_INSERT_MESSAGE, [
            {"participant_id": None, "direction": "out", "phone": sms.phone, "body": text,
             "kind": "counselor_reply", "status": "replied", "created_at": now}
            for text in replies
        ])
    return Received(replies=replies)


def fallback_replies(ctx: Context, sms: InboundSms) -> list[str]:
    """Replies when the database is unavailable (fail closed: no database is needed to write them).

    A text with any risk gets the crisis lines of the texter's country at once (no question can be
    asked and answered without the database). So does a reply that would be a worrying answer to a
    question the bot may just have asked ("yes" to the direct question, "no" to "are you safe
    right now?"): which question is pending is in the database. An opt-out gets its confirmation;
    anything else is asked to text again in a minute.
    """
    library, resources = ctx.library, ctx.resources(sms.phone)
    worrying_answer = risk.answer(sms.body) == "yes" or risk.safety_answer(sms.body) == "unsafe"
    if risk.assess(sms.body).tier != risk.NONE or worrying_answer:
        return [
            library.message("crisis_emergency", emergency=resources.emergency),
            library.message("crisis_reply_unknown", resources=resources.summary),
        ]
    if conversation.compliance_word(sms.body, sms.opt_out_type) == "opt_out":
        return [library.message("opted_out_confirmation", program=ctx.program_name, resources=resources.summary)]
    return [library.message("error_generic", emergency=resources.emergency)]


def keep_for_replay(store: Spool, sms: InboundSms, now: datetime, replies: list[str]) -> bool:
    """Spool a text the database could not take; False (and an error logged) if even that failed."""
    try:
        store.put_inbound(InboundEntry(
            sid=_clean(sms.sid)[:64], phone=_clean(sms.phone)[:20], body=_clean(sms.body)[:MAX_BODY],
            received_at=now.isoformat(), replies=list(replies), opt_out_type=sms.opt_out_type,
            num_media=sms.num_media,
        ))
    except OSError as exc:
        log.error("could not spool inbound %s from %s: %s", sms.sid[-6:], mask_phone(sms.phone), type(exc).__name__)
        return False
    return True


def replay(db: Database, make_context: Callable[[datetime], Context], store: Spool) -> list[int]:
    """Record the spooled texts now that the database answers; returns the outbox ids to deliver.

    Each text is handled at the time it arrived (`conversation.replay`): its event carries that
    time, and its counselor alert goes out now. A text already recorded (a second process replayed
    it first) is dropped. Stops at the first sign the database is still down.
    """
    outbox_ids: list[int] = []
    for path, entry in store.inbound():
        sms = InboundSms(phone=entry.phone, body=entry.body, sid=entry.sid, opt_out_type=entry.opt_out_type,
                         num_media=entry.num_media)
        ctx = make_context(entry.received)
        reading = conversation.read(sms, ctx.matcher)
        ack = crises.parse_ack(sms.body)

        def work(session: Session, sms: InboundSms = sms, ctx: Context = ctx, reading: conversation.Reading = reading,
                 replies: list[str] = entry.replies, ack: crises.AckCommand | None = ack) -> list[int]:
            connection = session.connection()
            counselors = conversation.counselors_at(session, sms.phone) if ack is not None else []
            if ack is not None and counselors:  # a counselor's ACK (see `receive`): done now, unanswered
                _counselor_ack(session, ctx, sms, counselors, ack, ctx.now, sent=replies)
                return []
            participant = conversation.PARTICIPANTS.load(connection, sms.phone, for_update=db.is_postgres)
            participant_id = participant.id if participant else None
            stored = connection.execute(_INSERT_MESSAGE, {
                "participant_id": participant_id, "direction": "in", "phone": sms.phone, "body": sms.body,
                "kind": "inbound", "twilio_sid": sms.sid, "status": "received", "created_at": ctx.now})
            text_ctx = replace(ctx, message_id=_stored_id(stored))
            outcome = conversation.replay(session, text_ctx, participant, sms, reading)
            if replies:
                connection.execute(_INSERT_MESSAGE, [
                    {"participant_id": participant_id, "direction": "out", "phone": sms.phone, "body": text,
                     "kind": "reply", "status": "replied", "created_at": ctx.now}
                    for text in replies
                ])
            return outcome.outbox_ids

        try:
            ids = db.run(work)
        except IntegrityError:
            log.info("spooled inbound %s was recorded already", entry.sid[-6:])
            store.done(path)
            continue
        except OperationalError:
            log.warning("database still unavailable: spooled texts wait for the next try")
            break
        except Exception:
            log.exception("could not replay spooled inbound %s", entry.sid[-6:])
            store.retry_later(path, entry)
            continue
        store.done(path)
        outbox_ids.extend(ids)
        log.warning("replayed inbound %s from %s received during a database outage", entry.sid[-6:],
                    mask_phone(entry.phone))
    return outbox_ids


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
            services["db"], services["sms_sender"], services["clock"](), ids=ids, spool=services.get("spool"),
            notifier=outbox.Notifier(services["library"], config.get("PROGRAM_NAME") or "IOP Coping Skills"),
            status_callback=f"{str(base).rstrip('/')}/sms/status" if base else None,
        )
    except Exception:
        log.exception("immediate outbox delivery failed; rows left for the tick")


def replay_and_deliver(app: Any) -> None:
    """Replay this host's spool with the app's services and send the alerts it raised."""
    services = app.extensions
    try:
        outbox.replay_unrecorded(services["db"], services["spool"])
        deliver_now(app, replay(services["db"], services["make_context"], services["spool"]))
    except Exception:
        log.exception("replaying the spool failed; the next try or tick replays it")
