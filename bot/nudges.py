"""Daily practice nudges: who is due, at their own local time, and what they get.

The first half is pure: functions of plain values and `now` (aware UTC) that say when a nudge is
due on a local date, whether a tick at `now` should send it, skip it or wait, and which skill to
suggest. The second half, `plan_due_nudges`, applies them to the database in chunks: it writes one
NudgeLog row per participant per local date (a unique key) and the nudge's outbox row in the same
transaction, so two ticks running at once, a replayed tick or a DST night can never plan a second
nudge for the same local date.

Rules:
- Local time: a nudge is due at `nudge_time` on the participant's local date. A wall time that
  does not exist (spring-forward gap) is due at the first valid instant after the gap (03:00 for
  02:30 in New York); an ambiguous one (fall-back) is due at its first occurrence (fold=0).
- Allowed window: automated texts go out only while the local wall clock is within
  [quiet_start, quiet_end], inclusive, at minute resolution (quiet_start > quiet_end wraps past
  midnight). A due nudge outside the window waits; when the tick is more than the late window past
  the due time it is recorded as skipped ("skipped") and never sent.
- Who: status active, not paused (a `paused_until` in the past ends the pause), not in crisis hold
  nor with an unacknowledged crisis event, number not invalid, on one of `nudge_days`
  (Mon=0 ... Sun=6), on or after `admission_date`, on or before `discharge_date + aftercare_days`.
  Someone who texted in the last BUSY_WINDOW while mid-exercise is not interrupted: the nudge waits.
- Content: on CHECKIN_WEEKDAY (default Sunday) a mood check-in (0-10), otherwise a practice
  prompt for one skill (see `choose_skill`); discreet wording when the participant asked for it.
- Backoff: after NUDGE_BACKOFF_AFTER nudges in a row with no reply (0 = off), nudges go out only
  every other scheduled day (a "backoff" row marks each day left out) and the counselor is told
  once; any reply (the conversation resets `ignored_nudges`) restores the daily rhythm.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    ARRAY,
    Date,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement, SQLCoreOperations

from .db import Database
from .models import (
    ACTIVE,
    Counselor,
    CrisisEvent,
    ExerciseSession,
    NudgeLog,
    Outbox,
    Participant,
    outbox_values,
)
from .sms import mask_phone

log = logging.getLogger(__name__)

DAILY = "daily"  # NudgeLog.kind
PRACTICE = "practice"  # NudgeLog.content values
CHECKIN = "checkin"
SKIPPED = "skipped"
BACKOFF = "backoff"
SENT_CONTENTS = (PRACTICE, CHECKIN)

NUDGE_KIND = "nudge"  # Outbox.kind of practice nudges and check-ins
NOTICE_KIND = "counselor_notice"  # Outbox.kind of notices to counselors

# A participant who texted this recently and is mid-exercise is not interrupted by a nudge.
BUSY_WINDOW = timedelta(minutes=30)
IDLE_STATES = frozenset({"idle", "nudge", "checkin"})
# Chunks planned at once on PostgreSQL (each is its own transaction and connection).
PLANNING_THREADS = 2
# The nudge history read when rotating skills and deciding backoff: rows no older than this...
HISTORY_DAYS = 14
# ...and at most this many per participant (backoff days interleave with nudges).
HISTORY_ROWS = 6


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class NudgeConfig:
    """The settings planning needs, from app.config (or a test)."""

    late_window: timedelta = timedelta(minutes=120)
    backoff_after: int = 5
    checkin_weekday: int | None = 6
    recent_skills: int = 3
    program_name: str = "IOP Coping Skills"
    chunk_size: int = 2000

    @classmethod
    def coerce(cls, value: NudgeConfig | Mapping[str, Any] | None) -> NudgeConfig:
        """A NudgeConfig from itself, or from a mapping with the app.config key names."""
        if isinstance(value, NudgeConfig):
            return value
        m: Mapping[str, Any] = value or {}
        weekday = m.get("CHECKIN_WEEKDAY", 6)
        return cls(
            late_window=timedelta(minutes=int(m.get("NUDGE_LATE_WINDOW_MINUTES", 120))),
            backoff_after=int(m.get("NUDGE_BACKOFF_AFTER", 5)),
            checkin_weekday=None if weekday is None or int(weekday) < 0 else int(weekday),
            program_name=str(m.get("PROGRAM_NAME") or "IOP Coping Skills"),
        )


# --------------------------------------------------------------------------------------------
# Pure time rules


def parse_hhmm(text: str) -> time:
    """The time of day in an "HH:MM" string (24 h); ValueError if it is not one."""
    hour, _, minute = text.strip().partition(":")
    if not (hour.isdigit() and minute.isdigit() and len(minute) == 2):
        raise ValueError(f"not an HH:MM time: {text!r}")
    return time(int(hour), int(minute))


@lru_cache(maxsize=1024)
def zone_for(name: str) -> ZoneInfo:
    """The IANA zone `name` (cached); ZoneInfoNotFoundError / ValueError if it is not one."""
    return ZoneInfo(name)


def due_instant(zone: ZoneInfo, nudge_time: time, local_date: date) -> datetime:
    """The aware UTC instant a nudge at `nudge_time` is due on `local_date` in `zone`.

    Ambiguous wall times (fall-back) resolve to their first occurrence. A wall time inside a
    spring-forward gap resolves to the first valid instant after the gap (the transition itself),
    so it is still sent once that day.
    """
    wall = datetime.combine(local_date, nudge_time)
    first = wall.replace(tzinfo=zone, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # Non-existent: fold=0 used the offset before the gap (the later UTC instant), fold=1 the
    # offset after it (the earlier one); the transition lies between: bisect to the second.
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(instant.timestamp())
    offset_before = datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == offset_before:
            low = mid
        else:
            high = mid
    return datetime.fromtimestamp(high, UTC)


def in_window(local_time: time, start: time, end: time) -> bool:
    """True when `local_time` is within [start, end] at minute resolution; start > end wraps."""
    t = (local_time.hour, local_time.minute)
    s, e = (start.hour, start.minute), (end.hour, end.minute)
    if s <= e:
        return s <= t <= e
    return t >= s or t <= e


@dataclass(frozen=True)
class Schedule:
    """A participant's nudge settings, as plain values."""

    timezone: str
    nudge_time: str = "10:00"
    nudge_days: str = "0123456"
    quiet_start: str = "08:00"
    quiet_end: str = "21:00"
    admission_date: date | None = None
    discharge_date: date | None = None
    aftercare_days: int = 0


