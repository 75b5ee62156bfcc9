"""One client's record, for the counselor dashboard: the timeline of everything that happened,
distress ratings over time, which skills helped, and the changes a counselor makes to a client
(settings, pausing nudges, discharge, reassignment, a second consent invitation).

Plain SQLAlchemy and values: no web framework here (the dashboard's `client_record` module is the
web side). Times are aware UTC in and out; `local_time` shows them in the client's own zone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Float, cast, func, select
from sqlalchemy.orm import Session

from . import outbox
from .conversation import allowed_time, parse_time
from .enrollment import EnrollmentError, check_zone, parse_days
from .models import (
    INVITED,
    PENDING,
    Counselor,
    CrisisEvent,
    ExerciseSession,
    Message,
    MoodCheckin,
    NudgeLog,
    Outbox,
    Participant,
)
from .vocabulary import FLAGS

TIMELINE_PAGE = 200  # entries per timeline page
CHART_POINTS = 500  # the newest ratings drawn in the distress chart
MAX_AFTERCARE_DAYS = 365  # as `flask enroll --aftercare-days`
INVITATION_KIND = "invitation"  # Outbox.kind of the consent invitation (bot.enrollment.enroll)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --- local time ----------------------------------------------------------------------------------


def zone_of(name: str) -> tzinfo:
    """The participant's zone; UTC when the stored name is not a zone (it is checked on entry)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_time(moment: datetime | None, zone: tzinfo) -> str:
    """"Fri 27 Nov 2026, 10:00 EST": a time as the client's clock showed it, zone abbreviation
    included (so a counselor in another zone is not misled)."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return local.strftime("%a %d %b %Y, %H:%M %Z")


def local_date(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def days_text(digits: str) -> str:
    """Monday=0 digits as day names ("01234" -> "mon,tue,wed,thu,fri"), a form `parse_days` reads."""
    return ",".join(DAY_NAMES[int(d)] for d in digits if d.isdigit() and int(d) < 7)


# --- the timeline --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextEntry:
    at: datetime
    id: int
    direction: str  # "in" | "out"
    kind: str  # Message.kind: inbound, reply, nudge, invitation, ...
    body: str
    status: str | None
    error_code: str | None
    to_client: bool  # False for a text about the client sent to someone else
    entry: str = field(default="text", init=False)


@dataclass(frozen=True)
class ExerciseEntry:
    at: datetime
    id: int
    skill_id: str
    skill_title: str
    distress_state: str
    source: str
    status: str
    rating_before: int | None
    rating_after: int | None
    completed_at: datetime | None
    entry: str = field(default="exercise", init=False)


@dataclass(frozen=True)
class CheckinEntry:
    at: datetime
    id: int
    rating: int
    entry: str = field(default="checkin", init=False)


@dataclass(frozen=True)
class NudgeEntry:
    at: datetime
    id: int
    local_date: date
    kind: str
    content: str  # practice | checkin | skipped | backoff
    skill_title: str | None
    outbox_status: str | None  # pending | sent | failed | cancelled; None when nothing was queued
    error_code: str | None
    sent_at: datetime | None
    replied_at: datetime | None
    entry: str = field(default="nudge", init=False)


@dataclass(frozen=True)
class EventEntry:
    at: datetime
    id: int
    kind: str  # crisis | check | lapse
    level: str
    categories: str
    answer: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_outcome: str | None
    entry: str = field(default="event", init=False)


Entry = TextEntry | ExerciseEntry | CheckinEntry | NudgeEntry | EventEntry


def _newest(session: Session, model: Any, at: Any, participant_id: int, take: int) -> list[Any]:
    """A participant's `take` newest rows of `model` by its time column `at` (ties: newest id)."""
    return list(session.scalars(
        select(model).where(model.participant_id == participant_id)
        .order_by(at.desc(), model.id.desc()).limit(take)
    ))


@dataclass(frozen=True)
class TimelinePage:
    entries: list[Entry]
    page: int
    has_older: bool


