"""A counselor's clients at a glance, and enrolling many at once from a CSV file.

No Flask here: the dashboard's clients pages (`bot/dashboard/clients.py`) call these with a
session, the signed-in counselor and the injected clock.

The list is three queries however many clients there are: the clients (with their counselor),
their open crisis events, and their ratings (the latest of each client plus the last 14 days).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, or_, select, true, union_all
from sqlalchemy.orm import Session

from .conversation import allowed_time
from .enrollment import (
    EnrollmentError,
    EnrollmentRequest,
    check_time,
    check_zone,
    enroll,
    normalise_phone,
    parse_days,
)
from .models import (
    ACTIVE,
    DISCHARGED,
    INVITED,
    OPTED_OUT,
    Counselor,
    CrisisEvent,
    ExerciseSession,
    MoodCheckin,
    Participant,
)
from .sms import mask_phone
from .vocabulary import FLAGS

# --- the list ------------------------------------------------------------------------------------

PAUSED = "paused"
STATUS_LABELS = {INVITED: "invited", ACTIVE: "active", PAUSED: "paused", OPTED_OUT: "opted out",
                 DISCHARGED: "discharged"}

TREND_DAYS = 14
# A change of at least this much (on the 0-10 scales) against the earlier average is a trend.
TREND_STEP = 1.0

# What a rating measures. Check-ins rate mood (0 = very low: higher is better); a skill's ratings
# are how strong the feeling is (0 = calm: lower is better), before or after the skill. A trend only
# compares a rating with earlier ratings of the same kind: a feeling before a skill is strong by
# nature, so mixing kinds would show a change that is not there.
RATING_KINDS = {"mood": "mood check-in", "before": "feeling before a skill", "after": "feeling after a skill"}
_HIGHER_IS_BETTER = {"mood": True, "before": False, "after": False}


def status_of(participant: Participant, now: datetime) -> str:
    """invited, active, paused (active but nudges held), opted_out or discharged."""
    if participant.status == ACTIVE and (participant.nudges_paused or participant.crisis_hold or (
            participant.paused_until is not None and participant.paused_until > now)):
        return PAUSED
    return participant.status


def relative_time(moment: datetime | None, now: datetime) -> str:
    """ "just now", "5 min ago", "3 h ago", "2 d ago", then the date."""
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 30 * 86400:
        return f"{int(seconds // 86400)} d ago"
    return moment.date().isoformat()


@dataclass(frozen=True)
class Rating:
    value: int
    kind: str  # a RATING_KINDS key
    at: datetime

    @property
    def label(self) -> str:
        return RATING_KINDS[self.kind]


@dataclass(frozen=True)
class ClientRow:
    id: int
    name: str | None
    masked_phone: str
    status: str  # a STATUS_LABELS key
    counselor: str
    last_inbound_at: datetime | None
    rating: Rating | None
    trend: str  # "better", "worse", "steady" or "—"
    crisis_event_id: int | None  # the oldest unacknowledged crisis event
    open_crises: int

    @property
    def display_name(self) -> str:
        return self.name or self.masked_phone

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def urgent(self) -> bool:
        return self.crisis_event_id is not None


def search_filter(text: str) -> ColumnElement[bool]:
    """A name containing `text` (any case), or a number ending in its digits when it has 4 or more."""
    text = text.strip()
    conditions: list[ColumnElement[bool]] = [func.lower(Participant.name).contains(text.lower(), autoescape=True)]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 4:
        conditions.append(Participant.phone.endswith(digits, autoescape=True))
    return or_(*conditions)


def client_rows(session: Session, *, counselor_id: int | None, now: datetime, search: str = "") -> list[ClientRow]:
    """The clients of one counselor (None: everyone's), open crises first (the longest waiting
    first), then by name."""
    where: list[ColumnElement[bool]] = [true()]
    if counselor_id is not None:
        where.append(Participant.counselor_id == counselor_id)
    if search.strip():
        where.append(search_filter(search))
    ids = select(Participant.id).where(*where).scalar_subquery()

    people = session.execute(select(Participant, Counselor.name)
                             .join(Counselor, Counselor.id == Participant.counselor_id).where(*where)).all()
    crises = {pid: (first_id, count) for pid, first_id, count in session.execute(
        select(CrisisEvent.participant_id, func.min(CrisisEvent.id), func.count(CrisisEvent.id))
        .where(CrisisEvent.kind == "crisis", CrisisEvent.acknowledged_at.is_(None), CrisisEvent.participant_id.in_(ids))
        .group_by(CrisisEvent.participant_id))}
    ratings = _ratings(session, ids, since=now - timedelta(days=TREND_DAYS))

    rows = []
    for participant, counselor_name in people:
        history = ratings.get(participant.id, [])
        first_crisis, open_count = crises.get(participant.id, (None, 0))
        rows.append(ClientRow(
            id=participant.id, name=participant.name, masked_phone=mask_phone(participant.phone),
            status=status_of(participant, now), counselor=counselor_name, last_inbound_at=participant.last_inbound_at,
            rating=history[0] if history else None, trend=trend(history), crisis_event_id=first_crisis,
            open_crises=int(open_count)))
    rows.sort(key=lambda r: (not r.urgent, r.crisis_event_id or 0, (r.name or "").casefold() or "\uffff",
                             r.masked_phone, r.id))
    return rows


def _ratings(session: Session, ids: Any, *, since: datetime) -> dict[int, list[Rating]]:
    """Per client, newest first: the latest rating of any age, then every rating since `since`."""
    es = ExerciseSession
    # `seq` orders a skill's two ratings when they share a time (a rating given inside a step).
    parts = [
        select(es.participant_id.label("pid"), es.rating_before.label("rating"), es.started_at.label("at"),
               literal("before").label("kind"), literal(0).label("seq"))
        .where(es.rating_before.is_not(None), es.participant_id.in_(ids)),
        select(es.participant_id, es.rating_after, func.coalesce(es.completed_at, es.started_at),
               literal("after"), literal(1))
        .where(es.rating_after.is_not(None), es.participant_id.in_(ids)),
        select(MoodCheckin.participant_id, MoodCheckin.rating, MoodCheckin.created_at, literal("mood"), literal(0))
        .where(MoodCheckin.participant_id.in_(ids)),
    ]
    every = union_all(*parts).subquery()
    order = func.row_number().over(partition_by=every.c.pid, order_by=(every.c.at.desc(), every.c.seq.desc()))
    ranked = select(every, order.label("rank")).subquery()
    query: Select[Any] = (select(ranked.c.pid, ranked.c.rating, ranked.c.at, ranked.c.kind)
                          .where(or_(ranked.c.rank == 1, ranked.c.at >= since))
                          .order_by(ranked.c.pid, ranked.c.rank))
    history: dict[int, list[Rating]] = defaultdict(list)
    for pid, rating, at, kind in session.execute(query):
        history[pid].append(Rating(int(rating), str(kind), at))
    return history


def trend(history: Sequence[Rating]) -> str:
    """The latest rating against the average of the earlier ones of its kind in the window:
    "better", "worse", "steady", or "—" when there is nothing to compare with."""
    if not history:
        return "—"
    latest, earlier = history[0], [r.value for r in history[1:] if r.kind == history[0].kind]
    if not earlier:
        return "—"
    change = latest.value - sum(earlier) / len(earlier)
    if not _HIGHER_IS_BETTER[latest.kind]:
        change = -change
    if change >= TREND_STEP:
        return "better"
    if change <= -TREND_STEP:
        return "worse"
    return "steady"


# --- enrollment checks ---------------------------------------------------------------------------

FLAG_LABELS = {
    "heart_condition": "Heart condition",
    "lung_condition": "Lung condition (e.g. asthma, COPD)",
    "pregnancy": "Pregnancy",
    "eating_disorder": "Eating disorder (current or past)",
    "cleared_cold_water": "Medically cleared for cold water",
    "cleared_intense_exercise": "Medically cleared for intense exercise",
    "trauma_sensitive": "Trauma history (no guided imagery)",
}


def flag_label(flag: str) -> str:
    return FLAG_LABELS.get(flag, flag.replace("_", " ").capitalize())


COMMON_ZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
    "America/Anchorage", "Pacific/Honolulu", "America/Puerto_Rico", "America/Halifax", "America/Toronto",
    "America/Vancouver", "Europe/London", "Europe/Dublin", "Europe/Berlin", "Australia/Sydney",
)

DAY_CHOICES = (("mon", "Mon"), ("tue", "Tue"), ("wed", "Wed"), ("thu", "Thu"), ("fri", "Fri"), ("sat", "Sat"),
               ("sun", "Sun"))


NAME_MAX = 120  # Participant.name


def problems(request: EnrollmentRequest, region: str) -> dict[str, str]:
    """Every mistake in a request that needs no database, by `EnrollmentRequest` field (the
    database ones, an unknown counselor or a number already enrolled, come from `enroll`)."""
    found: dict[str, str] = {}

    def check(name: str, work: Any) -> Any:
        try:
            return work()
        except EnrollmentError as exc:
            found[exc.field or name] = str(exc)
            return None

    check("phone", lambda: normalise_phone(request.phone, region))
    if len((request.name or "").strip()) > NAME_MAX:
        found["name"] = f"the name is longer than {NAME_MAX} characters"
    check("timezone", lambda: check_zone(request.timezone))
    check("nudge_days", lambda: parse_days(request.nudge_days))
    times = [check(name, partial(check_time, getattr(request, name), name))
             for name in ("nudge_time", "quiet_start", "quiet_end")]
    if None not in times and not allowed_time(*times):
        found["nudge_time"] = (f"the nudge time {times[0]} is outside the hours texts are allowed "
                               f"({times[1]}-{times[2]})")
    unknown = sorted(set(request.flags) - set(FLAGS))
    if unknown:
        found["flags"] = f"unknown flag(s) {', '.join(unknown)}; known: {', '.join(FLAGS)}"
    if request.admission_date and request.discharge_date and request.discharge_date < request.admission_date:
        found["discharge_date"] = "the discharge date is before the admission date"
    if not 0 <= request.aftercare_days <= 365:
        found["aftercare_days"] = "aftercare days must be between 0 and 365"
    return found


# --- CSV import ----------------------------------------------------------------------------------

MAX_BYTES = 1_000_000
# Every row is enrolled inside one request and one transaction (about five statements a row):
# 500 keeps even a slow database well inside a web worker's timeout, and is more than a program's roll.
MAX_ROWS = 500
COLUMNS = ("phone", "name", "timezone", "nudge_time", "nudge_days", "quiet_start", "quiet_end", "admission_date",
           "discharge_date", "aftercare_days", "discreet", "flags")
ADMIN_COLUMNS = (*COLUMNS, "counselor")
SAMPLE_CSV = (
    ",".join(COLUMNS) + "\r\n"
    + "(202) 555-0143,Alex Doe,America/New_York,10:00,mon-fri,08:00,21:00,2026-11-02,2026-12-18,30,no,\r\n"
    + "202-555-0178,Sam Roe,America/Chicago,18:30,daily,09:00,20:00,,,0,yes,heart_condition;pregnancy\r\n"
)
_DEFAULTS = {"timezone": "America/New_York", "nudge_time": "10:00", "nudge_days": "daily", "quiet_start": "08:00",
             "quiet_end": "21:00", "aftercare_days": "0"}
_TRUE = {"1", "y", "yes", "true", "x", "on"}
_FALSE = {"", "0", "n", "no", "false", "off"}


class CsvRefused(ValueError):
    """The file as a whole cannot be read (not CSV, too big, bad header); nothing was imported."""


@dataclass(frozen=True)
class CsvRow:
    number: int  # the row as a spreadsheet numbers it (the header is row 1)
    cells: dict[str, str]
    extra: bool = False  # filled cells beyond the header's columns


def _decode(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        raise CsvRefused("This is a spreadsheet workbook, not CSV: save it as “CSV UTF-8 (comma delimited)” first.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        # UTF-8 with or without the BOM Excel writes; Excel's plain "CSV" on Windows is cp1252.
        encodings = ("utf-8-sig", "cp1252")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text or re.search(r"[\x01-\x08\x0e-\x1f]", text):
            break
        return text
    raise CsvRefused("This file is not a text CSV file. Save the spreadsheet as “CSV UTF-8 (comma delimited)”.")


def _column(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def read_csv(data: bytes, *, allow_counselor: bool) -> list[CsvRow]:
    """The client rows of an uploaded file, or CsvRefused saying what is wrong with the file."""
    if len(data) > MAX_BYTES:
        raise CsvRefused(f"The file is larger than {MAX_BYTES // 1_000_000} MB: split it into smaller files.")
    text = _decode(data)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    if not first_line:
        raise CsvRefused("The file is empty.")
    # Excel writes ";" (or a tab for "Unicode text") where the decimal mark is a comma.
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[CsvRow] = []
    header: list[str] | None = None
    allowed = ADMIN_COLUMNS if allow_counselor else COLUMNS
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [_column(c) for c in cells]
                _check_header(header, allowed, allow_counselor)
                continue
            if len(rows) >= MAX_ROWS:
                raise CsvRefused(f"The file has more than {MAX_ROWS:,} clients: split it into smaller files.")
            named = {name: value.strip() for name, value in zip(header, cells, strict=False) if name}
            extra = any(c.strip() for c in cells[len(header):])
            rows.append(CsvRow(reader.line_num, named, extra))
    except csv.Error as exc:
        raise CsvRefused(f"This file is not valid CSV near line {reader.line_num}: {exc}.") from None
    if not rows:
        raise CsvRefused("The file has a header but no clients.")
    return rows


def _check_header(header: list[str], allowed: Sequence[str], allow_counselor: bool) -> None:
    named = [h for h in header if h]
    if "phone" not in named:
        shown = ", ".join(h for h in named[:5]) or "nothing"
        raise CsvRefused(f"The first row must be the header with a phone column (found {shown}). "
                         f"Columns: {', '.join(allowed)}.")
    if "counselor" in named and not allow_counselor:
        raise CsvRefused("Only an admin may assign clients to counselors: remove the counselor column.")
    unknown = [h for h in named if h not in allowed]
    if unknown:
        raise CsvRefused(f"Unknown column(s) {', '.join(unknown)}. Columns: {', '.join(allowed)}.")
    doubled = sorted({h for h in named if named.count(h) > 1})
    if doubled:
        raise CsvRefused(f"Column(s) {', '.join(doubled)} appear more than once.")


def _date(text: str, name: str, errors: dict[str, str]) -> date | None:
    if not text:
        return None
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    errors[name] = f"{name.replace('_', ' ')} {text!r} is not a date (YYYY-MM-DD)"
    return None


def _time_cell(text: str) -> str:
    # A spreadsheet may write 10:00 back as 10:00:00.
    match = re.fullmatch(r"(\d{1,2}:\d{2}):00", text)
    return match.group(1) if match else text


def row_request(row: CsvRow, *, counselor_email: str) -> tuple[EnrollmentRequest, dict[str, str]]:
    """An enrollment request from a CSV row, and the cells that could not be read."""
    cells = {**_DEFAULTS, **{k: v for k, v in row.cells.items() if v}}
    errors: dict[str, str] = {}
    if not cells.get("phone"):
        errors["phone"] = "the phone number is missing"
    if row.extra:
        errors["row"] = "the row has more cells than the header has columns"
    try:
        aftercare = int(cells["aftercare_days"])
    except ValueError:
        errors["aftercare_days"] = f"aftercare days {cells['aftercare_days']!r} is not a whole number"
        aftercare = 0
    discreet = cells.get("discreet", "").lower()
    if discreet not in _TRUE | _FALSE:
        errors["discreet"] = f"discreet {cells['discreet']!r} is not yes or no"
    flags = tuple(_column(f) for f in re.split(r"[;|,]", cells.get("flags", "")) if f.strip())
    request = EnrollmentRequest(
        phone=cells.get("phone", ""), counselor_email=cells.get("counselor") or counselor_email,
        name=cells.get("name"), timezone=cells["timezone"], nudge_time=_time_cell(cells["nudge_time"]),
        quiet_start=_time_cell(cells["quiet_start"]), quiet_end=_time_cell(cells["quiet_end"]), flags=flags,
        discreet=discreet in _TRUE, admission_date=_date(cells.get("admission_date", ""), "admission_date", errors),
        discharge_date=_date(cells.get("discharge_date", ""), "discharge_date", errors), aftercare_days=aftercare,
        nudge_days=cells["nudge_days"],
    )
    return request, errors


@dataclass
class RowResult:
    number: int
    phone: str  # masked
    errors: list[str] = field(default_factory=list)
    participant_id: int | None = None
    outbox_id: int | None = None


@dataclass
class ImportReport:
    rows: list[RowResult]

    @property
    def ok(self) -> bool:
        return all(not r.errors for r in self.rows)

    @property
    def failed(self) -> list[RowResult]:
        return [r for r in self.rows if r.errors]

    @property
    def outbox_ids(self) -> list[int]:
        return [r.outbox_id for r in self.rows if r.outbox_id is not None]


class ImportRefused(Exception):
    """Some row cannot be enrolled: raised so the caller's transaction rolls back, whole."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{len(report.failed)} of {len(report.rows)} rows refused")
        self.report = report


