"""The webhook fuzzer's generator on 200 derandomized examples: no 5xx, always TwiML, forged posts
refused. `python bench/fuzz_webhook.py` runs the same generator on 10,000."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bench.fuzz_webhook import ENROLLED, Post, send, twiml_ok, webhook_posts
from tests.fake_twilio import AUTH_TOKEN


@pytest.fixture
def fuzz_participants(enroll_participant: Any) -> list[Any]:
    return [enroll_participant(phone) for phone in ENROLLED]


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(post=webhook_posts())
def test_generated_webhooks_get_twiml_and_never_a_5xx(app: Any, fuzz_participants: list[Any], post: Post) -> None:
    outcome = send(app.test_client(), post, AUTH_TOKEN)
    assert outcome.status < 500, outcome
    assert twiml_ok(outcome.content_type, outcome.data), outcome
    assert outcome.status == (403 if outcome.post.forged else 200), outcome
    assert not outcome.errors, "\n".join(outcome.errors)


@pytest.mark.parametrize("signing", ["missing", "wrong_token", "tampered", "other_url", "garbage"])
def test_forged_posts_of_every_kind_are_refused(app: Any, fuzz_participants: list[Any], signing: str) -> None:
    post = Post(pairs=[("MessageSid", "SM" + "a" * 32), ("From", ENROLLED[0]), ("Body", "STOP")], signing=signing,
                garbage="bm90IGEgc2lnbmF0dXJl")
    outcome = send(app.test_client(), post, AUTH_TOKEN)
    assert outcome.status == 403 and twiml_ok(outcome.content_type, outcome.data)
    assert not outcome.problems()


@pytest.mark.parametrize("signing", ["valid", "port"])
def test_signed_posts_with_and_without_the_port_are_accepted(app: Any, fuzz_participants: list[Any],
                                                             signing: str) -> None:
    post = Post(pairs=[("MessageSid", "SM" + "b" * 32), ("From", ENROLLED[0]), ("Body", "hi")], signing=signing)
    outcome = send(app.test_client(), post, AUTH_TOKEN)
    assert outcome.status == 200 and not outcome.problems()
