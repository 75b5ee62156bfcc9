"""Program outcome reports: plain SQLAlchemy queries over one counselor's clients (or all clients),
in a window of whole ISO weeks, with the week grouping and the medians done in Python so the
same code runs on SQLite and PostgreSQL. No Flask here: the dashboard passes the session, the
counselor filter, the window and `now`.

Window: `report_window(now, weeks)` starts on the Monday, 00:00 UTC, of the ISO week `weeks - 1`
weeks before the one `now` falls in, and ends at `now` (both ends included); so `weeks=12` is this
(partial) week and the 11 whole weeks before it. Weeks are ISO 8601 weeks in UTC, labelled
`2026-W48`. "The clients" are the participants of the counselor (Participant.counselor_id), or every
participant for an admin (counselor_id None); rows not linked to a participant (texts and events
from unknown numbers) are never counted.

Figures:
- participants_by_status / active_participants: the clients by status as of now (not windowed);
  active = status "active".
- texts_per_week: inbound texts (Message.direction "in") from the clients, by the week of
  Message.created_at. Rows whose text was blanked by retention still count; an erased client's
  texts are gone and do not.
- exercises_started / exercises_finished: ExerciseSession rows of the clients by the week of
  started_at; started counts every session (any status), finished those with status "completed".
- skill_change: per skill, over the clients' sessions started in the window that have both a
  before and an after rating (0-10): the mean of (after - before), with n = the number of such
  sessions, and the mean before and after. Negative means distress went down.
- nudges_sent / nudges_replied / nudge_reply_rate: NudgeLog rows of the clients by the week of
  planned_at whose content is a practice prompt or a check-in (skipped and backoff days are never
  sent) and whose outbox row was delivered to Twilio (Outbox.status "sent"). An erased client's
  outbox rows are deleted, so their practice and check-in nudges count as sent. Replied = sent
  with replied_at set (the client texted back after it). Rate = replied / sent, in percent, with
  n = sent.
- opt_outs: clients whose Participant.opted_out_at falls in the window, by its week.
- crisis_events / check_events: CrisisEvent rows of the clients of kind "crisis" and "check"
  by the week of created_at ("lapse" notes are not counted).
- ack_minutes: for crisis events (kind "crisis") created in the window and acknowledged, the
  minutes from created_at to acknowledged_at; reported as the median with n, overall and by week.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .models import (
    ACTIVE,
    SENT,
    CrisisEvent,
    ExerciseSession,
    Message,
    NudgeLog,
    Outbox,
    Participant,
)

DEFAULT_WEEKS = 12
MIN_WEEKS = 1
MAX_WEEKS = 104

SENT_NUDGE_CONTENTS = ("practice", "checkin")  # bot.nudges.SENT_CONTENTS
ERASED = "erased"  # bot.privacy.ERASED

CSV_HEADER = ("figure", "key", "value", "n", "label")

Row = TypeVarTuple("Row")


# --- the window ----------------------------------------------------------------------------------


def clamp_weeks(weeks: int | None) -> int:
    """The number of weeks asked for, within MIN_WEEKS..MAX_WEEKS (DEFAULT_WEEKS when missing)."""
    if weeks is None:
        return DEFAULT_WEEKS
    return max(MIN_WEEKS, min(MAX_WEEKS, weeks))


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week `moment` falls in."""
    day = moment.astimezone(UTC).date()
    return datetime.combine(day - timedelta(days=day.weekday()), time(0), tzinfo=UTC)


def week_label(moment: datetime) -> str:
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def report_window(now: datetime, weeks: int) -> tuple[datetime, datetime]:
    """[start, now]: `weeks` ISO weeks ending with the current (partial) one."""
    return week_start(now) - timedelta(weeks=clamp_weeks(weeks) - 1), now