def timeline(session: Session, participant: Participant, title_of: Callable[[str], str], *,
             page: int = 1, per_page: int = TIMELINE_PAGE) -> TimelinePage:
    """Page `page` (1 = newest) of everything that happened with a participant, newest first.

    Each source is read newest first with a limit of the entries up to the end of this page plus
    one, so the merged stream is exact: no entry of the page can be beyond any source's limit.
    """
    page = max(page, 1)
    take = page * per_page + 1
    pid = participant.id
    texts = session.execute(
        select(Message.id, Message.created_at, Message.direction, Message.kind, Message.body, Message.status,
               Message.error_code, Message.phone)
        .where(Message.participant_id == pid)
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(take)
    ).all()
    exercises = _newest(session, ExerciseSession, ExerciseSession.started_at, pid, take)
    checkins = _newest(session, MoodCheckin, MoodCheckin.created_at, pid, take)
    nudges = session.execute(
        select(NudgeLog, Outbox.status, Outbox.error_code, Outbox.sent_at)
        .outerjoin(Outbox, Outbox.id == NudgeLog.outbox_id)
        .where(NudgeLog.participant_id == pid)
        .order_by(NudgeLog.planned_at.desc(), NudgeLog.id.desc()).limit(take)
    ).all()
    events = _newest(session, CrisisEvent, CrisisEvent.created_at, pid, take)

    streams: list[list[Entry]] = [
        [TextEntry(at=r.created_at, id=r.id, direction=r.direction, kind=r.kind, body=r.body, status=r.status,
                   error_code=r.error_code, to_client=r.phone == participant.phone) for r in texts],
        [ExerciseEntry(at=e.started_at, id=e.id, skill_id=e.skill_id, skill_title=title_of(e.skill_id),
                       distress_state=e.distress_state, source=e.source, status=e.status,
                       rating_before=e.rating_before, rating_after=e.rating_after, completed_at=e.completed_at)
         for e in exercises],
        [CheckinEntry(at=c.created_at, id=c.id, rating=c.rating) for c in checkins],
        [NudgeEntry(at=n.planned_at, id=n.id, local_date=n.local_date, kind=n.kind, content=n.content,
                    skill_title=title_of(n.skill_id) if n.skill_id else None, outbox_status=status,
                    error_code=error_code, sent_at=sent_at, replied_at=n.replied_at)
         for n, status, error_code, sent_at in nudges],
        [EventEntry(at=e.created_at, id=e.id, kind=e.kind, level=e.level, categories=e.categories, answer=e.answer,
                    acknowledged_at=e.acknowledged_at, acknowledged_by=e.acknowledged_by, ack_outcome=e.ack_outcome)
         for e in events],
    ]
    # Ties (an inbound text and its replies share a timestamp) keep a stable order by kind and id.
    merged = sorted(chain.from_iterable(streams), key=lambda e: (e.at, e.entry, e.id), reverse=True)
    start = (page - 1) * per_page
    return TimelinePage(entries=merged[start:start + per_page], page=page, has_older=len(merged) > start + per_page)


# --- ratings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingPoint:
    at: datetime
    series: str  # "before" | "after" (distress, 0 = calm) | "checkin" (mood, 0 = very low)
    value: int
    skill_title: str | None = None


def rating_points(session: Session, participant_id: int, title_of: Callable[[str], str], *,
                  limit: int = CHART_POINTS) -> list[RatingPoint]:
    """The newest `limit` ratings, oldest first: distress before and after each exercise (0-10,
    0 = calm) and weekly mood check-ins (0-10, 0 = very low)."""
    exercises = session.execute(
        select(ExerciseSession.skill_id, ExerciseSession.started_at, ExerciseSession.completed_at,
               ExerciseSession.rating_before, ExerciseSession.rating_after)
        .where(ExerciseSession.participant_id == participant_id,
               (ExerciseSession.rating_before.is_not(None)) | (ExerciseSession.rating_after.is_not(None)))
        .order_by(ExerciseSession.started_at.desc(), ExerciseSession.id.desc()).limit(limit)
    ).all()
    checkins = session.execute(
        select(MoodCheckin.created_at, MoodCheckin.rating).where(MoodCheckin.participant_id == participant_id)
        .order_by(MoodCheckin.created_at.desc(), MoodCheckin.id.desc()).limit(limit)
    ).all()
    points: list[RatingPoint] = []
    for skill_id, started, completed, before, after in exercises:
        title = title_of(skill_id)
        if before is not None:
            points.append(RatingPoint(started, "before", before, title))
        if after is not None:
            points.append(RatingPoint(completed or started, "after", after, title))
    points.extend(RatingPoint(at, "checkin", rating) for at, rating in checkins)
    points.sort(key=lambda p: (p.at, p.series != "before"))
    return points[-limit:]


