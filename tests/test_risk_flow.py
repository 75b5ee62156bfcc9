"""Risk tiers end to end, through signed webhooks: the direct question and its answers, silence,
recent context, recovery talk, lapses, and the warmer conversation around them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from bot.models import CrisisEvent, ExerciseSession, Participant
from tests.conftest import SmsPoster

PHONE = "+12025550101"
OTHER = "+12025550102"
COUNSELOR_PHONE = "+12025550100"
CHECK_TEXT = "i wish i could go to sleep and not wake up"


def events(db: Any) -> list[CrisisEvent]:
    with db.session() as s:
        return list(s.scalars(select(CrisisEvent).order_by(CrisisEvent.id)))


def conv_state(db: Any, phone: str = PHONE) -> str:
    with db.session() as s:
        return str(s.scalar(select(Participant.conv_state).where(Participant.phone == phone)))


def tick(runner: Any) -> dict[str, int]:
    result = runner.invoke(args=["nudges", "tick"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output.strip().splitlines()[-1]))


# --- the check tier: ask directly -----------------------------------------------------------------


def test_possible_risk_gets_the_direct_question_with_crisis_lines_and_no_alert_yet(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any
) -> None:
    replies = sms(CHECK_TEXT, from_=PHONE)
    assert len(replies) == 1
    assert "suicide" in replies[0] and "hurting yourself" in replies[0] and "988" in replies[0]
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []
    (event,) = events(db)
    assert event.kind == "check" and event.answer is None and event.participant_id == participant.id
    assert conv_state(db) == "check_pending"


@pytest.mark.parametrize("answer", [
    "yes", "Yeah.", "kinda", "idk maybe", "no but sometimes",
    # "im not ..." is not a denial by itself: unsure, not okay, or an opener before a yes.
    "im not sure", "im not ok", "im not gonna lie, kinda", "ngl yes",
])
def test_a_yes_like_answer_starts_the_crisis_flow_and_alerts_the_counselor(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any, answer: str
) -> None:
    sms(CHECK_TEXT, from_=PHONE)
    replies = sms(answer, from_=PHONE)
    joined = " ".join(replies)
    assert "988" in joined and "counselor" in joined.lower()
    alerts = fake_twilio.bodies_to(COUNSELOR_PHONE)
    assert len(alerts) == 1 and "URGENT" in alerts[0] and "wake up" not in alerts[0]
    check, crisis = events(db)
    assert (check.kind, check.answer) == ("check", "yes")
    assert crisis.kind == "crisis" and crisis.alerts_sent == 1
    with db.session() as s:
        assert s.scalar(select(Participant.crisis_hold)) is True


@pytest.mark.parametrize("answer", ["no", "Nope", "not really", "no im ok, just exhausted", "honestly no",
                                    "im not suicidal, just tired"])
def test_a_no_like_answer_offers_a_skill_records_the_answer_and_sends_no_alert(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any, answer: str
) -> None:
    sms(CHECK_TEXT, from_=PHONE)
    replies = sms(answer, from_=PHONE)
    assert "988" in replies[0] and "automated" in replies[0]  # the thanks keeps a way out
    assert "0-10" in replies[-1]  # a skill started: its intro asks for a rating
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []
    (event,) = events(db)
    assert event.answer == "no" and event.answered_at is not None
    with db.session() as s:
        assert s.scalar(select(ExerciseSession.status)) == "active"


def test_an_unclear_reply_is_asked_again_once_then_the_conversation_goes_on(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any
) -> None:
    sms(CHECK_TEXT, from_=PHONE)
    again = sms("why do you ask", from_=PHONE)
    assert len(again) == 1 and "suicide" in again[0] and "988" in again[0]
    assert conv_state(db) == "check_pending"
    assert "MENU" in sms("what time is group", from_=PHONE)[0]
    (event,) = events(db)
    assert event.answer is None  # still unanswered: the timeout alert will tell the counselor


def test_silence_after_the_question_alerts_the_counselor_once_after_the_timeout(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any, runner: Any, clock: Any
) -> None:
    sms(CHECK_TEXT, from_=PHONE)
    clock.advance(minutes=29)
    tick(runner)
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []
    clock.advance(minutes=2)
    tick(runner)
    (alert,) = fake_twilio.bodies_to(COUNSELOR_PHONE)
    assert "URGENT" not in alert and "not answered" in alert and "31 min" in alert
    assert "wake up" not in alert  # no message text in an alert
    clock.advance(minutes=30)
    tick(runner)
    assert len(fake_twilio.bodies_to(COUNSELOR_PHONE)) == 1  # once, not repeated like a crisis


def test_an_answered_question_sends_no_timeout_alert(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any, runner: Any, clock: Any
) -> None:
    sms(CHECK_TEXT, from_=PHONE)
    sms("no", from_=PHONE)
    clock.advance(hours=2)
    tick(runner)
    assert not any("not answered" in b for b in fake_twilio.bodies_to(COUNSELOR_PHONE))


def test_no_practice_text_while_the_question_is_open(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any, runner: Any, clock: Any
) -> None:
    with db.session() as s:
        nudge_time = s.scalar(select(Participant.nudge_time).where(Participant.phone == PHONE))
    assert nudge_time
    before = len(fake_twilio.bodies_to(PHONE))  # the consent invitation
    sms(CHECK_TEXT, from_=PHONE)
    for _ in range(24):  # a whole day of ticks, one an hour
        clock.advance(hours=1)
        tick(runner)
    assert len(fake_twilio.bodies_to(PHONE)) == before


def test_yes_counts_only_as_the_answer_to_the_question_just_asked(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any
) -> None:
    replies = sms("yes", from_=PHONE)
    assert not any("988" in r for r in replies)
    assert events(db) == []


# --- context ----------------------------------------------------------------------------------------


def test_a_vague_follow_up_within_the_context_window_is_a_crisis(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any, clock: Any
) -> None:
    sms(CHECK_TEXT, from_=PHONE)
    sms("no", from_=PHONE)
    clock.advance(hours=5)
    replies = sms("gonna do it tonight", from_=PHONE)
    assert any("988" in r for r in replies)
    assert any("URGENT" in b for b in fake_twilio.bodies_to(COUNSELOR_PHONE))
    assert events(db)[-1].kind == "crisis"


def test_the_same_vague_text_without_recent_risk_is_not_a_crisis(
    sms: SmsPoster, db: Any, participant: Any, enroll_participant: Any, fake_twilio: Any, clock: Any
) -> None:
    enroll_participant(OTHER)
    sms(CHECK_TEXT, from_=PHONE)  # someone else's recent risk does not count
    sms("gonna do it tonight", from_=OTHER)
    assert [e.kind for e in events(db) if e.phone == OTHER] in ([], ["check"])  # asked at most, not acted on
    assert not any("URGENT" in b for b in fake_twilio.bodies_to(COUNSELOR_PHONE))


def test_the_context_window_ends(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any, clock: Any
) -> None:
    sms(CHECK_TEXT, from_=PHONE)
    sms("no", from_=PHONE)
    clock.advance(hours=25)  # RISK_CONTEXT_HOURS is 24
    sms("gonna do it tonight", from_=PHONE)
    assert "crisis" not in [e.kind for e in events(db)]
    assert not any("URGENT" in b for b in fake_twilio.bodies_to(COUNSELOR_PHONE))


# --- recovery talk and lapses -----------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "two years ago i wanted to die, doing so much better now",
    "celebrating a year since my overdose today",
    "i used to cut but its been 8 months, proud of myself",
])
def test_recovery_talk_gets_no_crisis_reply(sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any,
                                             text: str) -> None:
    replies = sms(text, from_=PHONE)
    assert not any("988" in r or "suicide" in r for r in replies)
    assert events(db) == []
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []


def test_a_lapse_gets_a_lapse_skill_and_an_event_without_an_alert(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any
) -> None:
    replies = sms("i used again last night after 40 days", from_=PHONE)
    assert "0-10" in replies[-1]
    with db.session() as s:
        session = s.scalar(select(ExerciseSession))
    assert session.distress_state == "lapse"
    (event,) = events(db)
    assert event.kind == "lapse" and event.acknowledged_at is None
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []
    with db.session() as s:
        assert s.scalar(select(Participant.crisis_hold)) is False


def test_slip_reports_a_lapse_and_starts_a_lapse_skill(sms: SmsPoster, db: Any, participant: Any,
                                                        fake_twilio: Any) -> None:
    replies = sms("SLIP", from_=PHONE)
    assert "not a failure" in replies[0].lower() or "slip" in replies[0].lower()
    assert "0-10" in replies[-1]
    assert [e.kind for e in events(db)] == ["lapse"]
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []


# --- a warmer conversation ----------------------------------------------------------------------------


def test_a_validating_line_comes_first_and_is_never_the_same_twice_in_a_row(
    sms: SmsPoster, app: Any, participant: Any
) -> None:
    variants = app.extensions["library"].messages_list("validate_anxiety")
    seen = []
    for _ in range(3):
        replies = sms("so nervous about court tomorrow", from_=PHONE)
        assert "0-10" in replies[-1]
        seen.append(replies[0])
        sms("menu", from_=PHONE)  # leave the exercise
    assert all(line in variants for line in seen)
    assert seen[0] != seen[1] and seen[1] != seen[2]


@pytest.mark.parametrize("text", ["what is this", "Who is this?", "what can you do", "is this a bot"])
def test_questions_about_the_service_get_a_plain_explanation(sms: SmsPoster, participant: Any, text: str) -> None:
    (reply,) = sms(text, from_=PHONE)
    assert "automated" in reply and "MENU" in reply


def test_short_command_typos_are_understood(sms: SmsPoster, participant: Any) -> None:
    assert "Breathing" in sms("mnu", from_=PHONE)[0]
    help_replies = sms("hlep", from_=PHONE)
    assert any("Msg & data rates" in r for r in help_replies)


def test_a_number_sent_inside_a_step_is_taken(sms: SmsPoster, db: Any, participant: Any) -> None:
    sms("so nervous about court tomorrow", from_=PHONE)
    sms("7", from_=PHONE)  # the rating before
    (noted,) = sms("4", from_=PHONE)
    assert "4/10" in noted and "NEXT" in noted
    with db.session() as s:
        session = s.scalar(select(ExerciseSession))
    assert session.rating_before == 7 and session.rating_after == 4


def test_classify_reports_the_check_tier(runner: Any) -> None:
    result = runner.invoke(args=["classify", "--explain"], input=CHECK_TEXT + "\n")
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert row["risk"] == "check" and row["crisis"] is False
    assert any(r.startswith("rules:") for r in row["explain"]["risk_reasons"])


def test_an_unhappy_text_that_matches_no_state_gets_an_invitation_not_the_greeting(
    sms: SmsPoster, app: Any, db: Any, participant: Any
) -> None:
    (reply,) = sms("ugh today", from_=PHONE)
    assert reply in app.extensions["library"].messages_list("none_invite")
    (again,) = sms("ugh this week honestly", from_=PHONE)
    assert again in app.extensions["library"].messages_list("none_invite") and again != reply
    with db.session() as s:
        assert s.scalar(select(ExerciseSession)) is None
    (greeting,) = sms("hi there", from_=PHONE)
    assert greeting not in app.extensions["library"].messages_list("none_invite")


# --- answers sent while the database is down ----------------------------------------------------------


def test_yes_to_the_direct_question_during_an_outage_gets_the_lines_and_alerts_once_the_database_is_back(
    app: Any, sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any,
) -> None:
    from bot.scheduler import tick as scheduler_tick
    from tests.test_faults import outage

    sms(CHECK_TEXT, from_=PHONE)
    with outage(app):
        result = sms.post(sms.form("yes", PHONE))
    # Which question was pending is in the database, so a yes-like reply gets the lines at once.
    assert result.status == 200 and any("988" in r for r in result.replies)
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []
    scheduler_tick(app)
    alerts = [b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]
    assert len(alerts) == 1
    check, crisis = events(db)
    assert (check.kind, check.answer) == ("check", "yes") and crisis.kind == "crisis"
    assert conv_state(db) == "crisis_followup"


def test_no_to_are_you_safe_during_an_outage_alerts_urgently_once_the_database_is_back(
    app: Any, sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any,
) -> None:
    from bot.scheduler import tick as scheduler_tick
    from tests.test_faults import outage

    sms("i want to kill myself tonight", from_=PHONE)
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]) == 1
    with outage(app):
        result = sms.post(sms.form("no", PHONE))
    assert result.status == 200 and any("988" in r for r in result.replies)
    scheduler_tick(app)
    alerts = [b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]
    assert len(alerts) == 2 and "when asked after a crisis text" in alerts[1]
    (event,) = events(db)
    assert event.answer == "unsafe"


def test_no_to_the_direct_question_during_an_outage_closes_it_without_an_alert(
    app: Any, sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any,
) -> None:
    from bot.scheduler import tick as scheduler_tick
    from tests.test_faults import outage

    sms(CHECK_TEXT, from_=PHONE)
    with outage(app):
        assert sms.post(sms.form("nope", PHONE)).status == 200
    scheduler_tick(app)
    assert fake_twilio.bodies_to(COUNSELOR_PHONE) == []
    (event,) = events(db)
    assert event.answer == "no" and conv_state(db) != "check_pending"  # (the same tick may send a nudge)