def week_labels(start: datetime, end: datetime) -> list[str]:
    labels = []
    monday = week_start(start)
    while monday <= end:
        labels.append(week_label(monday))
        monday += timedelta(weeks=1)
    return labels


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillChange:
    skill_id: str
    title: str
    n: int
    mean_before: float
    mean_after: float
    mean_change: float  # mean of (after - before)


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    counselor_id: int | None
    weeks: list[str]
    by_status: dict[str, int]
    texts: dict[str, int]
    exercises_started: dict[str, int]
    exercises_finished: dict[str, int]
    skill_changes: list[SkillChange]
    nudges_sent: dict[str, int]
    nudges_replied: dict[str, int]
    opt_outs: dict[str, int]
    crisis_events: dict[str, int]
    check_events: dict[str, int]
    ack_minutes: list[float]  # sorted
    ack_minutes_by_week: dict[str, list[float]] = field(default_factory=dict)

    @property
    def active(self) -> int:
        return self.by_status.get(ACTIVE, 0)

    @property
    def nudge_reply_rate(self) -> float | None:
        """Percent of nudges sent that got a reply; None when none was sent."""
        sent = sum(self.nudges_sent.values())
        return None if sent == 0 else 100.0 * sum(self.nudges_replied.values()) / sent

    @property
    def ack_median(self) -> float | None:
        return statistics.median(self.ack_minutes) if self.ack_minutes else None

    def ack_median_by_week(self) -> dict[str, float | None]:
        return {w: (statistics.median(v) if (v := self.ack_minutes_by_week.get(w)) else None) for w in self.weeks}

    def ack_n_by_week(self) -> dict[str, int]:
        return {w: len(self.ack_minutes_by_week.get(w, [])) for w in self.weeks}


def _clients(query: Select[*Row], participant_id: Any, counselor_id: int | None) -> Select[*Row]:
    """Limit `query` to rows of the clients (inner join: rows of no participant drop out)."""
    query = query.join(Participant, Participant.id == participant_id)
    if counselor_id is not None:
        query = query.where(Participant.counselor_id == counselor_id)
    return query


def _by_week(moments: Iterable[datetime], weeks: Sequence[str]) -> dict[str, int]:
    counts = Counter(week_label(m) for m in moments)
    return {w: counts.get(w, 0) for w in weeks}