def in_program(schedule: Schedule, local_date: date) -> bool:
    """True when `local_date` is within admission .. discharge + aftercare (open ends allowed)."""
    if schedule.admission_date is not None and local_date < schedule.admission_date:
        return False
    if schedule.discharge_date is not None:
        last = schedule.discharge_date + timedelta(days=max(schedule.aftercare_days or 0, 0))
        if local_date > last:
            return False
    return True


def scheduled_on(schedule: Schedule, local_date: date) -> bool:
    """True when the participant gets a nudge on this local date (weekday and program dates)."""
    return str(local_date.weekday()) in schedule.nudge_days and in_program(schedule, local_date)


class Action(Enum):
    NONE = "none"  # nothing today (not a nudge day, outside the program)
    WAIT = "wait"  # not yet due, or due but outside the allowed window: ask again next tick
    SEND = "send"
    SKIP = "skip"  # too late: record it so no later tick sends it


@dataclass(frozen=True)
class Decision:
    action: Action
    local_date: date
    due: datetime | None = None


def decide(schedule: Schedule, now: datetime, late_window: timedelta) -> Decision:
    """What a tick at `now` does about today's nudge (today = the local date at `now`).

    The caller must already know no nudge was logged for that local date.
    """
    zone = zone_for(schedule.timezone)
    local_now = now.astimezone(zone)
    today = local_now.date()
    if not scheduled_on(schedule, today):
        return Decision(Action.NONE, today)
    due = due_instant(zone, parse_hhmm(schedule.nudge_time), today)
    if now < due:
        return Decision(Action.WAIT, today, due)
    if now - due > late_window:
        return Decision(Action.SKIP, today, due)
    window = (parse_hhmm(schedule.quiet_start), parse_hhmm(schedule.quiet_end))
    if not in_window(local_now.time(), *window):
        return Decision(Action.WAIT, today, due)
    return Decision(Action.SEND, today, due)


