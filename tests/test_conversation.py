"""Conversations end to end through the signed webhook: crisis, compliance, commands, exercises."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.conversation import compliance_word, parse_rating, parse_time
from bot.models import CrisisEvent, ExerciseSession, MoodCheckin, Outbox, Participant, SafetyPlan
from bot.vocabulary import OPT_IN_WORDS
from bot.vocabulary import OPT_OUT_WORDS as CARRIER_WORDS
from tests.conftest import SmsPoster

PHONE = "+12025550101"
COUNSELOR_PHONE = "+12025550100"


def participant_row(db: Any) -> Participant:
    with db.session() as s:
        return s.scalar(select(Participant).where(Participant.phone == PHONE))


# --- crisis ---------------------------------------------------------------------------------------


def test_crisis_text_gets_resources_alerts_counselor_and_pauses_nudges(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any
) -> None:
    replies = sms("i want to kill myself tonight", from_=PHONE)
    joined = " ".join(replies)
    assert "988" in joined and "741741" in joined
    assert "counselor" in joined.lower()
    alerts = fake_twilio.bodies_to(COUNSELOR_PHONE)
    assert len(alerts) == 1 and "URGENT" in alerts[0]
    assert "kill myself" not in alerts[0]  # the alert carries no message body
    p = participant_row(db)
    assert p.crisis_hold is True
    with db.session() as s:
        event = s.scalar(select(CrisisEvent))
        assert event.participant_id == p.id and event.alerts_sent == 1


def test_crisis_interrupts_a_running_exercise(sms: SmsPoster, db: Any, participant: Any) -> None:
    sms("im so anxious about court tomorrow", from_=PHONE)
    sms("8", from_=PHONE)
    sms("i want to kill myself", from_=PHONE)
    with db.session() as s:
        statuses = list(s.scalars(select(ExerciseSession.status)))
    assert statuses == ["interrupted"]
    assert participant_row(db).conv_state == "crisis_followup"


@pytest.mark.parametrize("answer", ["no", "not really", "idk", "yes but i still have them", "nah", "ok", "okay"])
def test_an_unsafe_or_unclear_answer_to_are_you_safe_gets_the_lines_again_and_an_urgent_alert(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any, answer: str,
) -> None:
    sms("i want to kill myself tonight", from_=PHONE)
    replies = sms(answer, from_=PHONE)
    joined = " ".join(replies)
    assert "988" in joined and "911" in joined  # the crisis and emergency lines again
    assert "MENU" not in joined and "menu" not in joined.lower()  # never a menu for someone who may be unsafe
    assert "automated" in joined
    alerts = [b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]
    assert len(alerts) == 2 and "when asked after a crisis text" in alerts[1]
    assert f" {answer} " not in alerts[1] or len(answer) < 3  # what was answered in words of ours, not their text
    with db.session() as s:
        assert s.scalar(select(CrisisEvent.answer)) in ("unsafe", "unclear")
    assert participant_row(db).conv_state == "crisis_followup"  # the next reply is read as an answer too


def test_a_safe_answer_is_thanked_and_may_be_offered_a_skill(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any,
) -> None:
    sms("i want to kill myself tonight", from_=PHONE)
    replies = sms("yeah im safe now", from_=PHONE)
    assert len(replies) == 1 and "automated" in replies[0] and "988" in replies[0]
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]) == 1
    with db.session() as s:
        assert s.scalar(select(CrisisEvent.answer)) == "safe"
    assert participant_row(db).conv_state == "idle"


def test_after_three_unsafe_answers_the_conversation_goes_on_but_never_offers_a_menu_first(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any,
) -> None:
    sms("i want to kill myself tonight", from_=PHONE)
    for _ in range(3):
        assert "MENU" not in " ".join(sms("no", from_=PHONE))
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]) == 4
    assert participant_row(db).conv_state == "idle"
    # Until a counselor acknowledges the event, a text that names nothing gets the lines, not a menu.
    for text in ("hi", "whatever", "NEXT"):
        (reply,) = sms(text, from_=PHONE)
        assert "MENU" not in reply and "988" in reply and "automated" in reply and "PLAN" in reply, text
    # Asking for the menu is still answered.
    assert "Pick a kind of skill" in sms("MENU", from_=PHONE)[0]


def test_overdose_leads_with_emergency_number(sms: SmsPoster, participant: Any) -> None:
    replies = sms("i took 30 pills", from_=PHONE)
    assert "911" in replies[0]


def test_crisis_runs_before_compliance_and_commands(sms: SmsPoster, db: Any, participant: Any,
                                                    fake_twilio: Any) -> None:
    sms("MENU", from_=PHONE)
    replies = sms("1 i want to die", from_=PHONE)
    assert any("988" in r for r in replies)


def test_crisis_from_opted_out_participant_alerts_counselor_but_sends_nothing(
    sms: SmsPoster, participant: Any, fake_twilio: Any
) -> None:
    sms("STOP", from_=PHONE)
    replies = sms("i want to end it all", from_=PHONE)
    assert replies == []
    assert any("URGENT" in b for b in fake_twilio.bodies_to(COUNSELOR_PHONE))


def test_idioms_and_panic_are_not_crisis(sms: SmsPoster, db: Any, participant: Any) -> None:
    for text in ["this homework is killing me", "walked 5 kms today", "i feel like im dying my heart is racing"]:
        replies = sms(text, from_=PHONE)
        assert not any("988" in r for r in replies), text
    with db.session() as s:
        assert s.scalar(select(CrisisEvent)) is None


def test_followup_after_crisis_then_back_to_normal(sms: SmsPoster, participant: Any) -> None:
    sms("i want to die", from_=PHONE)
    follow = sms("ok im safe", from_=PHONE)
    assert "counselor" in follow[0].lower()
    assert "MENU" in sms("hi", from_=PHONE)[0]


# --- compliance -----------------------------------------------------------------------------------


@pytest.mark.parametrize("word", [*CARRIER_WORDS, "stop", "Stop.", " quit ", "oPtOuT"])
def test_every_opt_out_word_opts_out_with_one_confirmation(sms: SmsPoster, db: Any, participant: Any,
                                                           word: str) -> None:
    replies = sms(word, from_=PHONE)
    assert len(replies) == 1 and "opted out" in replies[0].lower()
    assert participant_row(db).status == "opted_out"
    assert sms(word, from_=PHONE) == []  # only one confirmation
    assert sms("hi", from_=PHONE) == []  # nothing but the confirmation afterwards
    assert sms("HELP", from_=PHONE) == []


def test_opt_out_type_field_is_authoritative(sms: SmsPoster, db: Any, participant: Any) -> None:
    sms("arrêt", from_=PHONE, OptOutType="STOP")
    assert participant_row(db).status == "opted_out"


@pytest.mark.parametrize("text", ["stop texting me", "Please stop messaging me", "unsubscribe me",
                                  "opt me out", "remove me from this list", "dont text me anymore",
                                  "stop please", "please stop", "Stop now!", "cancel please"])
def test_plain_language_revocations_opt_out(text: str) -> None:
    assert compliance_word(text) == "opt_out"


@pytest.mark.parametrize("text", ["i want to stop drinking", "stop thinking about it", "i cant stop crying",
                                  "end of the day", "quit my job today", "I want to quit smoking", "end it",
                                  "stop stop stop im freaking out", "please stop the exercise"])
def test_ordinary_sentences_with_carrier_words_are_not_opt_outs(text: str) -> None:
    assert compliance_word(text) is None


@pytest.mark.parametrize("word", [*OPT_IN_WORDS, "yes", "Unstop"])
def test_opt_in_words_activate_and_confirm(sms: SmsPoster, db: Any, enroll_participant: Any, word: str) -> None:
    enroll_participant(active=False)
    replies = sms(word, from_=PHONE)
    assert "Welcome" in replies[0]
    p = participant_row(db)
    assert p.status == "active" and p.consent_at is not None and p.consent_method


def test_invited_participant_gets_consent_reminder_only(sms: SmsPoster, enroll_participant: Any) -> None:
    enroll_participant(active=False)
    replies = sms("im so anxious", from_=PHONE)
    assert len(replies) == 1 and "YES" in replies[0]


def test_opted_out_participant_can_rejoin_with_start(sms: SmsPoster, db: Any, participant: Any) -> None:
    sms("STOP", from_=PHONE)
    assert "Welcome" in sms("START", from_=PHONE)[0]
    assert participant_row(db).status == "active"


@pytest.mark.parametrize("word", ["HELP", "info", "Help!"])
def test_help_has_program_counselor_opt_out_crisis_and_rates(sms: SmsPoster, participant: Any, word: str) -> None:
    joined = " ".join(sms(word, from_=PHONE))
    for needle in ("IOP Coping Skills", "Casey Counselor", "+12025550100", "STOP", "988", "Msg & data rates may apply"):
        assert needle in joined


def test_opt_out_cancels_pending_messages_and_tells_counselor(sms: SmsPoster, db: Any, participant: Any,
                                                              fake_twilio: Any) -> None:
    from bot import outbox

    p = participant_row(db)
    db.run(lambda s: outbox.enqueue(s, to=PHONE, body="later", kind="nudge", now=p.created_at,
                                   participant_id=p.id))
    sms("STOP", from_=PHONE)
    with db.session() as s:
        assert s.scalar(select(Outbox.status).where(Outbox.body == "later")) == "cancelled"
    assert any("opted out" in b for b in fake_twilio.bodies_to(COUNSELOR_PHONE))


# --- exercises ------------------------------------------------------------------------------------


def test_full_exercise_with_ratings_and_encouragement(sms: SmsPoster, db: Any, participant: Any) -> None:
    intro = sms("so nervous about court tomorrow", from_=PHONE)
    assert "0-10" in intro[-1]
    step1 = sms("8", from_=PHONE)
    assert "(1/" in step1[0]
    steps = 1
    reply = step1
    while "0-10" not in reply[0]:
        reply = sms("next", from_=PHONE)
        steps += 1
        assert steps < 20
    done = sms("3", from_=PHONE)
    assert "8" in done[0] and "3" in done[0]
    with db.session() as s:
        session = s.scalar(select(ExerciseSession))
    assert (session.rating_before, session.rating_after, session.status) == (8, 3, "completed")
    assert session.distress_state == "anxiety"


def test_rating_can_be_skipped_and_done_ends_early(sms: SmsPoster, db: Any, participant: Any) -> None:
    sms("cant stop replaying what i said over and over", from_=PHONE)
    assert "(1/" in sms("skip", from_=PHONE)[0]
    assert "0-10" in sms("DONE", from_=PHONE)[0]
    assert "practicing" in sms("skip", from_=PHONE)[0]
    with db.session() as s:
        session = s.scalar(select(ExerciseSession))
    assert session.rating_before is None and session.status == "completed"


def test_commands_tolerate_case_spaces_and_typos(sms: SmsPoster, participant: Any) -> None:
    sms("really want a drink tonight", from_=PHONE)
    sms("5", from_=PHONE)
    assert "(2/" in sms("  Nxet!! ", from_=PHONE)[0]
    assert "(3/" in sms("NEXT.", from_=PHONE)[0]


def test_more_gives_another_skill_for_the_same_feeling(sms: SmsPoster, db: Any, participant: Any) -> None:
    sms("so angry i could punch a wall", from_=PHONE)
    sms("more", from_=PHONE)
    with db.session() as s:
        rows = list(s.scalars(select(ExerciseSession).order_by(ExerciseSession.id)))
    assert len(rows) == 2 and rows[0].skill_id != rows[1].skill_id
    assert rows[0].status == "abandoned" and rows[1].distress_state == "anger"


def test_menu_lists_categories_and_a_number_starts_a_skill(sms: SmsPoster, db: Any, participant: Any) -> None:
    menu = sms("MENU", from_=PHONE)[0]
    assert "1 Breathing" in menu
    intro = sms("1", from_=PHONE)
    assert "0-10" in intro[-1]


def test_none_state_gets_a_short_menu_not_an_exercise(sms: SmsPoster, db: Any, participant: Any) -> None:
    replies = sms("what time is group tonight", from_=PHONE)
    assert "MENU" in replies[0]
    with db.session() as s:
        assert s.scalar(select(ExerciseSession)) is None


def test_pause_and_resume(sms: SmsPoster, db: Any, participant: Any) -> None:
    assert "paused" in sms("PAUSE", from_=PHONE)[0]
    assert participant_row(db).nudges_paused
    assert "until" in sms("pause 3 days", from_=PHONE)[0]
    assert participant_row(db).paused_until is not None
    sms("RESUME", from_=PHONE)
    p = participant_row(db)
    assert not p.nudges_paused and p.paused_until is None


def test_time_moves_the_nudge_within_the_allowed_window(sms: SmsPoster, db: Any, participant: Any) -> None:
    assert "7pm" in sms("TIME 7pm", from_=PHONE)[0]
    assert participant_row(db).nudge_time == "19:00"
    assert "between" in sms("time 23:30", from_=PHONE)[0]
    assert participant_row(db).nudge_time == "19:00"


def test_plan_sends_the_safety_plan(sms: SmsPoster, runner: Any, participant: Any) -> None:
    assert "don't have a safety plan" in sms("PLAN", from_=PHONE)[0]
    result = runner.invoke(args=["plan", "set", PHONE, "--by", "casey@clinic.example",
                                 "--contacts", "Sam 555-0142", "--warning-signs", "not sleeping"])
    assert result.exit_code == 0, result.output
    joined = " ".join(sms("plan", from_=PHONE))
    assert "Sam 555-0142" in joined and "not sleeping" in joined


def test_gated_skills_are_not_offered_to_flagged_participants(sms: SmsPoster, db: Any,
                                                              enroll_participant: Any, app: Any) -> None:
    enroll_participant(flags=("heart_condition", "lung_condition", "pregnancy"))
    library = app.extensions["library"]
    for _ in range(6):
        sms("panic attack heart racing cant breathe", from_=PHONE)
        sms("more", from_=PHONE)
    with db.session() as s:
        offered = set(s.scalars(select(ExerciseSession.skill_id)))
    assert offered
    for skill_id in offered:
        assert not {"heart_condition", "lung_condition", "pregnancy"} & set(library.skill(skill_id).avoid_if)


def test_no_reply_ever_tells_anyone_to_send_a_carrier_word_except_opt_out_help(
    sms: SmsPoster, participant: Any
) -> None:
    texts = ["hi", "so anxious", "5", "next", "next", "done", "4", "MENU", "2", "skip", "more", "PLAN", "PAUSE",
             "RESUME", "TIME 8pm", "what", "so angry", "3am and still awake"]
    for text in texts:
        for reply in sms(text, from_=PHONE):
            upper = reply.upper()
            for word in CARRIER_WORDS:
                assert f"REPLY {word}" not in upper and f"TEXT {word}" not in upper, (text, reply)


# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [("7", 7), ("10", 10), ("0", 0), ("7/10", 7), ("im a 6", 6),
                                           ("about 4 out of 10", 4), ("11", None), ("seven", None),
                                           ("i have 2 kids", None)])
def test_parse_rating(text: str, expected: int | None) -> None:
    assert parse_rating(text) == expected


@pytest.mark.parametrize("text,expected", [("7pm", "19:00"), ("7:30 pm", "19:30"), ("19:30", "19:30"),
                                           ("12am", "00:00"), ("12pm", "12:00"), ("25:00", None), ("noonish", None)])
def test_parse_time(text: str, expected: str | None) -> None:
    assert parse_time(text) == expected


def test_questions_about_treatment_get_an_information_card_without_ratings(sms: SmsPoster, db: Any,
                                                                          participant: Any) -> None:
    first = sms("what is tms?", from_=PHONE)
    assert "(1/" in first[0] and "magnetic" in first[0].lower()
    reply = first
    for _ in range(10):
        if "(1/" not in reply[0] and "text NEXT" not in reply[0]:
            break
        reply = sms("next", from_=PHONE)
    reply = sms("done", from_=PHONE) if "DONE" in reply[0] else reply
    assert "care team" in " ".join(reply)
    with db.session() as s:
        row = s.scalar(select(ExerciseSession))
    assert row.skill_id == "about-tms" and row.status == "completed" and row.rating_before is None


# --- what the counselor is told, and gentle checks ------------------------------------------------------


def test_the_crisis_alert_names_the_tier_and_what_was_sent_but_no_diagnosis_word(
    sms: SmsPoster, participant: Any, fake_twilio: Any,
) -> None:
    sms("i took 30 pills and i want to die", from_=PHONE)
    (alert,) = fake_twilio.bodies_to(COUNSELOR_PHONE)
    assert "crisis tier" in alert and "emergency number" in alert and "asked if they are safe" in alert
    for word in ("suicid", "overdose", "self-harm", "self harm", "pills", "die"):
        assert word not in alert.lower(), word


def test_yes_to_the_direct_question_is_named_as_such_in_the_alert(
    sms: SmsPoster, participant: Any, fake_twilio: Any,
) -> None:
    replies = sms("i dont see the point in anything anymore", from_=PHONE)
    assert any("?" in r for r in replies)  # the direct question
    sms("kinda", from_=PHONE)
    alerts = [b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]
    assert len(alerts) == 1 and "answered yes when the bot asked directly" in alerts[0]


def test_the_crisis_reply_points_to_the_safety_plan_when_there_is_one(
    sms: SmsPoster, participant: Any, db: Any, clock: Any,
) -> None:
    assert not any("PLAN" in r for r in sms("i want to kill myself", from_=PHONE))
    db.run(lambda s: s.add(SafetyPlan(participant_id=participant.id, warning_signs="x", updated_at=clock())))
    assert any("text PLAN" in r for r in sms("i want to kill myself", from_="+12025550101"))


def test_a_very_low_weekly_checkin_gets_a_gentle_safety_question_not_thanks(
    app: Any, sms: SmsPoster, participant: Any, db: Any, clock: Any, fake_twilio: Any,
) -> None:
    from bot.scheduler import tick

    clock.set(datetime(2026, 11, 29, 15, 0, tzinfo=UTC))  # a Sunday, 10:00 in New York: the check-in
    tick(app)
    assert participant_row(db).conv_state == "checkin"
    (reply,) = sms("1", from_=PHONE)
    assert "Thanks for checking in" not in reply and "hurting yourself" in reply and "988" in reply
    assert participant_row(db).conv_state == "check_pending"
    replies = sms("no", from_=PHONE)
    assert replies and all("URGENT" not in b for b in fake_twilio.bodies_to(COUNSELOR_PHONE))
    with db.session() as s:
        event = s.scalars(select(CrisisEvent)).one()
        assert (event.kind, event.answer, event.categories) == ("check", "no", "low_checkin")
        assert s.scalar(select(MoodCheckin.rating)) == 1


def test_an_ordinary_weekly_checkin_is_thanked(app: Any, sms: SmsPoster, participant: Any, db: Any,
                                               clock: Any) -> None:
    from bot.scheduler import tick

    clock.set(datetime(2026, 11, 29, 15, 0, tzinfo=UTC))
    tick(app)
    (reply,) = sms("7", from_=PHONE)
    assert "7/10" in reply and participant_row(db).conv_state == "idle"


def test_help_and_the_consent_invitation_say_the_service_is_automated(
    sms: SmsPoster, participant: Any, fake_twilio: Any, enroll_participant: Any,
) -> None:
    joined = " ".join(sms("HELP", from_=PHONE))
    assert "automated" in joined and "24/7" in joined and "988" in joined
    enroll_participant("+12025550144", active=False)
    (invitation,) = fake_twilio.bodies_to("+12025550144")
    assert "automated" in invitation and "24/7" in invitation


def test_no_counselor_alert_carries_a_diagnosis_word(app: Any, sms: SmsPoster, participant: Any,
                                                     fake_twilio: Any, clock: Any) -> None:
    from bot.scheduler import tick

    sms("i dont see the point in anything anymore", from_=PHONE)  # the direct question, left unanswered
    clock.advance(minutes=31)
    tick(app)
    sms("i want to kill myself", from_=PHONE)
    clock.advance(minutes=16)
    tick(app)  # and a repeat alert
    alerts = fake_twilio.bodies_to(COUNSELOR_PHONE)
    assert len(alerts) == 3
    for alert in alerts:
        assert not any(word in alert.lower() for word in ("suicid", "self-harm", "overdose", " kill")), alert


def test_only_the_first_unclear_answer_alerts_again_but_every_unsafe_one_does(
    sms: SmsPoster, participant: Any, fake_twilio: Any,
) -> None:
    sms("i want to kill myself tonight", from_=PHONE)
    sms("hi", from_=PHONE)
    sms("whatever", from_=PHONE)
    urgent = [b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]
    assert len(urgent) == 2  # the crisis, then the first unclear answer
    assert "988" in " ".join(sms("no", from_=PHONE))
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]) == 3


# --- skill texts follow the participant's country, and the medical screen its reason ------------------

UK_PHONE = "+447400123456"
SKILLS_WITH_NUMBERS = ("self-harm-urges", "overdose-safety", "after-a-slip", "about-moud")


def latest_exercise(db: Any, phone: str) -> ExerciseSession | None:
    with db.session() as s:
        return s.scalar(select(ExerciseSession).join(Participant, Participant.id == ExerciseSession.participant_id)
                        .where(Participant.phone == phone).order_by(ExerciseSession.id.desc()).limit(1))


def run_from_a_nudge(sms: SmsPoster, db: Any, phone: str, skill_id: str) -> list[str]:
    """Every reply while `skill_id` runs to its last step, started as a practice nudge starts it (OK)."""
    def nudged(s: Any) -> None:
        row = s.scalar(select(Participant).where(Participant.phone == phone))
        row.conv_state, row.conv_data = "nudge", {"skill_id": skill_id}

    db.run(nudged)
    replies = sms("ok", from_=phone)
    if "(1/" not in replies[-1]:
        replies += sms("skip", from_=phone)  # the rating before
    for _ in range(12):
        if "text NEXT" not in replies[-1]:
            break
        replies += sms("next", from_=phone)
    assert "Text DONE" in replies[-1], replies
    running = latest_exercise(db, phone)
    assert running is not None and running.skill_id == skill_id
    return replies


@pytest.mark.parametrize(("phone", "own", "foreign"), [
    (UK_PHONE, ("116 123", "999", "0300 123 6600"), ("988", "911", "1-800", "SAMHSA", "Never Use Alone", "741741")),
    (PHONE, ("988", "911", "1-800-484-3731", "1-800-662-4357", "741741"), ("116 123", "999", "FRANK")),
])
def test_skill_steps_send_the_crisis_numbers_of_the_participants_own_country(
    sms: SmsPoster, db: Any, enroll_participant: Any, phone: str, own: tuple[str, ...], foreign: tuple[str, ...],
) -> None:
    enroll_participant(phone)
    sent = " ".join(reply for skill_id in SKILLS_WITH_NUMBERS for reply in run_from_a_nudge(sms, db, phone, skill_id))
    for number in own:
        assert number in sent, number
    for number in foreign:
        assert number not in sent, number
    assert "{" not in sent


def offer_until(sms: SmsPoster, db: Any, phone: str, text: str, skill_id: str) -> list[str]:
    """Text `text`, then MORE until `skill_id` is the skill offered; every reply on the way."""
    replies = sms(text, from_=phone)
    for _ in range(12):
        running = latest_exercise(db, phone)
        if running is not None and running.skill_id == skill_id:
            return replies
        replies += sms("more", from_=phone)
    raise AssertionError(f"{skill_id} was never offered for {text!r}")


def test_the_medical_screen_names_panic_only_when_the_skill_is_offered_for_panic(
    sms: SmsPoster, db: Any, participant: Any, enroll_participant: Any, app: Any,
) -> None:
    screen_opening = app.extensions["library"].messages_list("medical_screen")[0].split(":")[0]
    # Mental grounding sends the medical screen first when it is offered for panic...
    replies = offer_until(sms, db, PHONE, "having a panic attack", "mental-grounding")
    running = latest_exercise(db, PHONE)
    assert running is not None and running.distress_state == "panic"
    assert screen_opening in replies[-2] and "panic" in replies[-2] and "911" in replies[-2]
    # ...and the same skill offered for racing thoughts sends no wording about panic at all.
    other = "+12025550102"
    enroll_participant(other)
    replies = offer_until(sms, db, other, "cant stop thinking about it", "mental-grounding")
    running = latest_exercise(db, other)
    assert running is not None and running.distress_state == "rumination"
    assert app.extensions["library"].skill("mental-grounding").medical_screen
    assert not any("panic" in reply.lower() or screen_opening in reply for reply in replies), replies


def test_a_third_party_crisis_reply_says_automated_and_alerted(
    sms: SmsPoster, participant: Any, fake_twilio: Any,
) -> None:
    replies = sms("my friend wants to kill herself", from_=PHONE)
    joined = " ".join(replies)
    assert "automated, not monitored 24/7" in joined and "988" in joined
    assert "counselor has been alerted but may not see it right away" in joined
    assert any("URGENT" in b for b in fake_twilio.bodies_to(COUNSELOR_PHONE))


@pytest.mark.parametrize("answer", ["ok im safe", "yeah im safe now", "im safe, just tired"])
def test_a_safe_answer_is_never_read_as_a_new_risk_signal(
    sms: SmsPoster, db: Any, participant: Any, fake_twilio: Any, answer: str,
) -> None:
    sms("i want to kill myself tonight", from_=PHONE)
    (reply,) = sms(answer, from_=PHONE)
    assert "Thank you for answering" in reply
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "URGENT" in b]) == 1  # the first alert only
    with db.session() as s:
        assert [e.answer for e in s.scalars(select(CrisisEvent))] == ["safe"]