def build_report(
    session: Session,
    *,
    counselor_id: int | None,
    start: datetime,
    end: datetime,
    now: datetime,
    skill_titles: Mapping[str, str] | None = None,
) -> Report:
    """Every figure (see the module docstring) for the clients of `counselor_id` (None: all).

    The window is [start, end], cut at `now` (nothing later is counted); statuses are as of now."""
    end = min(end, now)
    weeks = week_labels(start, end)
    titles = skill_titles or {}

    def scoped(query: Select[*Row], participant_id: Any, moment: Any) -> Select[*Row]:
        return _clients(query, participant_id, counselor_id).where(moment >= start, moment <= end)

    status_query = select(Participant.status, func.count(Participant.id)).group_by(Participant.status)
    if counselor_id is not None:
        status_query = status_query.where(Participant.counselor_id == counselor_id)
    by_status = {status: int(count) for status, count in sorted(session.execute(status_query).all())}

    texts = _by_week(session.scalars(scoped(
        select(Message.created_at).where(Message.direction == "in"), Message.participant_id, Message.created_at)),
        weeks)

    sessions = session.execute(scoped(
        select(ExerciseSession.started_at, ExerciseSession.status, ExerciseSession.skill_id,
               ExerciseSession.rating_before, ExerciseSession.rating_after),
        ExerciseSession.participant_id, ExerciseSession.started_at)).all()
    started = _by_week((r.started_at for r in sessions), weeks)
    finished = _by_week((r.started_at for r in sessions if r.status == "completed"), weeks)
    ratings: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in sessions:
        if r.rating_before is not None and r.rating_after is not None:
            ratings[r.skill_id].append((r.rating_before, r.rating_after))
    changes = [
        SkillChange(
            skill_id=skill_id, title=titles.get(skill_id, skill_id), n=len(pairs),
            mean_before=statistics.fmean(b for b, _ in pairs), mean_after=statistics.fmean(a for _, a in pairs),
            mean_change=statistics.fmean(a - b for b, a in pairs),
        )
        for skill_id, pairs in sorted(ratings.items())
    ]

    nudges = session.execute(scoped(
        select(NudgeLog.planned_at, NudgeLog.replied_at, NudgeLog.outbox_id, Outbox.status.label("outbox_status"),
               Participant.status.label("participant_status"))
        .outerjoin(Outbox, Outbox.id == NudgeLog.outbox_id)
        .where(NudgeLog.content.in_(SENT_NUDGE_CONTENTS)),
        NudgeLog.participant_id, NudgeLog.planned_at)).all()
    sent = [n for n in nudges
            if n.outbox_status == SENT or (n.outbox_id is None and n.participant_status == ERASED)]

    opt_out_query = select(Participant.opted_out_at).where(Participant.opted_out_at >= start,
                                                           Participant.opted_out_at <= end)
    if counselor_id is not None:
        opt_out_query = opt_out_query.where(Participant.counselor_id == counselor_id)
    opt_outs = _by_week(session.scalars(opt_out_query), weeks)

    events = session.execute(scoped(
        select(CrisisEvent.kind, CrisisEvent.created_at, CrisisEvent.acknowledged_at)
        .where(CrisisEvent.kind.in_(("crisis", "check"))),
        CrisisEvent.participant_id, CrisisEvent.created_at)).all()
    ack_by_week: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e.kind == "crisis" and e.acknowledged_at is not None:
            ack_by_week[week_label(e.created_at)].append((e.acknowledged_at - e.created_at).total_seconds() / 60)

    return Report(
        start=start, end=end, counselor_id=counselor_id, weeks=weeks, by_status=by_status,
        texts=texts, exercises_started=started, exercises_finished=finished, skill_changes=changes,
        nudges_sent=_by_week((n.planned_at for n in sent), weeks),
        nudges_replied=_by_week((n.planned_at for n in sent if n.replied_at is not None), weeks),
        opt_outs=opt_outs,
        crisis_events=_by_week((e.created_at for e in events if e.kind == "crisis"), weeks),
        check_events=_by_week((e.created_at for e in events if e.kind == "check"), weeks),
        ack_minutes=sorted(m for v in ack_by_week.values() for m in v),
        ack_minutes_by_week=dict(ack_by_week),
    )


# --- output --------------------------------------------------------------------------------------