def is_busy(conv_state: str, last_inbound_at: datetime | None, now: datetime) -> bool:
    """True while a participant is mid-exercise and texted within BUSY_WINDOW: do not interrupt."""
    if conv_state in IDLE_STATES or last_inbound_at is None:
        return False
    return now - last_inbound_at < BUSY_WINDOW


def in_backoff(ignored_nudges: int, backoff_after: int) -> bool:
    """True when the participant has ignored enough nudges in a row to be nudged less often."""
    return backoff_after > 0 and ignored_nudges >= backoff_after


def backoff_rests_today(ignored_nudges: int, backoff_after: int, last_content: str | None) -> bool:
    """True when backoff leaves today out: every other scheduled day, alternating with a send."""
    return in_backoff(ignored_nudges, backoff_after) and last_content in SENT_CONTENTS


# --------------------------------------------------------------------------------------------
# Pure content rules


class SkillLike(Protocol):
    id: str
    practice_prompt: str
    practice_prompt_discreet: str | None

    def allowed_for(self, flags: Iterable[str]) -> bool: ...  # the medical gate (bot.vocabulary)


class Messages(Protocol):
    """The library's message texts (bot.skills.Library)."""

    def message(self, key: str, *, variant: int = 0, **values: object) -> str: ...


def eligible_skills(skills: Iterable[Any], flags: Iterable[str] = (), discreet: bool = False) -> list[Any]:
    """Skills that may be suggested: a practice prompt, allowed for `flags`, discreet wording if asked."""
    flag_set = frozenset(flags)
    return [
        s
        for s in skills
        if s.practice_prompt and s.allowed_for(flag_set) and (not discreet or s.practice_prompt_discreet)
    ]


def choose_skill(
    skills: Iterable[Any],
    *,
    flags: Iterable[str] = (),
    discreet: bool = False,
    own_gain: Mapping[str, float] | None = None,
    history: Sequence[str] = (),
    recent_block: int = 3,
    offset: int = 0,
    pool: Sequence[Any] | None = None,
) -> Any | None:
    """The skill to suggest today, or None when no skill fits.

    Candidates are the skills the participant's flags allow (with a discreet prompt when they
    asked for discretion; `pool` may give them precomputed), in library order rotated to start
    just after the most recently nudged skill (round robin; at `offset`, the participant id, for
    a first nudge, so people who start together do not all get the same skill). The
    `recent_block` most recently nudged skills are left out when anything else remains. Then the
    first of: the skill that helped this participant most (average drop of at least 1 point),
    the next skill they have not rated, the next skill at all. `history` lists nudged skill ids,
    most recent first.
    """
    candidates = pool if pool is not None else eligible_skills(skills, flags, discreet)
    size = len(candidates)
    if not size:
        return None
    start = offset
    if history:
        for i, skill in enumerate(candidates):
            if skill.id == history[0]:
                start = i + 1
                break
    ordered = [candidates[(start + k) % size] for k in range(size)]
    blocked = set(history[:recent_block])
    fresh = [s for s in ordered if s.id not in blocked]
    if not fresh:  # fewer skills than the recent block: only avoid repeating the last one
        fresh = [s for s in ordered if s.id != history[0]] or ordered
    gains = own_gain or {}
    if not gains:
        return fresh[0]
    helped = [s for s in fresh if gains.get(s.id, 0.0) >= 1]
    if helped:
        return max(helped, key=lambda s: gains[s.id])  # the first of equals in rotation order
    return next((s for s in fresh if s.id not in gains), fresh[0])


def participant_label(library: Messages, name: str | None) -> str:
    """How a counselor text names a participant: the name, or the library's stand-in."""
    return name.strip() if name and name.strip() else library.message("unnamed_participant")