def chart_data(points: Sequence[RatingPoint], zone_name: str) -> dict[str, Any]:
    """The JSON the page's chart script draws (x: milliseconds since the epoch)."""
    zone = zone_of(zone_name)
    return {
        "zone": zone_name if isinstance(zone, ZoneInfo) else "UTC",
        "points": [{"x": int(p.at.timestamp() * 1000), "y": p.value, "series": p.series,
                    "label": local_time(p.at, zone), "skill": p.skill_title} for p in points],
    }


@dataclass(frozen=True)
class SkillHelp:
    skill_id: str
    skill_title: str
    times: int  # completed with both ratings
    average_before: float
    average_after: float
    average_change: float  # before - after: positive = distress went down


def skills_helped(session: Session, participant_id: int, title_of: Callable[[str], str]) -> list[SkillHelp]:
    """Per skill, completed exercises with both ratings and the average drop in distress, the
    skill that helped most first (then the most practiced, then by id)."""
    change = func.avg(cast(ExerciseSession.rating_before - ExerciseSession.rating_after, Float))
    times = func.count(ExerciseSession.id)
    rows = session.execute(
        select(ExerciseSession.skill_id, times, func.avg(cast(ExerciseSession.rating_before, Float)),
               func.avg(cast(ExerciseSession.rating_after, Float)), change)
        .where(ExerciseSession.participant_id == participant_id, ExerciseSession.status == "completed",
               ExerciseSession.rating_before.is_not(None), ExerciseSession.rating_after.is_not(None))
        .group_by(ExerciseSession.skill_id)
        .order_by(change.desc(), times.desc(), ExerciseSession.skill_id)
    ).all()
    return [SkillHelp(skill_id, title_of(skill_id), int(n), round(float(before), 1), round(float(after), 1),
                      round(float(delta), 1)) for skill_id, n, before, after, delta in rows]


# --- nudge state ---------------------------------------------------------------------------------


def pause_state(participant: Participant, now: datetime) -> str:
    """"on", "paused" (until resumed) or "paused_until" (a date in the future)."""
    if participant.paused_until is not None:
        return "paused_until" if participant.paused_until > now else "on"
    return "paused" if participant.nudges_paused else "on"


def last_program_day(participant: Participant) -> date | None:
    """The last local date nudges may go out (discharge + aftercare), as `bot.nudges.in_program`."""
    if participant.discharge_date is None:
        return None
    return participant.discharge_date + timedelta(days=max(participant.aftercare_days or 0, 0))


# --- changes a counselor makes -------------------------------------------------------------------


@dataclass(frozen=True)
class SettingsInput:
    """The settings form as typed (the same names as the enrollment form)."""

    name: str = ""
    timezone: str = "America/New_York"
    nudge_time: str = "10:00"
    nudge_days: str = "0123456"
    quiet_start: str = "08:00"
    quiet_end: str = "21:00"
    discreet: bool = False
    flags: Sequence[str] = ()
    admission_date: date | None = None
    discharge_date: date | None = None
    aftercare_days: int | None = 0


