"""A counselor acknowledges a crisis event by texting "ACK <id> [note]" from their alert phone,
through signed Twilio webhooks: their own clients' events only (an admin: any), the same refusal
for an unknown id and someone else's event, once per MessageSid, and only when the text is ACK."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.models import AuditLog, CrisisEvent, Message, Participant
from tests.conftest import SmsPoster, new_sid
from tests.dashboard_helpers import add_counselor

CASEY_PHONE = "+12025550100"  # the `counselor` fixture's alert phone
CASEY = "casey@clinic.example"
PHONE = "+12025550101"  # the `participant` fixture (Pat, Casey's client)
BEA_PHONE = "+12025550178"
CRISIS_TEXT = "i want to kill myself tonight"
NOTE = "called her, safe"


@pytest.fixture
def event_id(sms: SmsPoster, participant: Any, db: Any) -> int:
    sms(CRISIS_TEXT, from_=PHONE)
    with db.session() as s:
        return int(s.scalars(select(CrisisEvent.id).where(CrisisEvent.kind == "crisis")).one())


def event_row(db: Any, event_id: int) -> CrisisEvent:
    with db.session() as s:
        event = s.get_one(CrisisEvent, event_id)
        s.expunge(event)
        return event


def crisis_hold(db: Any, phone: str = PHONE) -> bool:
    with db.session() as s:
        return bool(s.scalar(select(Participant.crisis_hold).where(Participant.phone == phone)))


def acks(db: Any) -> list[AuditLog]:
    with db.session() as s:
        rows = list(s.scalars(select(AuditLog).where(AuditLog.action == "crisis_ack")))
        s.expunge_all()
        return rows


def refusal(library: Any, event: int | str) -> str:
    return str(library.message("counselor_ack_refused", program="IOP Coping Skills", event_id=event))


def test_ack_from_the_counselors_phone_acknowledges_with_the_note_and_confirms(
    sms: SmsPoster, event_id: int, db: Any, clock: Any, counselor: Any, caplog: Any,
) -> None:
    assert crisis_hold(db) is True
    clock.advance(minutes=4)
    caplog.set_level(logging.DEBUG)
    replies = sms(f"ACK {event_id} {NOTE}", from_=CASEY_PHONE)
    assert replies == [f"IOP Coping Skills: crisis event #{event_id} acknowledged. Nudges resume for Pat."]
    event = event_row(db, event_id)
    assert (event.acknowledged_by, event.acknowledged_at) == (CASEY, clock.now)
    assert (event.ack_outcome, event.ack_note) == ("acknowledged_by_sms", NOTE)
    assert crisis_hold(db) is False
    (audit,) = acks(db)
    assert (audit.actor, audit.participant_id, audit.detail) == (
        CASEY, event.participant_id, {"event": event_id, "outcome": "acknowledged_by_sms", "via": "sms"})
    assert NOTE not in caplog.text and "called her" not in caplog.text  # the note is never logged
    with db.session() as s:  # recorded as the counselor's, not under the client
        kinds = list(s.execute(select(Message.direction, Message.kind, Message.participant_id).where(
            Message.phone == CASEY_PHONE, Message.kind.like("counselor%"))))
    assert sorted(kinds) == [("in", "counselor_ack", None), ("out", "counselor_reply", None)]


@pytest.mark.parametrize("text", ["ack #{id}", "  Ack {id}: called, she is with her mum", "ACK {id}\nline two"])
def test_the_ack_command_forms(sms: SmsPoster, event_id: int, db: Any, counselor: Any, text: str) -> None:
    (reply,) = sms(text.format(id=event_id), from_=CASEY_PHONE)
    assert "acknowledged" in reply and event_row(db, event_id).acknowledged_by == CASEY
    expected = text.format(id=event_id).split(str(event_id), 1)[1].strip().lstrip(":").strip() or None
    assert event_row(db, event_id).ack_note == expected


def test_another_counselors_phone_and_an_unknown_id_get_the_same_refusal(
    sms: SmsPoster, event_id: int, db: Any, app: Any, counselor: Any,
) -> None:
    add_counselor(db, "bea@clinic.example", phone=BEA_PHONE)
    library = app.extensions["library"]
    assert sms(f"ACK {event_id} done", from_=BEA_PHONE) == [refusal(library, event_id)]
    assert sms("ACK 999 done", from_=CASEY_PHONE) == [refusal(library, 999)]
    assert sms("ACK 99999999999999 done", from_=CASEY_PHONE) == [refusal(library, "99999999999999")]
    # Word for word the same apart from the number: an id says nothing about what exists.
    assert refusal(library, event_id).replace(str(event_id), "N") == refusal(library, 999).replace("999", "N")
    assert event_row(db, event_id).acknowledged_at is None and crisis_hold(db) is True
    assert acks(db) == []


def test_an_admins_phone_may_acknowledge_any_event(sms: SmsPoster, event_id: int, db: Any) -> None:
    add_counselor(db, "ada@clinic.example", admin=True, phone="+12025550179")
    (reply,) = sms(f"ack {event_id} reached her", from_="+12025550179")
    assert "acknowledged" in reply
    assert event_row(db, event_id).acknowledged_by == "ada@clinic.example"


def test_an_acknowledged_event_is_not_overwritten_and_the_answer_says_by_whom(
    sms: SmsPoster, event_id: int, db: Any, counselor: Any,
) -> None:
    sms(f"ACK {event_id} {NOTE}", from_=CASEY_PHONE)
    (reply,) = sms(f"ACK {event_id} something else", from_=CASEY_PHONE)
    assert "already acknowledged by Casey Counselor" in reply
    assert event_row(db, event_id).ack_note == NOTE and len(acks(db)) == 1


def test_a_duplicate_delivery_acknowledges_once_and_is_not_answered_again(
    sms: SmsPoster, event_id: int, db: Any, counselor: Any,
) -> None:
    sid = new_sid()
    first = sms(f"ACK {event_id} {NOTE}", from_=CASEY_PHONE, sid=sid)
    assert first and "acknowledged" in first[0]
    with db.session() as s:
        before = s.scalar(select(func.count(Message.id)))
    assert sms(f"ACK {event_id} {NOTE}", from_=CASEY_PHONE, sid=sid) == []
    with db.session() as s:
        assert s.scalar(select(func.count(Message.id))) == before
    assert len(acks(db)) == 1


def test_other_texts_from_a_counselors_phone_take_the_normal_path(
    sms: SmsPoster, event_id: int, db: Any, app: Any, counselor: Any,
) -> None:
    library = app.extensions["library"]
    unknown = library.message("unknown_number", program="IOP Coping Skills",
                              resources=library.crisis_resources("US").summary)
    assert sms("hello, who is this?", from_=CASEY_PHONE) == [unknown]
    assert sms("acknowledged", from_=CASEY_PHONE) == []  # one neutral reply a day to an unknown number
    assert event_row(db, event_id).acknowledged_at is None
    # ...and a risk text from that phone is still a crisis (for an unknown number).
    replies = sms("i want to end my life", from_=CASEY_PHONE)
    assert any("988" in r for r in replies)


def test_ack_from_a_client_who_is_not_a_counselor_is_an_ordinary_text(
    sms: SmsPoster, event_id: int, db: Any,
) -> None:
    sms("ACK 1 ok", from_=PHONE)  # read as the answer to "are you safe?", as any text would be
    assert event_row(db, event_id).acknowledged_at is None and crisis_hold(db) is True


def test_on_a_number_that_is_both_only_ack_is_a_command(
    sms: SmsPoster, enroll_participant: Any, db: Any, counselor: Any,
) -> None:
    enroll_participant(phone=CASEY_PHONE, name="Demo")  # demo set-up: the counselor is also a client
    replies = sms(CRISIS_TEXT, from_=CASEY_PHONE)
    assert any("988" in r for r in replies)  # the crisis screen runs first on a client's text
    with db.session() as s:
        demo_event = int(s.scalars(select(CrisisEvent.id)).one())
    (reply,) = sms(f"ACK {demo_event} test run", from_=CASEY_PHONE)
    assert reply.endswith("Nudges resume for Demo.")
    assert event_row(db, demo_event).ack_note == "test run" and crisis_hold(db, CASEY_PHONE) is False


def test_a_check_event_acknowledged_by_text_gets_no_late_check_alert(
    app: Any, sms: SmsPoster, participant: Any, db: Any, clock: Any, fake_twilio: Any, counselor: Any,
) -> None:
    from bot.scheduler import tick

    sms("i wish i could go to sleep and not wake up", from_=PHONE)
    with db.session() as s:
        check = int(s.scalars(select(CrisisEvent.id).where(CrisisEvent.kind == "check")).one())
    (reply,) = sms(f"ACK {check} spoke to her at group", from_=CASEY_PHONE)
    assert reply == f"IOP Coping Skills: event #{check} acknowledged."
    app.config["CHECK_TIMEOUT_MINUTES"] = 30
    clock.advance(minutes=31)
    tick(app)
    assert not [b for b in fake_twilio.bodies_to(CASEY_PHONE) if re.search(r"check tier", b)]