def nudge_body(library: Messages, skill: Any | None, *, checkin: bool, discreet: bool) -> str:
    """The text of a practice nudge (for `skill`) or of a mood check-in, from the library."""
    if checkin or skill is None:
        return library.message("nudge_checkin_discreet" if discreet else "nudge_checkin")
    if discreet:
        return library.message("nudge_discreet", prompt=skill.practice_prompt_discreet)
    return library.message("nudge_practice", prompt=skill.practice_prompt)


# --------------------------------------------------------------------------------------------
# Planning against the database


@dataclass(frozen=True)
class _ZoneNow:
    zone: ZoneInfo
    local_date: date
    hhmm: str
    weekday: str


def _zones_now(session: Session, now: datetime) -> dict[str, _ZoneNow]:
    """The local date, wall time and weekday at `now` in every zone participants use."""
    names = session.scalars(select(Participant.timezone).where(Participant.status == ACTIVE).distinct())
    table: dict[str, _ZoneNow] = {}
    for name in names:
        try:
            zone = zone_for(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.error("participants with unknown time zone %r get no nudges", name)
            continue
        local = now.astimezone(zone)
        table[name] = _ZoneNow(zone, local.date(), local.strftime("%H:%M"), str(local.weekday()))
    return table


def _by_zone(zones: Mapping[str, _ZoneNow], attr: str, type_: Any) -> ColumnElement[Any]:
    """A CASE on the participant's zone giving that zone's `attr` at `now`."""
    return case(
        {name: literal(getattr(z, attr), type_) for name, z in zones.items()},
        value=Participant.timezone,
        else_=literal(None, type_),
    )


def _last_program_day(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return Participant.discharge_date + Participant.aftercare_days  # date + integer days
    modifier = literal("+", String()) + cast(Participant.aftercare_days, String()) + literal(" days", String())
    return func.date(Participant.discharge_date, modifier)


_COLUMNS = (
    Participant.id,
    Participant.phone,
    Participant.name,
    Participant.counselor_id,
    Participant.timezone,
    Participant.nudge_time,
    Participant.nudge_days,
    Participant.quiet_start,
    Participant.quiet_end,
    Participant.admission_date,
    Participant.discharge_date,
    Participant.aftercare_days,
    Participant.discreet,
    Participant.flags,
    Participant.ignored_nudges,
    Participant.backoff_notified,
    Participant.conv_state,
    Participant.last_inbound_at,
)


def _candidates_query(
    zones: Mapping[str, _ZoneNow], now: datetime, session: Session, columns: Sequence[Any] = _COLUMNS
) -> Any:
    """Active participants who may be due at `now` and have no nudge logged for their local today.

    A coarse SQL pre-filter; `decide` has the final word.
    """
    dialect = session.get_bind().dialect.name
    local_date = _by_zone(zones, "local_date", Date())
    unacknowledged = exists().where(
        CrisisEvent.participant_id == Participant.id, CrisisEvent.kind == "crisis",
        CrisisEvent.acknowledged_at.is_(None),
    )
    logged_today = exists().where(
        NudgeLog.participant_id == Participant.id,
        NudgeLog.local_date == local_date,
        NudgeLog.kind == DAILY,
    )
    return (
        select(*columns)
        .where(
            Participant.status == ACTIVE,
            Participant.crisis_hold.is_(False),
            Participant.conv_state != "check_pending",  # no practice text while a risk question is open
            Participant.invalid_number.is_(False),
            or_(
                and_(Participant.paused_until.is_(None), Participant.nudges_paused.is_(False)),
                Participant.paused_until <= now,
            ),
            Participant.timezone.in_(list(zones)),
            Participant.nudge_time <= _by_zone(zones, "hhmm", String()),
            Participant.nudge_days.contains(_by_zone(zones, "weekday", String())),
            or_(Participant.admission_date.is_(None), Participant.admission_date <= local_date),
            or_(Participant.discharge_date.is_(None), _last_program_day(dialect) >= local_date),
            ~unacknowledged,
            ~logged_today,
        )
        .order_by(Participant.id)
    )


@dataclass
class _Plan:
    """What one chunk writes."""

    logs: list[dict[str, Any]] = field(default_factory=list)  # skip / backoff rows (no message)
    sends: list[dict[str, Any]] = field(default_factory=list)  # nudges: log + outbox + state
    notices: list[dict[str, Any]] = field(default_factory=list)  # counselor notices (outbox)
    notified: list[int] = field(default_factory=list)  # backoff_notified -> True
    unnotified: list[int] = field(default_factory=list)  # backoff_notified -> False


def plan_due_nudges(
    db: Database, library: Any, now: datetime, config: NudgeConfig | Mapping[str, Any] | None = None
) -> int:
    """Plan every nudge due at `now` (aware UTC); returns how many nudge texts were enqueued.

    Each chunk of participants is one transaction: NudgeLog rows, outbox rows and state changes
    commit together or not at all, so a tick killed mid-way leaves every participant either
    planned or untouched. On PostgreSQL participant rows are locked with SKIP LOCKED: concurrent
    ticks share the work instead of waiting, and the unique keys (NudgeLog per participant,
    local date and kind; outbox dedupe key) make a second nudge for a date impossible anyway.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    cfg = NudgeConfig.coerce(config)
    zones = db.run(lambda s: _zones_now(s, now))
    if not zones:
        return 0
    # One scan finds who may be due; each chunk then re-reads (and on PostgreSQL locks) its rows
    # by primary key in its own transaction, with the same filters.
    candidates = db.run(lambda s: list(s.scalars(_candidates_query(zones, now, s, columns=(Participant.id,)))))
    chunks = [candidates[i : i + cfg.chunk_size] for i in range(0, len(candidates), cfg.chunk_size)]

    def plan(ids: list[int]) -> int:
        return db.run(lambda s: _plan_chunk(s, library, now, cfg, zones, ids))

    if not db.is_postgres or len(chunks) < 2:
        # SQLite has one writer at a time: a second thread would only wait for the lock.
        return sum(plan(ids) for ids in chunks)
    # Two chunks at a time: one thread's Python work overlaps the other's database round trips.
    with ThreadPoolExecutor(max_workers=PLANNING_THREADS, thread_name_prefix="plan") as pool:
        return sum(pool.map(plan, chunks))


def _plan_chunk(
    session: Session, library: Any, now: datetime, cfg: NudgeConfig, zones: Mapping[str, _ZoneNow], ids: list[int]
) -> int:
    stmt = _candidates_query(zones, now, session).where(_id_in(session, Participant.id, ids))
    if session.get_bind().dialect.name == "postgresql":
        # Rows another tick (or an inbound text) holds are skipped: that tick plans them.
        stmt = stmt.with_for_update(skip_locked=True, of=Participant)
    rows = session.execute(stmt).all()
    if not rows:
        return 0
    plan = _decide_chunk(session, library, now, cfg, rows)
    return _write_plan(session, plan, now)


def _id_in(session: Session, column: SQLCoreOperations[int], ids: Sequence[int]) -> ColumnElement[bool]:
    """column IN ids; on PostgreSQL as = ANY(array): one parameter instead of thousands."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(cast(bindparam(None, list(ids), type_=ARRAY(Integer())), ARRAY(Integer())))
    return column.in_(list(ids))


def _schedule_of(row: Any) -> Schedule:
    return Schedule(
        timezone=row.timezone,
        nudge_time=row.nudge_time,
        nudge_days=row.nudge_days,
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        admission_date=row.admission_date,
        discharge_date=row.discharge_date,
        aftercare_days=row.aftercare_days or 0,
    )


def _decide_chunk(session: Session, library: Any, now: datetime, cfg: NudgeConfig, rows: Sequence[Any]) -> _Plan:
    plan = _Plan()
    decided: list[tuple[Any, Decision]] = []
    decisions: dict[tuple[Any, ...], Decision | None] = {}  # many participants share a schedule
    for row in rows:
        key = tuple(row[4:12])  # timezone .. aftercare_days (see _COLUMNS)
        if key not in decisions:
            try:
                decisions[key] = decide(_schedule_of(row), now, cfg.late_window)
            except ValueError:
                decisions[key] = None
        decision = decisions[key]
        if decision is None:
            log.error("participant %s has an unreadable nudge setting; no nudge", row.id)
            continue
        if decision.action is Action.SKIP:
            plan.logs.append(_log_row(row.id, decision.local_date, SKIPPED, None, now))
        elif decision.action is Action.SEND and not is_busy(row.conv_state, row.last_inbound_at, now):
            decided.append((row, decision))
    if not decided:
        return plan
    ids = [row.id for row, _ in decided]
    earliest = min(d.local_date for _, d in decided) - timedelta(days=HISTORY_DAYS)
    history, last_content = _nudge_history(session, ids, earliest)
    gains = _own_gains(session, ids)
    counselors = _counselor_phones(session, {row.counselor_id for row, _ in decided})
    skills = list(library.skills.values()) if isinstance(library.skills, Mapping) else list(library.skills)
    pools: dict[tuple[frozenset[str], bool], list[Any]] = {}
    for row, decision in decided:
        backoff = in_backoff(row.ignored_nudges, cfg.backoff_after)
        if row.backoff_notified and not backoff:
            plan.unnotified.append(row.id)  # they replied since: a later backoff is news again
        if backoff_rests_today(row.ignored_nudges, cfg.backoff_after, last_content.get(row.id)):
            plan.logs.append(_log_row(row.id, decision.local_date, BACKOFF, None, now))
            if not row.backoff_notified:
                plan.notified.append(row.id)
                plan.notices.append(_backoff_notice(library, cfg, row, decision, counselors, now))
            continue
        checkin = cfg.checkin_weekday is not None and decision.local_date.weekday() == cfg.checkin_weekday
        skill = None
        if not checkin:
            key = (frozenset(row.flags or ()), bool(row.discreet))
            if key not in pools:
                pools[key] = eligible_skills(skills, *key)
            skill = choose_skill(
                skills,
                pool=pools[key],
                own_gain=gains.get(row.id),
                history=history.get(row.id, ()),
                recent_block=cfg.recent_skills,
                offset=row.id,
            )
        body = nudge_body(library, skill, checkin=checkin, discreet=bool(row.discreet))
        plan.sends.append(
            {
                "participant_id": row.id,
                "phone": row.phone,
                "local_date": decision.local_date,
                "content": PRACTICE if skill is not None else CHECKIN,
                "skill_id": skill.id if skill is not None else None,
                "body": body,
            }
        )
    return plan


def _log_row(
    participant_id: int, local_date: date, content: str, skill_id: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "participant_id": participant_id,
        "local_date": local_date,
        "kind": DAILY,
        "content": content,
        "skill_id": skill_id,
        "outbox_id": None,
        "planned_at": now,
    }


def _backoff_notice(
    library: Any, cfg: NudgeConfig, row: Any, decision: Decision, counselors: Mapping[int, str], now: datetime
) -> dict[str, Any]:
    body = library.message(
        "counselor_backoff_notice",
        program=cfg.program_name,
        participant=participant_label(library, row.name),
        phone_tail=mask_phone(row.phone),
        count=row.ignored_nudges,
    )
    return outbox_values(
        to=counselors.get(row.counselor_id, ""),
        body=body,
        kind=NOTICE_KIND,
        now=now,
        counselor_id=row.counselor_id,
        dedupe_key=f"backoff:{row.id}:{decision.local_date.isoformat()}",
    )


def _in_chunks(values: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _nudge_history(session: Session, ids: Sequence[int], since: date) -> tuple[dict[int, list[str]], dict[int, str]]:
    """Per participant: recently nudged skill ids (most recent first) and the content of the latest row.

    Only the HISTORY_ROWS most recent rows per participant leave the database (a window function),
    and the chunk is selected by its id range (one index range scan, no long IN list).
    """
    wanted = set(ids)
    rank = func.row_number().over(partition_by=NudgeLog.participant_id, order_by=NudgeLog.local_date.desc())
    recent = (
        select(NudgeLog.participant_id, NudgeLog.skill_id, NudgeLog.content, rank.label("rn"))
        .where(
            NudgeLog.participant_id.between(min(ids), max(ids)),
            NudgeLog.local_date >= since,
            NudgeLog.kind == DAILY,
        )
        .subquery()
    )
    stmt = (
        select(recent.c.participant_id, recent.c.skill_id, recent.c.content)
        .where(recent.c.rn <= HISTORY_ROWS)
        .order_by(recent.c.participant_id, recent.c.rn)
    )
    history: dict[int, list[str]] = defaultdict(list)
    last: dict[int, str] = {}
    for pid, skill_id, content in session.execute(stmt):
        if pid not in wanted:
            continue
        last.setdefault(pid, content)
        if skill_id:
            history[pid].append(skill_id)
    return history, last


def _own_gains(session: Session, ids: Sequence[int]) -> dict[int, dict[str, float]]:
    """Per participant and skill: the average drop in distress (before - after) over rated sessions."""
    gains: dict[int, dict[str, float]] = defaultdict(dict)
    gain = func.avg(ExerciseSession.rating_before - ExerciseSession.rating_after)
    for part in _in_chunks(ids):
        stmt = (
            select(ExerciseSession.participant_id, ExerciseSession.skill_id, gain)
            .where(
                _id_in(session, ExerciseSession.participant_id, part),
                ExerciseSession.rating_before.is_not(None),
                ExerciseSession.rating_after.is_not(None),
            )
            .group_by(ExerciseSession.participant_id, ExerciseSession.skill_id)
        )
        for pid, skill_id, value in session.execute(stmt):
            gains[pid][skill_id] = float(value)
    return gains


def _counselor_phones(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(select(Counselor.id, Counselor.phone).where(Counselor.id.in_(wanted)))
    return {cid: phone for cid, phone in rows}


def _insert_new(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], conflict: Sequence[str], returning: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """INSERT rows, skipping those that hit the unique key `conflict`; returns `returning` of the new ones.

    PostgreSQL gets one statement per call (INSERT ... SELECT FROM unnest(arrays)): SQLAlchemy's
    multi-VALUES batches cost more client time there (query parsing) than the database work.
    SQLite gets the Core multi-VALUES insert. Both use ON CONFLICT DO NOTHING.
    """
    if not rows:
        return []
    table = model.__table__
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        columns = list(rows[0])
        first = rows[0]
        # Values shared by every row go as one parameter: adapting long arrays is the costly part.
        shared = [c for c in columns if all(r[c] == first[c] for r in rows)] if len(rows) > 1 else []
        varying = [c for c in columns if c not in shared] or columns[:1]
        shared = [c for c in shared if c not in varying]

        def sql_type(c: str) -> str:
            return str(table.c[c].type.compile(dialect=dialect))

        arrays = ", ".join(f"CAST(:{c} AS {sql_type(c)}[])" for c in varying)
        values = ", ".join(f"v.{c}" if c in varying else f"CAST(:{c} AS {sql_type(c)})" for c in columns)
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {values} "
            f"FROM unnest({arrays}) AS v({', '.join(varying)}) "
            f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
        )
        if returning:
            sql += f" RETURNING {', '.join(returning)}"
        params = {c: [r[c] for r in rows] for c in varying}
        params.update({c: first[c] for c in shared})
        result = session.execute(text(sql), params)
        return [tuple(r) for r in result] if returning else []
    return _sqlite_insert_new(session, table, rows, conflict, returning)


def _sqlite_insert_new(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], conflict: Sequence[str], returning: Sequence[str]
) -> list[tuple[Any, ...]]:
    # Straight to the sqlite3 cursor in the session's transaction, values converted by the
    # columns' own SQLAlchemy bind processors (so stored formats match the ORM's exactly), each
    # distinct value once: SQLAlchemy's per-value processing would triple the planning time.
    dialect = session.get_bind().dialect
    columns = list(rows[0])
    converters = []
    for c in columns:
        processor = table.c[c].type.bind_processor(dialect)
        memo: dict[Any, Any] = {}

        def convert(value: Any, processor: Any = processor, memo: dict[Any, Any] = memo) -> Any:
            if value is None or processor is None:
                return value
            key = json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else value
            if key not in memo:
                memo[key] = processor(value)
            return memo[key]

        converters.append(convert)
    per_statement = max(1, min(500, 30_000 // len(columns)))  # SQLite allows 32,766 parameters
    row_sql = "(" + ", ".join("?" * len(columns)) + ")"
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    tail = f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    if returning:
        tail += f" RETURNING {', '.join(returning)}"
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    found: list[tuple[Any, ...]] = []
    try:
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            params = [convert(r[c]) for r in part for c, convert in zip(columns, converters, strict=True)]
            cursor.execute(head + ", ".join([row_sql] * len(part)) + tail, params)
            if returning:
                found.extend(tuple(r) for r in cursor.fetchall())
    finally:
        cursor.close()
    return found


def _write_plan(session: Session, plan: _Plan, now: datetime) -> int:
    """Write one chunk's decisions; returns how many nudges were enqueued.

    Order matters for exactly-once: the nudge's outbox row is inserted first under its dedupe key
    (ON CONFLICT DO NOTHING tells us which ones we won), then the NudgeLog rows for those; an
    outbox row whose NudgeLog row lost a race (another tick logged a skip for that date) is
    deleted again before commit.
    """
    _insert_new(session, NudgeLog, plan.logs, _LOG_KEY)
    _insert_new(session, Outbox, plan.notices, ("dedupe_key",))
    for part in _in_chunks(plan.notified):
        session.execute(update(Participant).where(Participant.id.in_(part)).values(backoff_notified=True))
    for part in _in_chunks(plan.unnotified):
        session.execute(update(Participant).where(Participant.id.in_(part)).values(backoff_notified=False))
    if not plan.sends:
        return 0
    return _write_sends(session, plan.sends, now)


_LOG_KEY = ("participant_id", "local_date", "kind")


def _write_sends(session: Session, sends: Sequence[dict[str, Any]], now: datetime) -> int:
    by_key = {f"nudge:{s['participant_id']}:{s['local_date'].isoformat()}": s for s in sends}
    outbox_rows = [
        outbox_values(
            to=s["phone"], body=s["body"], kind=NUDGE_KIND, now=now, participant_id=s["participant_id"], dedupe_key=key
        )
        for key, s in by_key.items()
    ]
    won = {key: oid for oid, key in _insert_new(session, Outbox, outbox_rows, ("dedupe_key",), ("id", "dedupe_key"))}
    if not won:
        return 0
    logs = []
    for key, outbox_id in won.items():
        s = by_key[key]
        row = _log_row(s["participant_id"], s["local_date"], s["content"], s["skill_id"], now)
        row["outbox_id"] = outbox_id
        logs.append(row)
    logged = {oid for (oid,) in _insert_new(session, NudgeLog, logs, _LOG_KEY, ("outbox_id",))}
    orphans = [oid for oid in won.values() if oid not in logged]
    for part in _in_chunks(orphans):
        session.execute(Outbox.__table__.delete().where(Outbox.id.in_(part)))
    sent = [by_key[key] for key, oid in won.items() if oid in logged]
    _mark_nudged(session, sent)
    return len(sent)


def _mark_nudged(session: Session, sends: Sequence[dict[str, Any]]) -> None:
    """Set the conversation state a reply is read in, and count the nudge as unanswered so far."""
    if not sends:
        return
    ids = [s["participant_id"] for s in sends]
    states = ["checkin" if s["content"] == CHECKIN else "nudge" for s in sends]
    data = [{"skill_id": s["skill_id"]} if s["skill_id"] else {} for s in sends]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "UPDATE participants AS p SET conv_state = v.state, conv_data = CAST(v.data AS json), "
                "ignored_nudges = p.ignored_nudges + 1 "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:states AS varchar[]), CAST(:data AS text[])) "
                "AS v(id, state, data) WHERE p.id = v.id"
            ),
            {"ids": ids, "states": states, "data": [json.dumps(d) for d in data]},
        )
        return
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            "UPDATE participants SET conv_state = ?, conv_data = ?, ignored_nudges = ignored_nudges + 1 WHERE id = ?",
            [(st, json.dumps(d), i) for i, st, d in zip(ids, states, data, strict=True)],
        )
    finally:
        cursor.close()