def _one(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def report_rows(report: Report) -> Iterator[tuple[str, str, str, str, str]]:
    """The report in long format: (figure, key, value, n, label). Weekly figures have one row per
    week (key `2026-W48`) and a `total` row; `n` is the number a mean, rate or median rests on."""
    yield "window", "start", report.start.isoformat(), "", "first moment counted (UTC)"
    yield "window", "end", report.end.isoformat(), "", "last moment counted (UTC)"
    yield "active_participants", "now", str(report.active), "", "clients with status active now"
    for status, count in report.by_status.items():
        yield "participants_by_status", status, str(count), "", "clients with this status now"

    def weekly(figure: str, series: Mapping[str, int], label: str) -> Iterator[tuple[str, str, str, str, str]]:
        for week, count in series.items():
            yield figure, week, str(count), "", label
        yield figure, "total", str(sum(series.values())), "", label

    yield from weekly("texts_per_week", report.texts, "texts received from clients")
    yield from weekly("exercises_started", report.exercises_started, "exercises started (any status)")
    yield from weekly("exercises_finished", report.exercises_finished, "exercises completed")
    for change in report.skill_changes:
        yield "skill_change", change.skill_id, f"{change.mean_change:.2f}", str(change.n), change.title
        yield "skill_rating_before", change.skill_id, f"{change.mean_before:.2f}", str(change.n), change.title
        yield "skill_rating_after", change.skill_id, f"{change.mean_after:.2f}", str(change.n), change.title
    yield from weekly("nudges_sent", report.nudges_sent, "practice and check-in nudges delivered")
    yield from weekly("nudges_replied", report.nudges_replied, "nudges sent that got a reply")
    sent = sum(report.nudges_sent.values())
    yield "nudge_reply_rate", "total", _one(report.nudge_reply_rate), str(sent), "percent of nudges sent replied to"
    yield from weekly("opt_outs", report.opt_outs, "clients who opted out")
    yield from weekly("crisis_events", report.crisis_events, "crisis events")
    yield from weekly("check_events", report.check_events, "check events")
    ack_n = report.ack_n_by_week()
    for week, median in report.ack_median_by_week().items():
        n = ack_n[week]
        yield "ack_median_minutes", week, _one(median), str(n), "median minutes to acknowledge a crisis event"
    yield ("ack_median_minutes", "total", _one(report.ack_median), str(len(report.ack_minutes)),
           "median minutes to acknowledge a crisis event")


def chart_data(report: Report) -> dict[str, Any]:
    """The numbers the page's charts draw (and its tables show), JSON-ready."""
    return {
        "weeks": report.weeks,
        "status": {"labels": list(report.by_status), "values": list(report.by_status.values())},
        "texts": list(report.texts.values()),
        "started": list(report.exercises_started.values()),
        "finished": list(report.exercises_finished.values()),
        "skills": {"labels": [c.title for c in report.skill_changes],
                   "values": [round(c.mean_change, 2) for c in report.skill_changes],
                   "n": [c.n for c in report.skill_changes]},
        "sent": list(report.nudges_sent.values()),
        "replied": list(report.nudges_replied.values()),
        "opt_outs": list(report.opt_outs.values()),
        "crisis": list(report.crisis_events.values()),
        "check": list(report.check_events.values()),
        "ack": [None if m is None else round(m, 1) for m in report.ack_median_by_week().values()],
    }


# --- CSV -----------------------------------------------------------------------------------------

# A cell a spreadsheet would read as a formula starts with one of these (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell as text, with a leading apostrophe on anything a spreadsheet would run as a formula
    (a client's text is theirs to write, and may be opened in a spreadsheet)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, dict | list) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue()


def report_csv(report: Report) -> str:
    """The report in long format, numbers left as they are (only labels could need escaping)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for figure, key, value, n, label in report_rows(report):
        writer.writerow([figure, key, value, n, csv_cell(label)])
    return buffer.getvalue()


# Columns put first in each section of a client's export (the rest follow in table order).
_EXPORT_LEADING: dict[str, tuple[str, ...]] = {
    "messages": ("created_at", "direction", "kind", "body", "status"),
    "outbox": ("created_at", "kind", "status", "body", "sent_at"),
    "exercise_sessions": ("started_at", "skill_id", "status", "rating_before", "rating_after", "completed_at"),
    "risk_events": ("created_at", "kind", "level", "categories", "answer", "acknowledged_at", "acknowledged_by",
                    "ack_outcome", "ack_note"),
    "nudges": ("local_date", "content", "skill_id", "planned_at", "replied_at"),
    "mood_checkins": ("created_at", "rating"),
    "audit_log": ("created_at", "actor", "action", "detail"),
}


def export_rows(data: Mapping[str, Any]) -> Iterator[list[Any]]:
    """A client's export (`bot.privacy.export`) as CSV rows: per table a row with its name, a header
    row and one row per record, then an empty row."""
    for section, content in data.items():
        records: list[Mapping[str, Any]] = content if isinstance(content, list) else [content]
        yield [section]
        keys = list(dict.fromkeys(k for r in records for k in r))
        leading = [k for k in _EXPORT_LEADING.get(section, ()) if k in keys]
        columns = leading + [k for k in keys if k not in leading]
        if columns:
            yield columns
        for record in records:
            yield [record.get(k) for k in columns]
        yield []


def export_csv(data: Mapping[str, Any]) -> str:
    return to_csv(export_rows(data))
