"""Group-session reminders: the meeting's time in the group's zone, the member's quiet hours in
theirs, once per member per meeting, across DST, through the real tick and the fake Twilio."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot import scheduler
from bot.cohorts import meetings, reminder_at
from bot.models import OPTED_OUT, Cohort, CohortReminder, Participant
from tests.nudge_fixtures import add_participant, update_participant, utc

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


def add_cohort(db: Any, **fields: Any) -> int:
    values = {"name": "Tuesday group", "meeting_days": "1", "meeting_time": "18:00", "timezone": "America/New_York",
              "reminder_text": "Room 4, bring your diary card.", "reminder_minutes_before": 60, **fields}

    def work(session: Any) -> int:
        cohort = Cohort(**values)
        session.add(cohort)
        session.flush()
        return int(cohort.id)

    return int(db.run(work))


def member(db: Any, cohort_id: int, **fields: Any) -> int:
    # No daily nudges (no nudge days): only reminders reach the fake Twilio in these tests.
    return add_participant(db, cohort_id=cohort_id, nudge_days="", **fields)


def phone_of(db: Any, participant_id: int) -> str:
    return str(db.run(lambda s: s.get(Participant, participant_id).phone))


# --- the pure time rules ---------------------------------------------------------------------


def test_a_reminder_inside_the_allowed_window_is_sent_as_asked() -> None:
    meeting = datetime(2026, 6, 2, 18, 0, tzinfo=NY)
    assert reminder_at(meeting, 60, NY, "08:00", "21:00") == datetime(2026, 6, 2, 17, 0, tzinfo=NY)


def test_a_reminder_before_the_window_opens_moves_forward_to_its_edge() -> None:
    meeting = datetime(2026, 6, 2, 9, 0, tzinfo=NY)  # an early group; 120 min before is 07:00
    assert reminder_at(meeting, 120, NY, "08:00", "21:00") == datetime(2026, 6, 2, 8, 0, tzinfo=NY)


def test_a_reminder_that_cannot_move_forward_moves_back_to_the_previous_evening() -> None:
    meeting = datetime(2026, 6, 2, 7, 30, tzinfo=NY)  # before the window opens at all
    assert reminder_at(meeting, 60, NY, "08:00", "21:00") == datetime(2026, 6, 1, 21, 0, tzinfo=NY)


def test_quiet_hours_are_the_members_own_in_their_zone() -> None:
    # 18:00 in New York is 23:00 in London: a London member's window (08:00-21:00) closed at 21:00.
    meeting = datetime(2026, 6, 2, 18, 0, tzinfo=NY)
    moved = reminder_at(meeting, 60, LONDON, "08:00", "21:00")
    assert moved == datetime(2026, 6, 2, 21, 0, tzinfo=LONDON)
    assert moved < meeting


def test_meetings_keep_their_wall_time_across_the_fall_back() -> None:
    # US daylight saving ends on Sunday 1 November 2026: 18:00 is 22:00 UTC before, 23:00 after.
    found = [m.starts_at for m in meetings(NY, "0", "18:00", utc(2026, 10, 31, 12), days_ahead=3)]
    assert found == [utc(2026, 11, 2, 23)]
    found = [m.starts_at for m in meetings(NY, "0", "18:00", utc(2026, 10, 24, 12), days_ahead=3)]
    assert found == [utc(2026, 10, 26, 22)]


# --- through the tick ------------------------------------------------------------------------


def test_each_member_gets_one_reminder_per_meeting_at_the_local_time(app: Any, db: Any, fake_twilio: Any) -> None:
    cohort = add_cohort(db, meeting_days="0", meeting_time="18:00")  # Mondays
    pid = member(db, cohort)
    phone = phone_of(db, pid)
    # Monday 26 October 2026 (EDT): due 17:00 local = 21:00 UTC. A minute early: nothing.
    scheduler.tick(app, utc(2026, 10, 26, 20, 59))
    assert fake_twilio.bodies_to(phone) == []
    scheduler.tick(app, utc(2026, 10, 26, 21, 0))
    (body,) = fake_twilio.bodies_to(phone)
    assert "Tuesday group meets Mon 18:00 EDT" in body and "Room 4" in body
    for minute in range(1, 5):  # later ticks and a replay send nothing more
        scheduler.tick(app, utc(2026, 10, 26, 21, minute))
    scheduler.tick(app, utc(2026, 10, 26, 21, 0))
    assert len(fake_twilio.bodies_to(phone)) == 1
    # The next Monday is after the fall-back: 17:00 EST = 22:00 UTC, not 21:00.
    scheduler.tick(app, utc(2026, 11, 2, 21, 0))
    assert len(fake_twilio.bodies_to(phone)) == 1
    scheduler.tick(app, utc(2026, 11, 2, 22, 0))
    assert len(fake_twilio.bodies_to(phone)) == 2
    assert "Mon 18:00 EST" in fake_twilio.bodies_to(phone)[1]
    count = db.run(lambda s: s.scalar(select(func.count(CohortReminder.id))))
    assert count == 2


def test_opted_out_invited_paused_and_held_members_get_nothing(app: Any, db: Any, fake_twilio: Any) -> None:
    cohort = add_cohort(db)
    active = member(db, cohort)
    others = {
        "opted out": member(db, cohort, status=OPTED_OUT),
        "invited": member(db, cohort, status="invited"),
        "paused": member(db, cohort, nudges_paused=True),
        "crisis hold": member(db, cohort, crisis_hold=True),
        "paused until later": member(db, cohort, paused_until=utc(2026, 6, 10)),
    }
    not_member = add_participant(db, nudge_days="")
    scheduler.tick(app, utc(2026, 6, 2, 21, 0))  # Tuesday 17:00 EDT
    assert len(fake_twilio.bodies_to(phone_of(db, active))) == 1
    for why, pid in others.items():
        assert fake_twilio.bodies_to(phone_of(db, pid)) == [], why
    assert fake_twilio.bodies_to(phone_of(db, not_member)) == []


def test_a_hold_lifted_before_the_meeting_still_gets_the_reminder(app: Any, db: Any, fake_twilio: Any) -> None:
    cohort = add_cohort(db)
    pid = member(db, cohort, crisis_hold=True)
    scheduler.tick(app, utc(2026, 6, 2, 21, 0))
    assert fake_twilio.bodies_to(phone_of(db, pid)) == []
    update_participant(db, pid, crisis_hold=False)
    scheduler.tick(app, utc(2026, 6, 2, 21, 30))
    assert len(fake_twilio.bodies_to(phone_of(db, pid))) == 1


def test_a_member_abroad_is_reminded_at_their_windows_edge(app: Any, db: Any, fake_twilio: Any) -> None:
    cohort = add_cohort(db)
    pid = member(db, cohort, timezone="Europe/London")
    # 17:00 New York = 22:00 London, after the member's window: moved back to 21:00 London (20:00 UTC).
    scheduler.tick(app, utc(2026, 6, 2, 19, 59))
    assert fake_twilio.bodies_to(phone_of(db, pid)) == []
    scheduler.tick(app, utc(2026, 6, 2, 20, 0))
    assert len(fake_twilio.bodies_to(phone_of(db, pid))) == 1


@pytest.mark.parametrize("late", [timedelta(minutes=119), timedelta(minutes=121)])
def test_a_late_tick_sends_within_the_late_window_and_never_after_the_meeting(
    app: Any, db: Any, fake_twilio: Any, late: timedelta
) -> None:
    cohort = add_cohort(db, reminder_minutes_before=180)  # due 15:00 EDT = 19:00 UTC, meeting 22:00 UTC
    pid = member(db, cohort)
    scheduler.tick(app, utc(2026, 6, 2, 19, 0) + late)
    expected = 1 if late <= timedelta(minutes=120) else 0
    assert len(fake_twilio.bodies_to(phone_of(db, pid))) == expected
    scheduler.tick(app, utc(2026, 6, 2, 22, 30))  # after the meeting began: never
    assert len(fake_twilio.bodies_to(phone_of(db, pid))) == expected


@pytest.mark.parametrize("kind", ["cohort_reminder", "cohort_broadcast"])
@pytest.mark.parametrize("hold", [{"crisis_hold": True}, {"nudges_paused": True}, {"status": OPTED_OUT}])
def test_a_group_text_waiting_in_the_outbox_is_not_sent_after_a_hold_or_pause(
    app: Any, db: Any, fake_twilio: Any, kind: str, hold: dict[str, Any]
) -> None:
    from bot import outbox

    pid = member(db, add_cohort(db))
    phone = phone_of(db, pid)
    db.run(lambda s: outbox.enqueue(s, to=phone, body="Group tonight", kind=kind, now=utc(2026, 6, 2, 20),
                                    participant_id=pid))
    update_participant(db, pid, **hold)  # after it was queued, before it left
    outbox.deliver(db, app.extensions["sms_sender"], utc(2026, 6, 2, 20, 1))
    assert fake_twilio.bodies_to(phone) == []
    assert {r.status for r in db.run(lambda s: list(s.scalars(select(outbox.Outbox))))} == {"cancelled"}
