"""The Twilio webhook driven as Twilio drives it: signed form posts, TwiML answers."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.models import Message, Outbox, Participant
from tests.conftest import SmsPoster, new_sid, parse_twiml
from tests.fake_twilio import AUTH_TOKEN

PHONE = "+12025550101"


def count_messages(db: Any, **where: Any) -> int:
    with db.session() as s:
        stmt = select(func.count(Message.id))
        for key, value in where.items():
            stmt = stmt.where(getattr(Message, key) == value)
        return s.scalar(stmt)


def test_signed_text_gets_twiml_reply(sms: SmsPoster, participant: Any) -> None:
    replies = sms("hi", from_=PHONE)
    assert replies and "MENU" in replies[0]


def test_official_twilio_test_vector_validates() -> None:
    # The example from Twilio's security docs: our validator must be the official one.
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert RequestValidator("12345").validate(url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


@pytest.mark.parametrize("signature", ["", "bogus", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="])
def test_missing_or_wrong_signature_is_403_with_empty_twiml(sms: SmsPoster, db: Any, participant: Any,
                                                            signature: str) -> None:
    result = sms.post(sms.form("hi", PHONE), signature=signature)
    assert result.status == 403
    assert result.content_type.startswith("text/xml")
    assert parse_twiml(result.raw) == []
    assert count_messages(db, direction="in") == 0


def test_tampered_body_is_rejected(sms: SmsPoster, db: Any, participant: Any) -> None:
    params = sms.form("hi", PHONE)
    signature = sms.validator.compute_signature(sms.url, params)
    params["Body"] = "STOP"
    assert sms.post(params, signature=signature).status == 403
    with db.session() as s:
        assert s.scalar(select(Participant.status)) == "active"


def test_unknown_extra_fields_are_part_of_the_signature(sms: SmsPoster, participant: Any) -> None:
    params = sms.form("hi", PHONE, NewTwilioField="surprise", MediaUrl0="")
    assert sms.post(params).status == 200


def test_webhook_refuses_everything_without_an_auth_token(app: Any, participant: Any) -> None:
    app.config["TWILIO_AUTH_TOKEN"] = None
    poster = SmsPoster(app.test_client())
    result = poster.post(poster.form("hi", PHONE))
    assert result.status == 403


def test_public_base_url_is_used_behind_a_proxy(app: Any, participant: Any) -> None:
    app.config["PUBLIC_BASE_URL"] = "https://bot.example.org/"
    poster = SmsPoster(app.test_client(), url="https://bot.example.org/sms")
    assert poster.post(poster.form("hi", PHONE)).status == 200
    # The URL the app sees (http://localhost) is not what Twilio signed.
    local = SmsPoster(app.test_client(), url="http://localhost/sms")
    assert local.post(local.form("hi", PHONE)).status == 403


def test_query_string_with_percent_escapes_is_signed_as_sent(app: Any, participant: Any) -> None:
    poster = SmsPoster(app.test_client(), url="http://localhost/sms?site=a%20b&x=%2B1")
    result = poster.post(poster.form("hi", PHONE), path="/sms?site=a%20b&x=%2B1")
    assert result.status == 200


def test_duplicate_delivery_changes_nothing(sms: SmsPoster, db: Any, participant: Any) -> None:
    sid = new_sid()
    first = sms("i feel so anxious about court", from_=PHONE, sid=sid)
    assert first
    before = count_messages(db)
    assert sms("i feel so anxious about court", from_=PHONE, sid=sid) == []
    assert count_messages(db) == before


def test_concurrent_duplicate_deliveries_are_handled_once(app: Any, db: Any, participant: Any) -> None:
    sid = new_sid()
    results: list[list[str]] = []

    def post() -> None:
        poster = SmsPoster(app.test_client())
        params = poster.form("so stressed everything is piling up", PHONE, sid)
        results.append(poster.post(params).replies)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) > 0 for r in results) == [False, False, False, True]
    assert count_messages(db, direction="in") == 1


def test_concurrent_texts_from_one_participant_do_not_race(app: Any, db: Any, participant: Any) -> None:
    """Eight different texts at once: every one is stored and answered, state stays consistent."""
    texts = ["so anxious", "7", "NEXT", "NEXT", "hi", "MENU", "1", "so mad"]
    statuses: list[int] = []

    def post(text: str) -> None:
        poster = SmsPoster(app.test_client())
        statuses.append(poster.post(poster.form(text, PHONE)).status)

    threads = [threading.Thread(target=post, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * len(texts)
    assert count_messages(db, direction="in") == len(texts)
    from bot.models import ExerciseSession

    with db.session() as s:
        active = s.scalar(select(func.count(ExerciseSession.id)).where(ExerciseSession.status == "active"))
    assert active <= 1


def test_unknown_number_gets_one_neutral_reply(sms: SmsPoster, participant: Any, app: Any) -> None:
    replies = sms("hello is this the anxiety program", from_="+12025550199")
    assert len(replies) == 1
    lowered = replies[0].lower()
    for word in ("iop", "coping", "counselor", "anxiety", "program", "skill"):
        assert word not in lowered
    assert sms("hello??", from_="+12025550199") == []  # one reply a day: no auto-responder ping-pong
    app.extensions["clock"].advance(hours=25)
    assert len(sms("hello again", from_="+12025550199")) == 1


def test_unknown_number_in_crisis_gets_resources(sms: SmsPoster, db: Any, participant: Any) -> None:
    replies = sms("i want to kill myself", from_="+12025550199")
    assert any("988" in r for r in replies)
    from bot.models import CrisisEvent

    with db.session() as s:
        event = s.scalar(select(CrisisEvent))
        assert event is not None and event.participant_id is None


@pytest.mark.parametrize("body", ["", " ", "\x00\x01", "🙂🙂🙂", "x" * 1600, "é" * 1600, "<Response>&amp;</x>",
                                  "]]><script>", "💊" * 800])
def test_odd_bodies_get_valid_twiml(sms: SmsPoster, participant: Any, body: str) -> None:
    result = sms.post(sms.form(body, PHONE))
    assert result.status == 200
    parse_twiml(result.raw)


def test_pill_emoji_flood_is_a_crisis(sms: SmsPoster, participant: Any) -> None:
    replies = sms("💊💊💊💊", from_=PHONE)
    assert any("988" in r for r in replies)


def test_body_over_1600_characters_is_stored_truncated(sms: SmsPoster, db: Any, participant: Any) -> None:
    sms("a" * 5000, from_=PHONE)
    with db.session() as s:
        body = s.scalar(select(Message.body).where(Message.direction == "in"))
    assert len(body) == 1600


def test_missing_fields_get_empty_twiml(sms: SmsPoster, participant: Any) -> None:
    params = {"Body": "hi"}
    result = sms.post(params)
    assert result.status == 200 and result.replies == []


def test_get_on_sms_is_twiml_not_html(client: Any) -> None:
    response = client.get("/sms")
    assert response.status_code == 405
    assert response.content_type.startswith("text/xml")


def test_status_callbacks_are_monotonic(sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any) -> None:
    with db.session() as s:
        sid = s.scalar(select(Message.twilio_sid).where(Message.kind == "invitation"))
    assert sid is not None

    def callback(status: str) -> int:
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC", "SmsSid": sid, "SmsStatus": status}
        return sms.post(params, url="http://localhost/sms/status", path="/sms/status").status

    assert callback("delivered") == 200
    assert callback("sent") == 200  # arrives late: must not move the message back
    with db.session() as s:
        assert s.scalar(select(Message.status).where(Message.twilio_sid == sid)) == "delivered"


def test_status_callback_must_be_signed(sms: SmsPoster) -> None:
    result = sms.post({"MessageSid": "SMx", "MessageStatus": "delivered"}, signature="nope", path="/sms/status")
    assert result.status == 403


def test_invitation_goes_through_real_twilio_client(participant: Any, fake_twilio: Any, db: Any) -> None:
    bodies = fake_twilio.bodies_to(PHONE)
    assert len(bodies) == 1 and "YES" in bodies[0]
    with db.session() as s:
        assert s.scalar(select(Outbox.status)) == "sent"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(max_size=1600), extra=st.dictionaries(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12),
    st.text(max_size=40), max_size=3))
def test_no_input_gives_a_500_or_invalid_twiml(app: Any, participant: Any, body: str, extra: dict[str, str]) -> None:
    poster = SmsPoster(app.test_client(), token=AUTH_TOKEN)
    params = {**extra, **poster.form(body, PHONE)}
    result = poster.post(params)
    assert result.status == 200
    assert result.content_type.startswith("text/xml")
    parse_twiml(result.raw)