def check_settings(raw: SettingsInput) -> tuple[dict[str, Any], dict[str, str]]:
    """(clean values, errors by field name): the enrollment rules (`bot.enrollment.enroll`)."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {"name": raw.name.strip() or None, "discreet": bool(raw.discreet),
                             "admission_date": raw.admission_date, "discharge_date": raw.discharge_date}
    if clean["name"] is not None and len(clean["name"]) > 120:
        errors["name"] = "at most 120 characters"
    try:
        clean["timezone"] = check_zone(raw.timezone.strip())
    except EnrollmentError as exc:
        errors["timezone"] = str(exc)
    for name in ("nudge_time", "quiet_start", "quiet_end"):
        parsed = parse_time(getattr(raw, name))
        if parsed is None:
            errors[name] = "times must look like 09:30 or 7pm"
        clean[name] = parsed
    if not errors.keys() & {"nudge_time", "quiet_start", "quiet_end"} and not allowed_time(
            clean["nudge_time"], clean["quiet_start"], clean["quiet_end"]):
        errors["nudge_time"] = (f"nudge time {clean['nudge_time']} is outside the allowed window "
                                f"{clean['quiet_start']}-{clean['quiet_end']}")
    try:
        clean["nudge_days"] = parse_days(raw.nudge_days)
    except EnrollmentError as exc:
        errors["nudge_days"] = str(exc)
    unknown = sorted(set(raw.flags) - set(FLAGS))
    if unknown:
        errors["flags"] = f"unknown flag(s) {', '.join(unknown)}"
    clean["flags"] = sorted(set(raw.flags))
    if raw.aftercare_days is None or not 0 <= raw.aftercare_days <= MAX_AFTERCARE_DAYS:
        errors["aftercare_days"] = f"a whole number of days from 0 to {MAX_AFTERCARE_DAYS}"
    clean["aftercare_days"] = raw.aftercare_days
    if raw.admission_date and raw.discharge_date and raw.discharge_date < raw.admission_date:
        errors["discharge_date"] = "the discharge date is before the admission date"
    return clean, errors


def apply_settings(participant: Participant, clean: dict[str, Any]) -> list[str]:
    """Set the checked values; returns the names of the fields that changed (for the audit log)."""
    changed = []
    for name, value in clean.items():
        if getattr(participant, name) != value:
            setattr(participant, name, value)
            changed.append(name)
    return sorted(changed)


def set_paused(participant: Participant, paused: bool) -> None:
    """Pause nudges until resumed (as the PAUSE text does), or resume them (ending a dated pause too)."""
    participant.nudges_paused = paused
    participant.paused_until = None


def discharge(participant: Participant, today: date, aftercare_days: int) -> date:
    """Discharge today (the client's local date) with `aftercare_days` more days of nudges.

    The status stays as it is: the nudge planner sends while the local date is on or before
    discharge + aftercare and never after, and the client can still text for a skill. (Status
    "discharged" would silence the bot at once, aftercare included.) Returns the last nudge day.
    """
    if not 0 <= aftercare_days <= MAX_AFTERCARE_DAYS:
        raise ValueError("aftercare days out of range")
    participant.discharge_date = today
    participant.aftercare_days = aftercare_days
    return today + timedelta(days=aftercare_days)


class InvitationRefused(Exception):
    """The consent invitation may not be sent again; the message says why."""


def resend_invitation(session: Session, library: Any, participant: Participant, counselor: Counselor, *,
                      now: datetime, program_name: str) -> int:
    """Queue the consent invitation again (a new dedupe key per invitation); returns the outbox id."""
    if participant.status != INVITED or participant.opted_out_at is not None:
        raise InvitationRefused("Only a client who has not answered the invitation yet can be invited again.")
    if participant.invalid_number:
        raise InvitationRefused("Texts to this number fail: it is marked as not a mobile number.")
    sent = session.scalars(select(Outbox.status).where(Outbox.participant_id == participant.id,
                                                      Outbox.kind == INVITATION_KIND)).all()
    if PENDING in sent:
        raise InvitationRefused("An invitation is already waiting to go out.")
    body = library.message("consent_invitation", program=program_name, counselor=counselor.name)
    row_id = outbox.enqueue_once(session, to=participant.phone, body=body, kind=INVITATION_KIND, now=now,
                                 participant_id=participant.id,
                                 dedupe_key=f"invitation:{participant.id}:{len(sent) + 1}")
    if row_id is None:
        raise InvitationRefused("An invitation is already waiting to go out.")
    return int(row_id)
