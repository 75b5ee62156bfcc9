"""The evening diary card and LOG triggers, end to end: signed webhooks, the real tick with the
injected clock (across days and the US fall-back on Sunday 1 November 2026), the fake Twilio,
and the counselor's diary page with CSRF on."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot import scheduler
from bot.diary import SAFETY_CATEGORY, parse_answer, week_grid
from bot.models import OPTED_OUT, AuditLog, CrisisEvent, DiaryEntry, NudgeLog, Trigger
from bot.skills import DEFAULT_LIBRARY_PATH, check_library, load_library
from bot.vocabulary import OPT_OUT_WORDS
from tests.conftest import SmsPoster
from tests.dashboard_helpers import Dashboard, add_counselor
from tests.nudge_fixtures import add_participant, get_participant, utc

PHONE = "+12025550101"
COUNSELOR_PHONE = "+15551110000"  # nudge_fixtures' counselor
# Friday 30 October 2026, 20:00 EDT (UTC-4); Saturday's 20:00 EDT is 00:00 UTC on 1 November, and
# from Sunday 1 November (EST, UTC-5) 20:00 local is 01:00 UTC.
FRI_EVENING = utc(2026, 10, 31, 0, 0)
SAT_EVENING = utc(2026, 11, 1, 0, 0)
SUN_EVENING = utc(2026, 11, 2, 1, 0)
FRI = date(2026, 10, 30)


def diary_participant(db: Any, **fields: Any) -> int:
    """Active, diary on at 20:00 New York, no daily practice nudges (so only diary texts go out)."""
    values = {"phone": PHONE, "nudge_days": "", "diary_enabled": True, "diary_time": "20:00", **fields}
    return add_participant(db, **values)


def entries(db: Any, participant_id: int) -> dict[tuple[date, str], DiaryEntry]:
    with db.session() as s:
        rows = s.scalars(select(DiaryEntry).where(DiaryEntry.participant_id == participant_id))
        return {(e.local_date, e.item): e for e in rows}


def triggers(db: Any, participant_id: int) -> list[Trigger]:
    with db.session() as s:
        return list(s.scalars(select(Trigger).where(Trigger.participant_id == participant_id).order_by(Trigger.id)))


def say(sms: SmsPoster, clock: Any, text: str, at: datetime | None = None) -> list[str]:
    if at is not None:
        clock.set(at)
    return sms(text, from_=PHONE)


def carrier_words_in(text: str) -> set[str]:
    words = {w.strip(".,!?():;\"'").upper() for w in text.split()}
    return words & set(OPT_OUT_WORDS)


# --- opting in and out by text ---------------------------------------------------------------------


def test_diary_by_text_opts_in_and_the_evening_tick_sends_the_first_question_once(
    app: Any, db: Any, sms: SmsPoster, clock: Any, fake_twilio: Any
) -> None:
    pid = diary_participant(db, diary_enabled=False)
    (reply,) = say(sms, clock, "Diary", at=utc(2026, 10, 30, 15))
    assert "diary card is on" in reply and "8pm" in reply and "DIARY OFF" in reply
    assert carrier_words_in(reply) == set()
    assert get_participant(db, pid).diary_enabled is True
    (again,) = say(sms, clock, "DIARY")
    assert "already on" in again

    scheduler.tick(app, FRI_EVENING - timedelta(minutes=1))  # 19:59 local: not yet
    assert fake_twilio.bodies_to(PHONE) == []
    scheduler.tick(app, FRI_EVENING)
    (first,) = fake_twilio.bodies_to(PHONE)
    assert first.startswith("Your evening diary card: 6 quick questions") and "(1/6) Urges to use" in first
    assert carrier_words_in(first) == set()
    for minute in (0, 1, 5, 30):  # replayed and later ticks the same evening send nothing more
        scheduler.tick(app, FRI_EVENING + timedelta(minutes=minute))
    assert len(fake_twilio.bodies_to(PHONE)) == 1
    with db.session() as s:
        (row,) = s.scalars(select(NudgeLog).where(NudgeLog.participant_id == pid, NudgeLog.kind == "diary"))
        assert (row.local_date, row.content) == (FRI, "diary")
    participant = get_participant(db, pid)
    assert participant.conv_state == "diary" and participant.conv_data["q"] == 0


def test_a_whole_card_is_stored_per_item_with_skip_re_asks_and_thanks(
    app: Any, db: Any, sms: SmsPoster, clock: Any, fake_twilio: Any
) -> None:
    pid = diary_participant(db)
    scheduler.tick(app, FRI_EVENING)
    clock.set(FRI_EVENING + timedelta(minutes=3))
    (reask,) = say(sms, clock, "7")  # out of range: the question again with the range
    assert "0 (none) to 5 (very strong)" in reask and "urges to use" in reask
    (reask,) = say(sms, clock, "lots")  # words where a number is asked
    assert "0 (none) to 5" in reask
    (q2,) = say(sms, clock, "2")
    assert q2.startswith("(2/6) Urges to hurt yourself")
    (q3,) = say(sms, clock, "1")
    assert q3.startswith("(3/6)") and "strongest emotion" in q3
    (q4,) = say(sms, clock, "Frustrated, mostly")
    assert q4.startswith("(4/6) How strong")
    (q5,) = say(sms, clock, "SKIP")
    assert q5.startswith("(5/6) Did you use a coping skill")
    (q6,) = say(sms, clock, "yes, opposite action")
    assert q6.startswith("(6/6) Last one")
    (thanks,) = say(sms, clock, "Argument with my sister")
    assert "diary card is saved" in thanks and carrier_words_in(thanks) == set()

    found = entries(db, pid)
    assert found[(FRI, "urge_use")].value == 2
    assert found[(FRI, "urge_self_harm")].value == 1
    assert found[(FRI, "emotion")].text == "Frustrated, mostly"
    assert found[(FRI, "emotion_strength")].skipped and found[(FRI, "emotion_strength")].value is None
    assert (found[(FRI, "skill_used")].value, found[(FRI, "skill_used")].text) == (1, "opposite action")
    assert found[(FRI, "trigger")].text == "Argument with my sister"
    (trigger,) = triggers(db, pid)
    assert (trigger.text, trigger.source) == ("Argument with my sister", "diary")
    assert get_participant(db, pid).conv_state == "idle"
    with db.session() as s:
        logged = s.scalar(select(NudgeLog).where(NudgeLog.participant_id == pid, NudgeLog.kind == "diary"))
        assert logged is not None and logged.replied_at is not None


def test_after_two_re_asks_the_card_moves_on_without_an_answer(
    app: Any, db: Any, sms: SmsPoster, clock: Any
) -> None:
    pid = diary_participant(db)
    scheduler.tick(app, FRI_EVENING)
    clock.set(FRI_EVENING + timedelta(minutes=2))
    assert "0 (none) to 5" in say(sms, clock, "9")[0]
    assert "0 (none) to 5" in say(sms, clock, "hmm")[0]
    (moved,) = say(sms, clock, "not sure")
    assert moved.startswith("No problem, let's go on. (2/6)")
    assert (FRI, "urge_use") not in entries(db, pid)
    assert get_participant(db, pid).conv_data["q"] == 1


def test_the_card_comes_each_evening_at_local_time_across_the_fall_back(
    app: Any, db: Any, fake_twilio: Any
) -> None:
    diary_participant(db)
    sent_at: list[datetime] = []
    moment = utc(2026, 10, 30, 12)
    while moment <= utc(2026, 11, 3, 12):  # hourly ticks, Friday noon to Tuesday morning
        before = len(fake_twilio.bodies_to(PHONE))
        scheduler.tick(app, moment)
        if len(fake_twilio.bodies_to(PHONE)) > before:
            sent_at.append(moment)
        moment += timedelta(hours=1)
    # 20:00 local every evening: EDT (00:00 UTC) until the clocks go back, then EST (01:00 UTC).
    assert sent_at == [FRI_EVENING, SAT_EVENING, SUN_EVENING, utc(2026, 11, 3, 1)]
    scheduler.tick(app, SUN_EVENING)  # a replay of an evening already sent
    assert len(fake_twilio.bodies_to(PHONE)) == 4


def test_next_day_is_a_new_card_and_yesterdays_answers_stay(
    app: Any, db: Any, sms: SmsPoster, clock: Any, fake_twilio: Any
) -> None:
    pid = diary_participant(db)
    scheduler.tick(app, FRI_EVENING)
    say(sms, clock, "3", at=FRI_EVENING + timedelta(minutes=1))
    scheduler.tick(app, SAT_EVENING)
    assert len(fake_twilio.bodies_to(PHONE)) == 2 and "(1/6)" in fake_twilio.bodies_to(PHONE)[-1]
    say(sms, clock, "4", at=SAT_EVENING + timedelta(minutes=1))
    found = entries(db, pid)
    assert found[(FRI, "urge_use")].value == 3
    assert found[(date(2026, 10, 31), "urge_use")].value == 4


def test_a_card_left_open_expires_and_a_late_tick_records_the_day_as_skipped(
    app: Any, db: Any, sms: SmsPoster, clock: Any, fake_twilio: Any
) -> None:
    pid = diary_participant(db)
    scheduler.tick(app, FRI_EVENING)
    replies = say(sms, clock, "3", at=FRI_EVENING + timedelta(hours=13))  # the next morning
    assert not any(r.startswith("(2/6)") for r in replies)
    assert (FRI, "urge_use") not in entries(db, pid)
    # Saturday: the scheduler was down until 23:00 local, past the late window and quiet hours.
    scheduler.tick(app, SAT_EVENING + timedelta(hours=3))
    assert len(fake_twilio.bodies_to(PHONE)) == 1
    with db.session() as s:
        contents = {r.local_date: r.content for r in s.scalars(select(NudgeLog).where(NudgeLog.kind == "diary"))}
    assert contents == {FRI: "diary", date(2026, 10, 31): "skipped"}


def test_diary_off_stops_the_card_and_a_time_can_be_chosen_within_quiet_hours(
    app: Any, db: Any, sms: SmsPoster, clock: Any, fake_twilio: Any
) -> None:
    pid = diary_participant(db)
    (late,) = say(sms, clock, "diary 11pm", at=utc(2026, 10, 30, 15))
    assert "between 8am and 9pm" in late and get_participant(db, pid).diary_time == "20:00"
    (moved,) = say(sms, clock, "DIARY 7:30pm")
    assert "7:30pm" in moved and get_participant(db, pid).diary_time == "19:30"
    scheduler.tick(app, FRI_EVENING - timedelta(minutes=30))  # 19:30 EDT
    assert len(fake_twilio.bodies_to(PHONE)) == 1
    (off,) = say(sms, clock, "DIARY OFF", at=FRI_EVENING)
    assert "diary card is off" in off and carrier_words_in(off) == set()
    participant = get_participant(db, pid)
    assert participant.diary_enabled is False and participant.conv_state == "idle"
    scheduler.tick(app, SAT_EVENING - timedelta(minutes=30))
    scheduler.tick(app, SAT_EVENING)
    assert len(fake_twilio.bodies_to(PHONE)) == 1


def test_diary_asks_for_a_time_when_the_usual_one_is_outside_quiet_hours(
    db: Any, sms: SmsPoster, clock: Any
) -> None:
    pid = diary_participant(db, diary_enabled=False, quiet_end="19:00")
    (reply,) = say(sms, clock, "DIARY", at=utc(2026, 10, 30, 15))
    assert "between 8am and 7pm" in reply and "DIARY 7pm" in reply
    assert get_participant(db, pid).diary_enabled is False
    (on,) = say(sms, clock, "diary 6:45 pm")
    assert "diary card is on" in on and "6:45pm" in on
    participant = get_participant(db, pid)
    assert (participant.diary_enabled, participant.diary_time) == (True, "18:45")


def test_paused_opted_out_held_invalid_and_not_enrolled_get_no_card(app: Any, db: Any, fake_twilio: Any) -> None:
    on = diary_participant(db)
    others = {
        "paused": diary_participant(db, phone="+12025550111", nudges_paused=True),
        "paused until Monday": diary_participant(db, phone="+12025550112", paused_until=utc(2026, 11, 2, 12)),
        "opted out": diary_participant(db, phone="+12025550113", status=OPTED_OUT),
        "crisis hold": diary_participant(db, phone="+12025550114", crisis_hold=True),
        "invalid number": diary_participant(db, phone="+12025550115", invalid_number=True),
        "not enrolled in the diary": diary_participant(db, phone="+12025550116", diary_enabled=False),
        "invited": diary_participant(db, phone="+12025550117", status="invited"),
        "asked directly, no answer yet": diary_participant(db, phone="+12025550118", conv_state="check_pending"),
    }
    scheduler.tick(app, FRI_EVENING)
    assert len(fake_twilio.bodies_to(PHONE)) == 1, on
    for why, pid in others.items():
        assert fake_twilio.bodies_to(get_participant(db, pid).phone) == [], why


def test_a_crisis_text_mid_card_gets_the_crisis_flow_not_a_re_ask(
    app: Any, db: Any, sms: SmsPoster, clock: Any, fake_twilio: Any
) -> None:
    pid = diary_participant(db)
    scheduler.tick(app, FRI_EVENING)
    say(sms, clock, "1", at=FRI_EVENING + timedelta(minutes=1))
    replies = say(sms, clock, "i want to kill myself tonight")
    joined = " ".join(replies)
    assert "988" in joined and "0 (none) to 5" not in joined and "(3/6)" not in joined
    assert get_participant(db, pid).conv_state == "crisis_followup"
    with db.session() as s:
        kinds = [e.kind for e in s.scalars(select(CrisisEvent).where(CrisisEvent.participant_id == pid))]
    assert kinds == ["crisis"]
    assert any("URGENT" in body for body in fake_twilio.bodies_to(COUNSELOR_PHONE))
    assert entries(db, pid)[(FRI, "urge_use")].value == 1  # what was answered is kept


@pytest.mark.parametrize("rating", ["5", "4", "10"])
def test_a_high_self_harm_urge_is_recorded_and_gets_the_direct_question(
    app: Any, db: Any, sms: SmsPoster, clock: Any, rating: str
) -> None:
    pid = diary_participant(db)
    scheduler.tick(app, FRI_EVENING)
    say(sms, clock, "0", at=FRI_EVENING + timedelta(minutes=1))
    (question,) = say(sms, clock, rating)
    assert "direct question" in question and "suicide" in question and "988" in question
    assert "(3/6)" not in question
    entry = entries(db, pid)[(FRI, "urge_self_harm")]
    assert entry.value == min(int(rating), 5)
    assert get_participant(db, pid).conv_state == "check_pending"
    with db.session() as s:
        (event,) = s.scalars(select(CrisisEvent).where(CrisisEvent.participant_id == pid))
    assert (event.kind, event.categories, event.answer) == ("check", SAFETY_CATEGORY, None)
    replies = say(sms, clock, "no")  # answered as any direct question is
    assert "988" in replies[0]
    with db.session() as s:
        assert s.scalar(select(CrisisEvent.answer).where(CrisisEvent.id == event.id)) == "no"


def test_an_unrelated_text_mid_card_leaves_the_card_and_is_answered(
    app: Any, db: Any, sms: SmsPoster, clock: Any
) -> None:
    pid = diary_participant(db)
    scheduler.tick(app, FRI_EVENING)
    say(sms, clock, "2", at=FRI_EVENING + timedelta(minutes=1))
    replies = say(sms, clock, "im so anxious right now")
    assert "0 (none) to 5" not in " ".join(replies)
    assert any("0-10" in r for r in replies)  # a skill for anxiety started: it asks for a rating
    assert get_participant(db, pid).conv_state != "diary"
    assert entries(db, pid)[(FRI, "urge_use")].value == 2


def test_discreet_participants_get_a_neutral_first_text_and_ok_starts_the_card(
    app: Any, db: Any, sms: SmsPoster, clock: Any, fake_twilio: Any
) -> None:
    pid = diary_participant(db, discreet=True)
    scheduler.tick(app, FRI_EVENING)
    (first,) = fake_twilio.bodies_to(PHONE)
    assert "urge" not in first.lower() and "diary" not in first.lower()
    (q1,) = say(sms, clock, "ok", at=FRI_EVENING + timedelta(minutes=5))
    assert "(1/6) Urges to use" in q1
    say(sms, clock, "1")
    assert entries(db, pid)[(FRI, "urge_use")].value == 1


# --- LOG -----------------------------------------------------------------------------------------------


def test_log_records_a_trigger_in_the_participants_words(db: Any, sms: SmsPoster, clock: Any) -> None:
    pid = diary_participant(db, diary_enabled=False)  # LOG works whether or not the card is on
    (reply,) = say(sms, clock, "LOG: Fight with my boss about the schedule")
    assert reply.startswith("Noted") and "not sent to them as an alert" in reply
    (help_text,) = say(sms, clock, "log")
    assert "LOG and a few words" in help_text
    (trigger,) = triggers(db, pid)
    assert (trigger.text, trigger.source) == ("Fight with my boss about the schedule", "log")


# --- parsing and the week grid ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def card() -> Any:
    return load_library().diary


def test_answers_are_read_leniently_and_high_ratings_are_never_lost(card: Any) -> None:
    urge_use, self_harm = card.questions[0], card.questions[1]
    assert parse_answer(urge_use, "about a 3").value == 3
    assert parse_answer(urge_use, "3/5").value == 3
    assert parse_answer(urge_use, "none").value == 0
    assert parse_answer(urge_use, "6") is None and parse_answer(urge_use, "8 out of 10") is None
    assert parse_answer(self_harm, "9/10").value == 4
    assert parse_answer(self_harm, "2 out of 10") is None  # low on another scale: asked again
    skill = card.questions[4]
    assert (parse_answer(skill, "Nope").value, parse_answer(skill, "didn't get to it").text) == (0, "get to it")
    assert parse_answer(skill, "maybe") is None


def test_week_grid_lays_out_days_by_items_with_the_weeks_triggers(app: Any, db: Any, card: Any) -> None:
    pid = diary_participant(db)
    monday, sunday = date(2026, 11, 23), date(2026, 11, 29)

    def fill(s: Any) -> None:
        s.add_all([
            DiaryEntry(participant_id=pid, local_date=monday, item="urge_use", value=1),
            DiaryEntry(participant_id=pid, local_date=monday, item="urge_self_harm", value=4),
            DiaryEntry(participant_id=pid, local_date=monday, item="skill_used", value=1, text="TIPP"),
            DiaryEntry(participant_id=pid, local_date=date(2026, 11, 25), item="emotion", text="sad"),
            DiaryEntry(participant_id=pid, local_date=date(2026, 11, 25), item="emotion_strength", skipped=True),
            DiaryEntry(participant_id=pid, local_date=date(2026, 11, 22), item="urge_use", value=5),  # week before
            Trigger(participant_id=pid, text="payday", source="log", created_at=utc(2026, 11, 24, 15)),
            # 02:00 UTC on the 30th is still Sunday the 29th in New York (EST).
            Trigger(participant_id=pid, text="late call", source="diary", created_at=utc(2026, 11, 30, 2)),
            Trigger(participant_id=pid, text="last week", source="log", created_at=utc(2026, 11, 23, 4)),
        ])

    db.run(fill)
    grid = db.run(lambda s: week_grid(s, pid, sunday, card=card))
    assert [c.label for c in grid.columns] == ["Urge to use", "Urge to self-harm", "Strongest emotion", "How strong",
                                               "Used a skill", "Trigger"]
    assert [d.day for d in grid.days] == [monday + timedelta(days=i) for i in range(7)]
    mon = grid.days[0].cells
    assert (mon[0].shown, mon[1].shown, mon[1].high, mon[0].high) == ("1", "4", True, False)
    assert (mon[4].shown, mon[4].note) == ("yes", "TIPP")
    wed = grid.days[2].cells
    assert wed[2].shown == "sad" and wed[3].skipped and wed[3].shown == "skipped"
    assert not grid.days[1].answered and grid.days[0].answered
    assert [(t.text, t.day, t.source) for t in grid.triggers] == [
        ("late call", sunday, "diary"), ("payday", date(2026, 11, 24), "log")]
    assert grid.enabled and grid.diary_time == "20:00"


# --- the content is checked like the rest of the library -------------------------------------------


def test_a_broken_diary_card_is_refused_by_the_checker(tmp_path: Path) -> None:
    root = tmp_path / "library"
    shutil.copytree(DEFAULT_LIBRARY_PATH, root)
    file = root / "diary_card.yaml"
    shipped = yaml.safe_load(file.read_text(encoding="utf-8"))

    def errors_with(change: Any) -> list[str]:
        data = yaml.safe_load(yaml.safe_dump(shipped))
        change(data["questions"])
        file.write_text(yaml.safe_dump(data), encoding="utf-8")
        return [str(p) for p in check_library(root) if p.severity == "error"]

    def rules(questions: list[dict[str, Any]]) -> None:
        questions[0]["reask"] = "Please text a number."  # no range
        questions[1]["id"] = "urge_use"  # a duplicate
        questions[2]["ask"] = "Reply STOP if you like"  # a carrier word
        questions[4]["safety_check_at"] = 1  # not a scale

    problems = errors_with(rules)
    assert any("questions[0].reask" in p and "range" in p for p in problems)
    assert any("questions[1].id" in p and "earlier question" in p for p in problems)
    assert any("questions[2].ask" in p and "STOP" in p for p in problems)
    assert any("questions[4]" in p and "scale questions only" in p for p in problems)
    assert any("questions[3].kind" in p for p in errors_with(lambda q: q[3].update(kind="stars")))
    assert errors_with(lambda q: None) == []
    file.unlink()
    assert any(p.file == "diary_card.yaml" and "missing" in p.message for p in check_library(root))


# --- the counselor's diary page ------------------------------------------------------------------------


def test_the_diary_page_shows_the_grid_to_its_counselor_only_and_settings_enable_the_card(
    dash: Any, dash_app: Any, fake_twilio: Any
) -> None:
    db = dash_app.extensions["db"]
    owner = add_counselor(db, "owner@clinic.example", phone="+12025550170")
    add_counselor(db, "other@clinic.example", phone="+12025550171")
    pid = diary_participant(db, counselor_id=owner, diary_enabled=False, name="Robin")
    today = date(2026, 11, 27)  # the clock: 15:00 UTC, 10:00 in New York

    def fill(s: Any) -> None:
        s.add(DiaryEntry(participant_id=pid, local_date=today, item="urge_self_harm", value=5))
        s.add(DiaryEntry(participant_id=pid, local_date=today, item="emotion", text="<b>lonely</b>"))
        s.add(Trigger(participant_id=pid, text="holiday at my parents", source="log", created_at=utc(2026, 11, 26, 18)))

    db.run(fill)
    other = Dashboard(dash_app.test_client())
    other.login("other@clinic.example")
    assert other.get(f"/clients/{pid}/diary").status_code == 404
    refused = other.post(f"/clients/{pid}/diary/settings", {"diary_enabled": "y", "diary_time": "19:30"})
    assert refused.status_code == 404

    dash.login("owner@clinic.example")
    page = dash.get(f"/clients/{pid}/diary")
    assert page.status_code == 200
    html = page.text
    assert "Urge to self-harm" in html and "Used a skill" in html and "holiday at my parents" in html
    assert "diary-high" in html and "&lt;b&gt;lonely&lt;/b&gt;" in html and "<b>lonely" not in html
    assert "style=" not in html and "<script>" not in html
    with db.session() as s:
        assert s.scalar(select(AuditLog.action).where(AuditLog.participant_id == pid,
                                                      AuditLog.action == "view_diary")) == "view_diary"
    earlier = dash.get(f"/clients/{pid}/diary?week=2026-11-20")
    assert earlier.status_code == 200 and "holiday at my parents" not in earlier.text

    refused = dash.submit(f"/clients/{pid}/diary", {"diary_enabled": "y", "diary_time": "22:30"},
                          action=f"/clients/{pid}/diary/settings")
    assert refused.status_code == 400 and "allowed only from 08:00 to 21:00" in refused.text
    assert get_participant(db, pid).diary_enabled is False

    saved = dash.submit(f"/clients/{pid}/diary", {"diary_enabled": "y", "diary_time": "19:30"},
                        action=f"/clients/{pid}/diary/settings")
    assert saved.status_code == 302
    participant = get_participant(db, pid)
    assert (participant.diary_enabled, participant.diary_time) == (True, "19:30")
    (told,) = fake_twilio.bodies_to(PHONE)
    assert "turned on the evening diary card" in told and "7:30pm" in told and "DIARY OFF" in told
    with db.session() as s:
        detail = s.scalar(select(AuditLog.detail).where(AuditLog.action == "diary_settings"))
    assert detail is not None and detail["fields"] == ["diary_enabled", "diary_time"]

    # Without the page's CSRF token nothing changes.
    assert dash.client.post(f"/clients/{pid}/diary/settings", data={"diary_time": "20:00"}).status_code == 400
    assert get_participant(db, pid).diary_enabled is True


def test_the_diary_page_is_accessible_and_fits_a_phone(browser_page: Any, live_server: str, dash_app: Any) -> None:
    from tests.browser import axe_check, csp_violations, describe, login, page_errors, screenshot
    from tests.dashboard_helpers import PASSWORD

    db = dash_app.extensions["db"]
    owner = add_counselor(db, "owner@clinic.example", phone="+12025550170")
    pid = diary_participant(db, counselor_id=owner, name="Robin")
    today = date(2026, 11, 27)

    def fill(s: Any) -> None:
        s.add_all([DiaryEntry(participant_id=pid, local_date=today - timedelta(days=d), item=item, value=v)
                   for d in range(7) for item, v in (("urge_use", d % 6), ("urge_self_harm", (d + 3) % 6))])
        s.add(DiaryEntry(participant_id=pid, local_date=today, item="emotion", text="overwhelmed and tired"))
        s.add(DiaryEntry(participant_id=pid, local_date=today, item="emotion_strength", skipped=True))
        s.add(Trigger(participant_id=pid, text="phone call with my dad", source="diary",
                      created_at=utc(2026, 11, 27, 1)))

    db.run(fill)
    page = browser_page
    login(page, live_server, "owner@clinic.example", PASSWORD)
    page.goto(f"{live_server}/clients/{pid}/diary")
    assert page.locator("table.diary-grid tbody tr").count() == 7
    assert page.locator("td.diary-high").count() >= 1
    violations = axe_check(page)
    assert violations == [], describe(violations)
    screenshot(page, "diary")
    page.set_viewport_size({"width": 390, "height": 844})
    # Nothing but the grid's own scroll box may be wider than the phone.
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 390
    assert csp_violations(page) == [] and page_errors(page) == []
