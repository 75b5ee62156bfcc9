"""Delivery status callbacks: what Twilio says became of a message the bot sent.

A callback moves the message's status forward (never back: callbacks arrive out of order) and
records its error code; a carrier opt-out (error 21610) opts the participant out everywhere.

When the database is down the webhook answers 200 and spools the callback (`bot/spool.py`,
status/), and it is applied once the database answers, like a text received during an outage.
A 503 would lose it: by default Twilio retries a webhook once, and only when the connection
failed, not on an HTTP error answer (the retry policy `rp` defaults to `ct`;
https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from . import inbound, outbox
from .db import Database
from .models import Message, Outbox, Participant
from .sms import UNSUBSCRIBED
from .spool import Spool, StatusEntry

log = logging.getLogger(__name__)

# Delivery statuses in the order a message moves through them; a later callback never moves a
# message back (callbacks arrive out of order).
STATUS_RANK = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "receiving": 3, "received": 4, "delivered": 5, "read": 6,
    "undelivered": 5, "failed": 5, "canceled": 5, "partially_delivered": 5,
}


def apply(
    session: Session, sid: str, new_status: str, error_code: str | None, now: datetime, notifier: outbox.Notifier
) -> None:
    """Record the callback for the message with provider SID `sid` (nothing if there is none)."""
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
    if error_code == str(UNSUBSCRIBED) and message.participant_id is not None:
        # The carrier refused the message because the person opted out (Twilio error 21610).
        participant = session.get(Participant, message.participant_id)
        if participant is not None:
            outbox.carrier_opt_out(session, participant, now, notifier, f"optout:{participant.id}:{sid}")


def keep_for_replay(spool: Spool, sid: str, new_status: str, error_code: str | None, now: datetime) -> bool:
    """Spool a callback the database could not take; False (and an error logged) if even that failed."""
    try:
        spool.put_status(StatusEntry(sid=sid[:64], status=new_status, received_at=now.isoformat(),
                                     error_code=error_code[:16] if error_code else None))
    except OSError as exc:
        log.error("could not spool the status callback for %s: %s", sid[-6:], type(exc).__name__)
        return False
    return True


def replay(db: Database, spool: Spool, notifier: outbox.Notifier) -> int:
    """Apply the spooled callbacks, each as of when it arrived; returns how many were applied.

    Replay the spool's sent/ entries first (`outbox.replay_unrecorded`): a callback about a send
    that is not recorded yet finds no message. Stops at the first sign the database is still down.
    """
    applied = 0
    for path, entry in spool.statuses():
        if entry.status not in STATUS_RANK:
            spool.done(path)
            continue

        def work(session: Session, e: StatusEntry = entry) -> None:
            apply(session, e.sid, e.status, e.error_code, e.received, notifier)

        try:
            db.run(work)
        except OperationalError:
            log.warning("database still unavailable: spooled status callbacks wait for the next try")
            break
        except Exception:
            log.exception("could not replay the spooled status callback for %s", entry.sid[-6:])
            spool.retry_later(path, entry)
            continue
        spool.done(path)
        applied += 1
    return applied


def replay_spool(app: Any) -> None:
    """Replay this host's spool with the app's services (`app`: the Flask app): texts and
    unrecorded sends, with the alerts they raise (`inbound.replay_and_deliver`), then the status
    callbacks, which need those sends recorded first."""
    services = app.extensions
    inbound.replay_and_deliver(app)
    try:
        replay(services["db"], services["spool"], outbox.Notifier(services["library"], app.config["PROGRAM_NAME"]))
    except Exception:
        log.exception("replaying spooled status callbacks failed; the next try or tick replays them")
