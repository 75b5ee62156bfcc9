"""Therapy groups (cohorts) and the reminder each member gets before each meeting.

A meeting is at `meeting_time` on `meeting_days` in the cohort's zone; the reminder is due
`reminder_minutes_before` earlier. If that instant falls outside a member's allowed window (their
quiet hours, in their own zone) it moves to the window's edge, never dropped: forward to when the
window opens if that is still before the meeting, else back to when it closed. Each member gets
one reminder per meeting: a unique (participant, cohort, meeting date) row, as with the daily
nudges, so concurrent or replayed ticks send it once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import outbox
from .db import Database
from .models import ACTIVE, Cohort, CohortReminder, Participant
from .nudges import Schedule, due_instant, in_program, in_window, parse_hhmm, zone_for

log = logging.getLogger(__name__)

REMINDER_KIND = "cohort_reminder"  # Outbox.kind
# A reminder may go out this long after it was due (a scheduler that was down), never after the
# meeting has started.
LATE_WINDOW = timedelta(minutes=120)
MAX_MINUTES_BEFORE = 2 * 24 * 60


@dataclass(frozen=True)
class Meeting:
    cohort_id: int
    local_date: date  # in the cohort's zone
    starts_at: datetime  # aware UTC


def meetings(cohort_zone: ZoneInfo, meeting_days: str, meeting_time: str, around: datetime,
             cohort_id: int = 0, days_ahead: int = 3) -> Iterator[Meeting]:
    """Meetings from the cohort-local day before `around` to `days_ahead` days after, in order."""
    today = around.astimezone(cohort_zone).date()
    at = parse_hhmm(meeting_time)
    for offset in range(-1, days_ahead + 1):
        day = today + timedelta(days=offset)
        if str(day.weekday()) in meeting_days:
            yield Meeting(cohort_id, day, due_instant(cohort_zone, at, day))


def reminder_at(meeting: datetime, minutes_before: int, zone: ZoneInfo, quiet_start: str, quiet_end: str) -> datetime:
    """When a member in `zone` with the allowed window [quiet_start, quiet_end] is reminded."""
    wanted = meeting - timedelta(minutes=minutes_before)
    start, end = parse_hhmm(quiet_start), parse_hhmm(quiet_end)
    local = wanted.astimezone(zone)
    if in_window(local.time(), start, end):
        return wanted
    # Forward: the next time the window opens, if that is still before the meeting.
    for day in (local.date(), local.date() + timedelta(days=1)):
        opens = due_instant(zone, start, day)
        if opens > wanted:
            if opens < meeting:
                return opens
            break
    # Back: the last time the window closed before the wanted instant.
    for day in (local.date(), local.date() - timedelta(days=1)):
        closes = due_instant(zone, end, day)
        if closes < wanted:
            return closes
    return wanted  # unreachable for a real window; send as asked rather than never


def reminder_body(library: Any, program: str, cohort: Cohort, meeting: Meeting) -> str:
    zone = zone_for(cohort.timezone)
    local = meeting.starts_at.astimezone(zone)
    when = f"{local.strftime('%a')} {local.strftime('%H:%M')} {local.tzname()}"
    return str(library.message("cohort_reminder", program=program, group=cohort.name, when=when,
                               text=cohort.reminder_text.strip()))


def _members(session: Session, cohort_id: int, now: datetime) -> list[Participant]:
    """Members who may get a text now: active, not opted out, not paused, not in crisis hold."""
    return list(session.scalars(select(Participant).where(
        Participant.cohort_id == cohort_id,
        Participant.status == ACTIVE,
        Participant.crisis_hold.is_(False),
        Participant.invalid_number.is_(False),
        or_(and_(Participant.paused_until.is_(None), Participant.nudges_paused.is_(False)),
            Participant.paused_until <= now),
    ).order_by(Participant.id)))


def _schedule(p: Participant) -> Schedule:
    return Schedule(timezone=p.timezone, quiet_start=p.quiet_start, quiet_end=p.quiet_end,
                    admission_date=p.admission_date, discharge_date=p.discharge_date,
                    aftercare_days=p.aftercare_days)


def plan_reminders(db: Database, library: Any, now: datetime, program: str) -> list[int]:
    """Queue every reminder due at `now` (each once); returns the outbox ids."""
    queued: list[int] = []
    with db.session() as session:
        cohorts = [(c.id, c.timezone, c.meeting_days, c.meeting_time, c.reminder_minutes_before)
                   for c in session.scalars(select(Cohort).where(Cohort.active.is_(True)))]
    for cohort_id, zone_name, days, at, minutes in cohorts:
        for meeting in meetings(zone_for(zone_name), days, at, now, cohort_id):
            if meeting.starts_at <= now or meeting.starts_at - now > timedelta(minutes=minutes) + timedelta(days=1):
                continue
            queued += _run_meeting(db, library, program, meeting, now)
    return queued


def _run_meeting(db: Database, library: Any, program: str, meeting: Meeting, now: datetime) -> list[int]:
    ids: list[int] = db.run(lambda s: _plan_meeting(s, library, program, meeting, now))
    return ids


def _plan_meeting(session: Session, library: Any, program: str, meeting: Meeting, now: datetime) -> list[int]:
    cohort = session.get(Cohort, meeting.cohort_id)
    if cohort is None:
        return []
    done = set(session.scalars(select(CohortReminder.participant_id).where(
        CohortReminder.cohort_id == cohort.id, CohortReminder.meeting_date == meeting.local_date)))
    queued = []
    for member in _members(session, cohort.id, now):
        if member.id in done:
            continue
        zone = zone_for(member.timezone)
        if not in_program(_schedule(member), meeting.starts_at.astimezone(zone).date()):
            continue
        send_at = reminder_at(meeting.starts_at, cohort.reminder_minutes_before, zone,
                              member.quiet_start, member.quiet_end)
        if send_at > now or now - send_at > LATE_WINDOW:
            continue
        key = f"cohort:{cohort.id}:{member.id}:{meeting.local_date.isoformat()}"
        try:
            with session.begin_nested():
                row = outbox.enqueue(session, to=member.phone, body=reminder_body(library, program, cohort, meeting),
                                     kind=REMINDER_KIND, now=now, participant_id=member.id, dedupe_key=key)
                session.add(CohortReminder(cohort_id=cohort.id, participant_id=member.id,
                                           meeting_date=meeting.local_date, send_at=send_at,
                                           outbox_id=row.id, created_at=now))
                session.flush()
        except IntegrityError:  # another tick queued it first
            continue
        queued.append(row.id)
    return queued