def import_clients(session: Session, library: Any, rows: Iterable[CsvRow], *, counselor_email: str, region: str,
                   program_name: str, now: datetime, actor: str) -> ImportReport:
    """Check every row, then enroll them all; ImportRefused (with the per-row report) when any row
    cannot be enrolled, so the caller's transaction writes none of them."""
    checked: list[tuple[RowResult, EnrollmentRequest, str | None]] = []
    first_row: dict[str, int] = {}
    for row in rows:
        request, errors = row_request(row, counselor_email=counselor_email)
        for name, message in problems(request, region).items():
            errors.setdefault(name, message)
        phone = _phone_or_none(request.phone, region)
        if phone in first_row:
            errors["phone"] = f"the same number as row {first_row[phone]}"
        elif phone is not None:
            first_row[phone] = row.number
        result = RowResult(row.number, mask_phone(phone or request.phone.strip() or None), list(errors.values()))
        checked.append((result, request, phone))
    report = ImportReport([result for result, _, _ in checked])

    enrolled = set(session.scalars(select(Participant.phone).where(Participant.phone.in_(first_row))))
    counselors = {email: active for email, active in session.execute(select(Counselor.email, Counselor.active))}
    for result, request, phone in checked:
        if phone in enrolled:
            result.errors.append(f"{mask_phone(phone)} is already enrolled")
        email = request.counselor_email.strip().lower()
        if not counselors.get(email):
            result.errors.append(f"no active counselor with email {email}")
    if not report.ok:
        raise ImportRefused(report)

    for result, request, _ in checked:
        try:
            participant, outbox_id = enroll(session, library, request, now=now, region=region,
                                            program_name=program_name, actor=actor)
        except EnrollmentError as exc:  # checked above; a number enrolled meanwhile lands here
            result.errors.append(str(exc))
            continue
        result.participant_id, result.outbox_id = participant.id, outbox_id
        session.flush()
        session.expunge_all()  # written: a session holding thousands of rows slows every flush
    if not report.ok:
        raise ImportRefused(report)
    return report


def enrolled_phones(session: Session, raw_phones: Iterable[str], region: str) -> set[str]:
    """Which of these numbers (any format; invalid ones are skipped) are enrolled already, E.164."""
    phones = {p for p in (_phone_or_none(raw, region) for raw in raw_phones) if p is not None}
    if not phones:
        return set()
    return set(session.scalars(select(Participant.phone).where(Participant.phone.in_(phones))))


def _phone_or_none(raw: str, region: str) -> str | None:
    try:
        return normalise_phone(raw, region)
    except EnrollmentError:
        return None
