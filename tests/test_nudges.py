"""Daily nudges: local time, DST nights, allowed window, late ticks, eligibility, content, backoff."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

import pytest

from bot.db import Database
from bot.models import OPTED_OUT, CrisisEvent, ExerciseSession, Outbox
from bot.nudges import (
    Action,
    NudgeConfig,
    Schedule,
    choose_skill,
    decide,
    due_instant,
    in_window,
    plan_due_nudges,
    zone_for,
)
from bot.skills import load_library
from tests.nudge_fixtures import (
    COUNSELOR_PHONE,
    add_participant,
    count_rows,
    get_participant,
    local_dates,
    nudge_rows,
    outbox_rows,
    update_participant,
    utc,
)

NIGHT = {"quiet_start": "00:00", "quiet_end": "23:59"}  # night nudges allowed (for DST nights)
CFG = NudgeConfig(backoff_after=0)


@pytest.fixture(scope="module")
def library() -> Any:
    return load_library()


@pytest.fixture
def ndb(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


# --- pure time rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "hhmm", "day", "expected"),
    [
        # spring forward: a wall time in the gap goes out at the first valid instant after it
        ("America/New_York", "02:30", date(2026, 3, 8), utc(2026, 3, 8, 7, 0)),
        ("America/New_York", "02:00", date(2026, 3, 8), utc(2026, 3, 8, 7, 0)),
        ("America/New_York", "01:59", date(2026, 3, 8), utc(2026, 3, 8, 6, 59)),
        ("America/New_York", "03:00", date(2026, 3, 8), utc(2026, 3, 8, 7, 0)),
        ("America/Los_Angeles", "02:30", date(2026, 3, 8), utc(2026, 3, 8, 10, 0)),
        ("Europe/London", "01:30", date(2026, 3, 29), utc(2026, 3, 29, 1, 0)),
        ("Australia/Sydney", "02:30", date(2026, 10, 4), utc(2026, 10, 3, 16, 0)),
        # fall back: an ambiguous wall time goes out at its first occurrence
        ("America/New_York", "01:30", date(2026, 11, 1), utc(2026, 11, 1, 5, 30)),
        ("America/Los_Angeles", "01:30", date(2026, 11, 1), utc(2026, 11, 1, 8, 30)),
        ("Europe/London", "01:30", date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),
        ("Australia/Sydney", "02:30", date(2026, 4, 5), utc(2026, 4, 4, 15, 30)),
        # ordinary days
        ("America/New_York", "10:00", date(2026, 3, 8), utc(2026, 3, 8, 14, 0)),
        ("Asia/Kolkata", "08:00", date(2026, 3, 8), utc(2026, 3, 8, 2, 30)),
    ],
)
def test_due_instant_across_dst(zone: str, hhmm: str, day: date, expected: Any) -> None:
    hour, minute = map(int, hhmm.split(":"))
    assert due_instant(zone_for(zone), time(hour, minute), day) == expected


@pytest.mark.parametrize(
    ("t", "start", "end", "allowed"),
    [
        (time(8, 0), time(8, 0), time(21, 0), True),
        (time(7, 59), time(8, 0), time(21, 0), False),
        (time(21, 0, 59), time(8, 0), time(21, 0), True),  # minute resolution, end inclusive
        (time(21, 1), time(8, 0), time(21, 0), False),
        (time(23, 30), time(20, 0), time(2, 0), True),  # a window that wraps past midnight
        (time(1, 0), time(20, 0), time(2, 0), True),
        (time(12, 0), time(20, 0), time(2, 0), False),
    ],
)
def test_allowed_window(t: time, start: time, end: time, allowed: bool) -> None:
    assert in_window(t, start, end) is allowed


def test_decide_late_tick_sends_within_window_then_skips() -> None:
    schedule = Schedule(timezone="America/New_York", nudge_time="10:00")
    late = timedelta(minutes=120)
    assert decide(schedule, utc(2026, 6, 1, 13, 59), late).action is Action.WAIT  # 09:59 EDT
    assert decide(schedule, utc(2026, 6, 1, 14, 0), late).action is Action.SEND
    assert decide(schedule, utc(2026, 6, 1, 16, 0), late).action is Action.SEND  # exactly 2 h late
    assert decide(schedule, utc(2026, 6, 1, 16, 1), late).action is Action.SKIP


def test_decide_waits_for_the_window_and_skips_when_it_never_opens_in_time() -> None:
    late = timedelta(minutes=120)
    evening = Schedule(timezone="America/New_York", nudge_time="20:30")
    assert decide(evening, utc(2026, 6, 2, 0, 45), late).action is Action.SEND  # 20:45 EDT
    assert decide(evening, utc(2026, 6, 2, 1, 5), late).action is Action.WAIT  # 21:05: quiet hours
    assert decide(evening, utc(2026, 6, 2, 2, 31), late).action is Action.SKIP  # past the late window
    early = Schedule(timezone="America/New_York", nudge_time="07:00")
    assert decide(early, utc(2026, 6, 1, 11, 30), late).action is Action.WAIT  # 07:30, before 08:00
    assert decide(early, utc(2026, 6, 1, 12, 0), late).action is Action.SEND  # 08:00 opens it


def test_decide_respects_days_and_program_dates() -> None:
    late = timedelta(minutes=120)
    weekdays = Schedule(timezone="Europe/London", nudge_time="09:00", nudge_days="01234")
    assert decide(weekdays, utc(2026, 6, 5, 8, 0), late).action is Action.SEND  # Friday
    assert decide(weekdays, utc(2026, 6, 6, 8, 0), late).action is Action.NONE  # Saturday
    program = Schedule(
        timezone="Europe/London",
        nudge_time="09:00",
        admission_date=date(2026, 6, 3),
        discharge_date=date(2026, 6, 10),
        aftercare_days=2,
    )
    assert decide(program, utc(2026, 6, 2, 8, 0), late).action is Action.NONE
    assert decide(program, utc(2026, 6, 3, 8, 0), late).action is Action.SEND
    assert decide(program, utc(2026, 6, 12, 8, 0), late).action is Action.SEND  # last aftercare day
    assert decide(program, utc(2026, 6, 13, 8, 0), late).action is Action.NONE


# --- pure content rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeSkill:
    id: str
    practice_prompt: str = "Try it."
    practice_prompt_discreet: str | None = "A reminder."
    avoid_if: tuple[str, ...] = field(default_factory=tuple)

    def allowed_for(self, flags: Any) -> bool:
        return not set(self.avoid_if) & set(flags)


SKILLS = [FakeSkill("a"), FakeSkill("b"), FakeSkill("c"), FakeSkill("d"), FakeSkill("e")]


def test_choose_skill_rotates_through_unrated_skills() -> None:
    history: list[str] = []
    for _ in range(7):
        history.insert(0, choose_skill(SKILLS, history=history).id)
    assert list(reversed(history)) == ["a", "b", "c", "d", "e", "a", "b"]


def test_choose_skill_prefers_skills_that_helped_but_not_the_last_few() -> None:
    gains = {"d": 3.0, "b": 1.5, "a": -1.0}
    history: list[str] = []
    for _ in range(6):
        history.insert(0, choose_skill(SKILLS, own_gain=gains, history=history).id)
    # helped (d before b: bigger drop), then unrated (c, e), never-helped (a) last; the last 3 rest
    assert list(reversed(history)) == ["d", "b", "c", "e", "d", "b"]


def test_choose_skill_respects_flags_and_discretion() -> None:
    skills = [FakeSkill("hold", avoid_if=("heart_condition",)), FakeSkill("open", practice_prompt_discreet=None)]
    assert choose_skill(skills, flags=["heart_condition"]).id == "open"
    assert choose_skill(skills, discreet=True).id == "hold"
    assert choose_skill(skills, flags=["heart_condition"], discreet=True) is None


# --- planning against the database: DST walks -----------------------------------------------------

# Each case: the participants (label -> settings), the three local dates walked, and for every
# participant the exact UTC instant of its nudge on each of those dates.
DST_CASES = {
    "us-spring-forward": (
        {
            "ny_0230": {"timezone": "America/New_York", "nudge_time": "02:30", **NIGHT},
            "ny_0130": {"timezone": "America/New_York", "nudge_time": "01:30", **NIGHT},
            "la_0230": {"timezone": "America/Los_Angeles", "nudge_time": "02:30", **NIGHT},
            "la_0900": {"timezone": "America/Los_Angeles", "nudge_time": "09:00"},
        },
        [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)],
        {
            "ny_0230": [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
            "ny_0130": [utc(2026, 3, 7, 6, 30), utc(2026, 3, 8, 6, 30), utc(2026, 3, 9, 5, 30)],
            "la_0230": [utc(2026, 3, 7, 10, 30), utc(2026, 3, 8, 10, 0), utc(2026, 3, 9, 9, 30)],
            "la_0900": [utc(2026, 3, 7, 17, 0), utc(2026, 3, 8, 16, 0), utc(2026, 3, 9, 16, 0)],
        },
    ),
    "us-fall-back": (
        {
            "ny_0130": {"timezone": "America/New_York", "nudge_time": "01:30", **NIGHT},
            "ny_0230": {"timezone": "America/New_York", "nudge_time": "02:30", **NIGHT},
            "la_0130": {"timezone": "America/Los_Angeles", "nudge_time": "01:30", **NIGHT},
            "la_0900": {"timezone": "America/Los_Angeles", "nudge_time": "09:00"},
        },
        [date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)],
        {
            "ny_0130": [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
            "ny_0230": [utc(2026, 10, 31, 6, 30), utc(2026, 11, 1, 7, 30), utc(2026, 11, 2, 7, 30)],
            "la_0130": [utc(2026, 10, 31, 8, 30), utc(2026, 11, 1, 8, 30), utc(2026, 11, 2, 9, 30)],
            "la_0900": [utc(2026, 10, 31, 16, 0), utc(2026, 11, 1, 17, 0), utc(2026, 11, 2, 17, 0)],
        },
    ),
    "london-spring-forward": (
        {
            "ldn_0130": {"timezone": "Europe/London", "nudge_time": "01:30", **NIGHT},
            "ldn_0900": {"timezone": "Europe/London", "nudge_time": "09:00"},
            "kol_0800": {"timezone": "Asia/Kolkata", "nudge_time": "08:00"},
        },
        [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)],
        {
            "ldn_0130": [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
            "ldn_0900": [utc(2026, 3, 28, 9, 0), utc(2026, 3, 29, 8, 0), utc(2026, 3, 30, 8, 0)],
            "kol_0800": [utc(2026, 3, 28, 2, 30), utc(2026, 3, 29, 2, 30), utc(2026, 3, 30, 2, 30)],
        },
    ),
    "london-fall-back": (
        {
            "ldn_0130": {"timezone": "Europe/London", "nudge_time": "01:30", **NIGHT},
            "ldn_0900": {"timezone": "Europe/London", "nudge_time": "09:00"},
            "kol_0800": {"timezone": "Asia/Kolkata", "nudge_time": "08:00"},
        },
        [date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26)],
        {
            "ldn_0130": [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
            "ldn_0900": [utc(2026, 10, 24, 8, 0), utc(2026, 10, 25, 9, 0), utc(2026, 10, 26, 9, 0)],
            "kol_0800": [utc(2026, 10, 24, 2, 30), utc(2026, 10, 25, 2, 30), utc(2026, 10, 26, 2, 30)],
        },
    ),
    "sydney-fall-back": (
        {
            "syd_0230": {"timezone": "Australia/Sydney", "nudge_time": "02:30", **NIGHT},
            "syd_0900": {"timezone": "Australia/Sydney", "nudge_time": "09:00"},
        },
        [date(2026, 4, 4), date(2026, 4, 5), date(2026, 4, 6)],
        {
            "syd_0230": [utc(2026, 4, 3, 15, 30), utc(2026, 4, 4, 15, 30), utc(2026, 4, 5, 16, 30)],
            "syd_0900": [utc(2026, 4, 3, 22, 0), utc(2026, 4, 4, 23, 0), utc(2026, 4, 5, 23, 0)],
        },
    ),
    "sydney-spring-forward": (
        {
            "syd_0230": {"timezone": "Australia/Sydney", "nudge_time": "02:30", **NIGHT},
            "syd_0900": {"timezone": "Australia/Sydney", "nudge_time": "09:00"},
        },
        [date(2026, 10, 3), date(2026, 10, 4), date(2026, 10, 5)],
        {
            "syd_0230": [utc(2026, 10, 2, 16, 30), utc(2026, 10, 3, 16, 0), utc(2026, 10, 4, 15, 30)],
            "syd_0900": [utc(2026, 10, 2, 23, 0), utc(2026, 10, 3, 22, 0), utc(2026, 10, 4, 22, 0)],
        },
    ),
}


@pytest.mark.parametrize("case", list(DST_CASES))
def test_walk_across_dst_one_nudge_per_local_date_at_the_expected_instant(
    case: str, ndb: Database, library: Any
) -> None:
    participants, days, expected = DST_CASES[case]
    ids = {label: add_participant(ndb, **settings) for label, settings in participants.items()}
    # Walk every half hour from 36 h before the first local day to 36 h after the last.
    now = utc(days[0].year, days[0].month, days[0].day) - timedelta(hours=36)
    end = utc(days[-1].year, days[-1].month, days[-1].day) + timedelta(hours=60)
    while now <= end:
        plan_due_nudges(ndb, library, now, CFG)
        now += timedelta(minutes=30)
    for label, pid in ids.items():
        rows = nudge_rows(ndb, pid)
        per_date = [r.local_date for r in rows]
        assert len(per_date) == len(set(per_date)), f"{label}: two nudges on one local date"
        # (the first walked day may start after a nudge time: that one is a skip, as after a restart)
        assert all(r.content in ("practice", "checkin") for r in rows if r.local_date in days), label
        got = {r.local_date: r.planned_at for r in rows if r.local_date in days}
        assert got == dict(zip(days, expected[label], strict=True)), label
        # Every one of these DST days is a Sunday: the weekly check-in replaces the practice prompt.
        for r in rows:
            if r.local_date in days:
                assert r.content == ("checkin" if r.local_date.weekday() == 6 else "practice"), label
    assert count_rows(ndb, Outbox) == len(local_dates(nudge_rows(ndb)))  # one text per nudge, none for skips


def test_replayed_and_concurrent_ticks_never_plan_twice(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb, timezone="America/New_York", nudge_time="01:30", **NIGHT)
    first, second = utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)  # 01:30 EDT, then 01:30 EST
    assert plan_due_nudges(ndb, library, first, CFG) == 1
    assert plan_due_nudges(ndb, library, first, CFG) == 0
    assert plan_due_nudges(ndb, library, second, CFG) == 0
    assert local_dates(nudge_rows(ndb, pid)) == [date(2026, 11, 1)]
    assert len(outbox_rows(ndb, participant_id=pid)) == 1


# --- late ticks and the allowed window ------------------------------------------------------------


def test_late_tick_within_window_sends_and_later_one_records_a_skip(ndb: Database, library: Any) -> None:
    on_time = add_participant(ndb, timezone="America/Chicago", nudge_time="09:00")
    too_late = add_participant(ndb, timezone="America/New_York", nudge_time="09:00")
    # 10:50 in Chicago (1 h 50 late: send), 11:50 in New York (2 h 50 late: skip)
    assert plan_due_nudges(ndb, library, utc(2026, 6, 1, 15, 50), CFG) == 1
    assert [r.content for r in nudge_rows(ndb, on_time)] == ["practice"]
    assert [r.content for r in nudge_rows(ndb, too_late)] == ["skipped"]
    assert outbox_rows(ndb, participant_id=too_late) == []
    # The skip is final for that date; the next day is normal again.
    assert plan_due_nudges(ndb, library, utc(2026, 6, 1, 18, 0), CFG) == 0
    assert plan_due_nudges(ndb, library, utc(2026, 6, 2, 13, 0), CFG) == 1  # 09:00 New York
    assert [r.content for r in nudge_rows(ndb, too_late)] == ["skipped", "practice"]


def test_quiet_hours_hold_a_late_nudge_until_it_expires(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb, timezone="America/New_York", nudge_time="20:30")
    assert plan_due_nudges(ndb, library, utc(2026, 6, 2, 1, 10), CFG) == 0  # 21:10: quiet hours
    assert nudge_rows(ndb, pid) == []  # waiting, not skipped
    assert plan_due_nudges(ndb, library, utc(2026, 6, 2, 2, 40), CFG) == 0  # 22:40: expired
    assert [r.content for r in nudge_rows(ndb, pid)] == ["skipped"]


def test_window_that_opens_later_sends_when_it_opens(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb, timezone="Europe/London", nudge_time="07:30")
    assert plan_due_nudges(ndb, library, utc(2026, 1, 5, 7, 30), CFG) == 0
    assert plan_due_nudges(ndb, library, utc(2026, 1, 5, 8, 0), CFG) == 1
    assert local_dates(nudge_rows(ndb, pid)) == [date(2026, 1, 5)]


# --- who gets nothing -------------------------------------------------------------------------------


def test_only_eligible_participants_are_nudged(ndb: Database, library: Any) -> None:
    now = utc(2026, 6, 1, 14, 0)  # Monday 10:00 in New York
    eligible = add_participant(ndb)
    excluded = {
        "invited": add_participant(ndb, status="invited"),
        "opted_out": add_participant(ndb, status=OPTED_OUT),
        "discharged": add_participant(ndb, status="discharged"),
        "paused": add_participant(ndb, nudges_paused=True),
        "paused_3_days": add_participant(ndb, nudges_paused=True, paused_until=utc(2026, 6, 3)),
        "crisis_hold": add_participant(ndb, crisis_hold=True),
        "invalid_number": add_participant(ndb, invalid_number=True),
        "not_monday": add_participant(ndb, nudge_days="123456"),
        "not_admitted": add_participant(ndb, admission_date=date(2026, 6, 2)),
        "after_aftercare": add_participant(ndb, discharge_date=date(2026, 5, 20), aftercare_days=11),
        "later_today": add_participant(ndb, nudge_time="10:01"),
    }
    unacknowledged = add_participant(ndb)
    ndb.run(lambda s: s.add(CrisisEvent(participant_id=unacknowledged, phone="+1", level="high", categories="x")))
    in_aftercare = add_participant(ndb, discharge_date=date(2026, 5, 20), aftercare_days=12)
    pause_over = add_participant(ndb, nudges_paused=True, paused_until=utc(2026, 6, 1, 12, 0))

    assert plan_due_nudges(ndb, library, now, CFG) == 3
    nudged = {r.participant_id for r in nudge_rows(ndb)}
    assert nudged == {eligible, in_aftercare, pause_over}
    assert not nudged & set(excluded.values())
    assert unacknowledged not in nudged


def test_crisis_acknowledged_resumes_nudges(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb, crisis_hold=True)
    assert plan_due_nudges(ndb, library, utc(2026, 6, 1, 14, 0), CFG) == 0
    update_participant(ndb, pid, crisis_hold=False)
    assert plan_due_nudges(ndb, library, utc(2026, 6, 1, 14, 1), CFG) == 1


def test_participant_mid_exercise_is_not_interrupted(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb, conv_state="step", last_inbound_at=utc(2026, 6, 1, 13, 50))
    assert plan_due_nudges(ndb, library, utc(2026, 6, 1, 14, 0), CFG) == 0  # texted 10 min ago
    assert plan_due_nudges(ndb, library, utc(2026, 6, 1, 14, 20), CFG) == 1  # 30 min of quiet
    assert get_participant(ndb, pid).conv_state == "nudge"


# --- content ------------------------------------------------------------------------------------------


def test_nudge_sets_the_conversation_state_and_uses_library_text(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb)
    plan_due_nudges(ndb, library, utc(2026, 6, 1, 14, 0), CFG)
    (row,) = nudge_rows(ndb, pid)
    skill = library.skill(row.skill_id)
    participant = get_participant(ndb, pid)
    assert participant.conv_state == "nudge"
    assert participant.conv_data == {"skill_id": row.skill_id}
    assert participant.ignored_nudges == 1
    (message,) = outbox_rows(ndb, participant_id=pid)
    assert message.body == library.message("nudge_practice", prompt=skill.practice_prompt)
    assert message.kind == "nudge" and message.dedupe_key == f"nudge:{pid}:2026-06-01"
    assert row.outbox_id == message.id


def test_people_starting_together_get_different_skills_then_a_full_rotation(ndb: Database, library: Any) -> None:
    first, second = add_participant(ndb), add_participant(ndb)
    for day in range(1, 6):  # Monday to Friday
        plan_due_nudges(ndb, library, utc(2026, 6, day, 14, 0), CFG)
    a = [r.skill_id for r in nudge_rows(ndb, first)]
    b = [r.skill_id for r in nudge_rows(ndb, second)]
    assert a[0] != b[0]
    assert len(set(a)) == 5 and len(set(b)) == 5  # no repeats while the rotation lasts
    order = [s.id for s in library.skills.values() if s.practice_prompt]
    start = order.index(a[0])
    assert a == [order[(start + k) % len(order)] for k in range(5)]  # round robin in library order


def test_discreet_participant_gets_discreet_wording(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb, discreet=True)
    plan_due_nudges(ndb, library, utc(2026, 6, 1, 14, 0), CFG)
    (row,) = nudge_rows(ndb, pid)
    (message,) = outbox_rows(ndb, participant_id=pid)
    prompt = library.skill(row.skill_id).practice_prompt_discreet
    assert message.body == library.message("nudge_discreet", prompt=prompt)


def test_sunday_is_a_mood_checkin(ndb: Database, library: Any) -> None:
    plain, discreet = add_participant(ndb), add_participant(ndb, discreet=True)
    plan_due_nudges(ndb, library, utc(2026, 6, 7, 14, 0), CFG)  # a Sunday
    assert get_participant(ndb, plain).conv_state == "checkin"
    assert outbox_rows(ndb, participant_id=plain)[0].body == library.message("nudge_checkin")
    assert outbox_rows(ndb, participant_id=discreet)[0].body == library.message("nudge_checkin_discreet")
    assert [r.content for r in nudge_rows(ndb)] == ["checkin", "checkin"]


def test_skill_choice_uses_rotation_ratings_and_flags(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb, flags=["heart_condition"])
    favourite = "box-breathing" if library.skill("box-breathing").allowed_for(["heart_condition"]) else None
    favourite = favourite or next(s.id for s in library.skills.values() if s.allowed_for(["heart_condition"]))
    ndb.run(
        lambda s: s.add(
            ExerciseSession(
                participant_id=pid, skill_id=favourite, distress_state="anxiety", rating_before=8, rating_after=3
            )
        )
    )
    for day in range(1, 6):  # Monday to Friday
        plan_due_nudges(ndb, library, utc(2026, 6, day, 14, 0), CFG)
    chosen = [r.skill_id for r in nudge_rows(ndb, pid)]
    assert chosen[0] == favourite  # the skill that helped comes first
    assert favourite not in chosen[1:4]  # then it rests for three nudges
    assert chosen[4] == favourite
    assert len(set(chosen[:4])) == 4
    assert all(library.skill(s).allowed_for(["heart_condition"]) for s in chosen)


# --- engagement backoff -----------------------------------------------------------------------------


def test_backoff_after_ignored_nudges_tells_counselor_once_and_a_reply_restores(ndb: Database, library: Any) -> None:
    cfg = NudgeConfig(backoff_after=3, checkin_weekday=None)
    pid = add_participant(ndb, name="Robin", phone="+15550007777")
    day = utc(2026, 6, 1, 14, 0)  # Mondays onwards, 10:00 New York

    def run(days: int) -> None:
        nonlocal day
        for _ in range(days):
            plan_due_nudges(ndb, library, day, cfg)
            day += timedelta(days=1)

    run(8)  # Jun 1..8
    contents = [r.content for r in nudge_rows(ndb, pid)]
    assert contents == ["practice"] * 3 + ["backoff", "practice", "backoff", "practice", "backoff"]
    (notice,) = outbox_rows(ndb, kind="counselor_notice")
    assert notice.to_phone == COUNSELOR_PHONE
    assert notice.body == library.message(
        "counselor_backoff_notice", program=cfg.program_name, participant="Robin", phone_tail="***7777", count=3
    )
    assert get_participant(ndb, pid).backoff_notified is True
    update_participant(ndb, pid, ignored_nudges=0)  # the conversation does this on any reply
    run(3)  # Jun 9..11: daily again
    assert [r.content for r in nudge_rows(ndb, pid)][-3:] == ["practice"] * 3
    assert get_participant(ndb, pid).backoff_notified is False
    run(2)  # ignored 3 again by Jun 11: Jun 12 rests, the counselor hears again
    assert [r.content for r in nudge_rows(ndb, pid)][-2:] == ["backoff", "practice"]
    assert len(outbox_rows(ndb, kind="counselor_notice")) == 2


def test_backoff_zero_turns_it_off(ndb: Database, library: Any) -> None:
    pid = add_participant(ndb, ignored_nudges=50)
    plan_due_nudges(ndb, library, utc(2026, 6, 1, 14, 0), NudgeConfig(backoff_after=0))
    plan_due_nudges(ndb, library, utc(2026, 6, 2, 14, 0), NudgeConfig(backoff_after=0))
    assert [r.content for r in nudge_rows(ndb, pid)] == ["practice", "practice"]


def test_config_from_app_mapping() -> None:
    cfg = NudgeConfig.coerce(
        {"NUDGE_LATE_WINDOW_MINUTES": 30, "NUDGE_BACKOFF_AFTER": 0, "CHECKIN_WEEKDAY": -1, "PROGRAM_NAME": "X"}
    )
    expected = NudgeConfig(late_window=timedelta(minutes=30), backoff_after=0, checkin_weekday=None, program_name="X")
    assert cfg == expected


def test_many_participants_are_planned_in_chunks(ndb: Database, library: Any) -> None:
    for _ in range(25):
        add_participant(ndb)
    cfg = NudgeConfig(backoff_after=0, chunk_size=7)
    assert plan_due_nudges(ndb, library, utc(2026, 6, 1, 14, 0), cfg) == 25
    assert plan_due_nudges(ndb, library, utc(2026, 6, 1, 14, 5), cfg) == 0
    assert count_rows(ndb, Outbox) == 25
