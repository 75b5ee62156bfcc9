"""The senders: the real twilio Client against the local fake Twilio, and the console sender."""

from __future__ import annotations

import io

import pytest

from bot.sms import ConsoleSender, TwilioSender, mask_phone
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

TO = "+12025550101"


def sender(fake: FakeTwilio, timeout: float = 5.0, **kwargs: str) -> TwilioSender:
    options = {"from_number": "+15005550006", **kwargs}
    return TwilioSender(ACCOUNT_SID, AUTH_TOKEN, base_url=fake.base_url, timeout=timeout, **options)


def test_success_returns_the_sid(fake_twilio: FakeTwilio) -> None:
    result = sender(fake_twilio).send(TO, "hello", status_callback="https://bot.example.org/sms/status")
    assert result.ok and result.sid and result.sid.startswith("SM") and result.status == "queued"
    accepted = fake_twilio.messages[0]
    assert (accepted.to, accepted.body, accepted.sender) == (TO, "hello", "+15005550006")
    assert accepted.status_callback == "https://bot.example.org/sms/status"


def test_messaging_service_is_used_when_configured(fake_twilio: FakeTwilio) -> None:
    service = "MG" + "1" * 32
    assert sender(fake_twilio, from_number="", messaging_service_sid=service).send(TO, "hi").ok
    assert fake_twilio.messages[0].sender == service


@pytest.mark.parametrize("status,code,retryable,opted_out,invalid", [
    (400, 21610, False, True, False),
    (400, 21211, False, False, True),
    (400, 21614, False, False, True),
    (400, 21608, False, False, False),
    (429, 20429, True, False, False),
    (500, 500, True, False, False),
    (503, 503, True, False, False),
])
def test_errors_are_mapped(fake_twilio: FakeTwilio, status: int, code: int, retryable: bool, opted_out: bool,
                           invalid: bool) -> None:
    fake_twilio.errors_for[TO] = (status, code)
    result = sender(fake_twilio).send(TO, "hi")
    assert not result.ok
    assert (result.error_code, result.retryable, result.opted_out, result.invalid_number) == (
        code, retryable, opted_out, invalid)


def test_a_timeout_is_retryable_not_an_exception(fake_twilio: FakeTwilio) -> None:
    fake_twilio.latency = 1.0
    result = sender(fake_twilio, timeout=0.2).send(TO, "hi")
    assert not result.ok and result.retryable


def test_an_unreachable_provider_is_retryable() -> None:
    unreachable = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006", base_url="http://127.0.0.1:9",
                               timeout=1)
    result = unreachable.send(TO, "hi")
    assert not result.ok and result.retryable


def test_wrong_credentials_are_a_permanent_failure(fake_twilio: FakeTwilio) -> None:
    bad = TwilioSender(ACCOUNT_SID, "wrong-token", from_number="+15005550006", base_url=fake_twilio.base_url)
    result = bad.send(TO, "hi")
    assert not result.ok and not result.retryable and result.error_code == 20003


def test_console_sender_prints_and_keeps_messages() -> None:
    stream = io.StringIO()
    console = ConsoleSender(stream=stream)
    first, second = console.send(TO, "one"), console.send(TO, "two")
    assert first.ok and first.sid != second.sid
    assert console.sent == [(TO, "one"), (TO, "two")]
    assert "one" in stream.getvalue()


def test_mask_phone_keeps_only_the_last_four_digits() -> None:
    assert mask_phone("+12025550101") == "***0101"
    assert mask_phone(None) == "-"
