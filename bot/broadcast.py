"""Texts a counselor writes for a therapy group (cohort): the group's settings and reminder text,
and a one-off text to the group's members (a broadcast).

Every such text passes the checks `flask skills check` applies to the library's own messages
(bot.skills): no word carriers act on (a member who copies "stop" back is unsubscribed from every
text) and no request to send an opt-in keyword. Its length is shown in SMS segments, in the encoding
it will be sent in (bot.segments): one character outside GSM-7, such as an emoji, makes the whole
text UCS-2 at 70 characters a segment instead of 160.

A broadcast goes, through the outbox, to the members who may get a text now: active, not opted
out, not paused, not on crisis hold, with a number that can receive texts, within their program
dates. Outside a member's allowed hours it waits until their window opens (the group reminders
move the same way, bot.cohorts). Each (broadcast, member) pair has a dedupe key, so a form posted
twice sends once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import outbox
from .cohorts import MAX_MINUTES_BEFORE, Meeting, meetings, reminder_body
from .enrollment import EnrollmentError, check_time, check_zone, parse_days
from .models import ACTIVE, DISCHARGED, INVITED, OPTED_OUT, Cohort, Outbox, Participant
from .nudges import Messages, Schedule, due_instant, in_program, in_window, parse_hhmm, zone_for
from .segments import encoding, non_gsm7_chars, segments
from .sms import mask_phone
from .vocabulary import OPT_IN_WORDS, OPT_OUT_WORDS

BROADCAST_KIND = "cohort_broadcast"  # Outbox.kind
BROADCAST_MESSAGE = "cohort_broadcast"  # the skills_library/messages.yaml wrapper
# Longer texts arrive split (and sometimes out of order) on some phones and cost more; three
# segments is 459 plain characters or 201 in UCS-2.
MAX_SEGMENTS = 3
MAX_BODY_CHARS = 1000
# An estimate only: Twilio's US list price per SMS segment, USD 0.0083
# (https://www.twilio.com/en-us/sms/pricing/us). Set SMS_SEGMENT_PRICE for the program's own rate.
DEFAULT_SEGMENT_PRICE = Decimal("0.0083")
_BROADCAST_ID = re.compile(r"[0-9a-f]{32}")

# As bot.skills checks the library: opt-out words anywhere (whole words, any case), opt-in words
# when the reader is asked to send them.
_CARRIER_RE = re.compile(r"\b(" + "|".join(w.lower() for w in OPT_OUT_WORDS) + r")\b", re.IGNORECASE)
_OPT_IN_ASK_RE = re.compile(
    r"\b(?:reply|text|send|type|respond|answer)(?:\s+with)?\s+[\"'“‘]?("
    + "|".join(w.lower() for w in OPT_IN_WORDS) + r")\b",
    re.IGNORECASE,
)


# --- checks on any counselor-written text ---------------------------------------------------------


def carrier_problems(text: str) -> list[str]:
    """Why `text` may not be sent: each carrier opt-out word in it, each ask to send an opt-in word."""
    found: list[str] = []
    for word in dict.fromkeys(m.group(1).upper() for m in _CARRIER_RE.finditer(text)):
        found.append(f"“{word}” is a word carriers act on: a member who texts it back is unsubscribed from "
                     "every text. Reword it (e.g. “pause” for “stop”, “afterwards” for “at the end”).")
    for word in dict.fromkeys(m.group(1).upper() for m in _OPT_IN_ASK_RE.finditer(text)):
        found.append(f"Asking members to send “{word}” is not allowed: it is a carrier opt-in keyword.")
    return found


@dataclass(frozen=True)
class TextStats:
    """How a text travels: segments, encoding, and the characters that forced UCS-2 if any."""

    text: str
    segments: int
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int
    non_gsm7: tuple[str, ...]

    @property
    def too_long(self) -> bool:
        return self.segments > MAX_SEGMENTS


def text_stats(text: str) -> TextStats:
    return TextStats(text=text, segments=segments(text), encoding=encoding(text), characters=len(text),
                     non_gsm7=tuple(non_gsm7_chars(text)))


def length_problem(stats: TextStats, what: str) -> str | None:
    if not stats.too_long:
        return None
    hint = (f" Characters such as {' '.join(stats.non_gsm7[:5])} make it UCS-2 (70 characters a segment "
            "instead of 160); removing them fits more." if stats.non_gsm7 else "")
    return (f"{what} would be {stats.segments} SMS segments ({stats.characters} characters, {stats.encoding}); "
            f"the limit is {MAX_SEGMENTS}. Shorten it.{hint}")


def clean_text(text: str | None) -> str:
    """Form text as it is sent: browser line ends (CRLF) as LF, no surrounding blanks."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def segment_price(value: object) -> Decimal:
    """The configured price per segment (SMS_SEGMENT_PRICE), or the default estimate."""
    try:
        price = Decimal(str(value)) if value not in (None, "") else DEFAULT_SEGMENT_PRICE
    except InvalidOperation:
        return DEFAULT_SEGMENT_PRICE
    return price if price.is_finite() and price >= 0 else DEFAULT_SEGMENT_PRICE


# --- group settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSettings:
    name: str
    meeting_days: str  # Monday=0 digits
    meeting_time: str  # HH:MM
    timezone: str
    reminder_text: str
    reminder_minutes_before: int


@dataclass(frozen=True)
class SettingsCheck:
    settings: GroupSettings | None  # None when any field is refused
    errors: dict[str, str]  # field name -> message
    reminder: TextStats | None  # the next reminder as it will be sent, once the fields are valid


def next_meeting(zone_name: str, meeting_days: str, meeting_time: str, now: datetime,
                 cohort_id: int = 0) -> Meeting | None:
    """The group's first meeting after `now` (within a week), or None without meeting days."""
    upcoming = meetings(zone_for(zone_name), meeting_days, meeting_time, now, cohort_id, days_ahead=8)
    return next((m for m in upcoming if m.starts_at > now), None)


def reminder_stats(library: Messages, program: str, settings: GroupSettings, now: datetime) -> TextStats | None:
    """The next meeting's reminder exactly as a member would get it."""
    meeting = next_meeting(settings.timezone, settings.meeting_days, settings.meeting_time, now)
    if meeting is None:
        return None
    draft = Cohort(name=settings.name, timezone=settings.timezone, reminder_text=settings.reminder_text)
    return text_stats(reminder_body(library, program, draft, meeting))


def check_settings(session: Session, library: Messages, program: str, *, name: str, meeting_days: str,
                   meeting_time: str, timezone: str, reminder_text: str, reminder_minutes_before: int | None,
                   now: datetime, cohort_id: int | None = None) -> SettingsCheck:
    """Every refusal next to its field: name (unique, no carrier word: it is in every reminder),
    days, time, zone, minutes (0 .. two days) and the reminder (no carrier word, at most
    MAX_SEGMENTS segments once the message template is filled)."""
    errors: dict[str, str] = {}
    name = " ".join(name.split())
    reminder_text = clean_text(reminder_text)
    if not name:
        errors["name"] = "Enter a name for the group."
    elif problems := carrier_problems(name):
        errors["name"] = "The name is in every reminder. " + " ".join(problems)
    else:
        clash = select(Cohort.id).where(func.lower(Cohort.name) == name.lower())
        if cohort_id is not None:
            clash = clash.where(Cohort.id != cohort_id)
        if session.scalar(clash) is not None:
            errors["name"] = f"A group named “{name}” already exists; choose another name."
    days = ""
    try:
        days = parse_days(meeting_days)
    except EnrollmentError:
        errors["meeting_days"] = ("Enter at least one meeting day (e.g. mon,wed,thu)." if not meeting_days.strip()
                                  else f"“{meeting_days.strip()}” is not a list of days; write e.g. mon,wed,thu "
                                       "or mon-fri.")
    at = ""
    try:
        at = check_time(meeting_time, "meeting_time")
    except EnrollmentError:
        errors["meeting_time"] = "Enter the meeting time like 18:00 or 6pm."
    zone = timezone.strip()
    try:
        check_zone(zone)
    except EnrollmentError as exc:
        errors["timezone"] = f"{exc}."
    if reminder_minutes_before is None or not 0 <= reminder_minutes_before <= MAX_MINUTES_BEFORE:
        errors["reminder_minutes_before"] = f"Between 0 and {MAX_MINUTES_BEFORE} minutes (two days)."
    if problems := carrier_problems(reminder_text):
        errors["reminder_text"] = " ".join(problems)
    if errors:
        return SettingsCheck(None, errors, None)
    settings = GroupSettings(name=name, meeting_days=days, meeting_time=at, timezone=zone,
                             reminder_text=reminder_text, reminder_minutes_before=int(reminder_minutes_before or 0))
    stats = reminder_stats(library, program, settings, now)
    if stats is not None and (problem := length_problem(stats, "The full reminder")):
        return SettingsCheck(None, {"reminder_text": problem}, stats)
    return SettingsCheck(settings, {}, stats)


# --- broadcasts -------------------------------------------------------------------------------------


def member_label(participant: Participant) -> str:
    return (participant.name or "").strip() or mask_phone(participant.phone)


def skip_reason(participant: Participant, now: datetime) -> str | None:
    """Why a member gets no broadcast now (None: they get it)."""
    if participant.status == OPTED_OUT:
        return "opted out of all texts"
    if participant.status == INVITED:
        return "invited, has not agreed to texts yet"
    if participant.status == DISCHARGED:
        return "discharged"
    if participant.status != ACTIVE:
        return participant.status.replace("_", " ")
    if participant.invalid_number:
        return "the number cannot receive texts"
    if participant.crisis_hold:
        return "crisis hold: texts wait until the crisis is acknowledged"
    zone = zone_for(participant.timezone)
    if participant.paused_until is not None and participant.paused_until > now:
        return f"paused until {participant.paused_until.astimezone(zone):%a %d %b %H:%M %Z}"
    if participant.nudges_paused:
        return "paused"
    today = now.astimezone(zone).date()
    schedule = Schedule(timezone=participant.timezone, quiet_start=participant.quiet_start,
                        quiet_end=participant.quiet_end, admission_date=participant.admission_date,
                        discharge_date=participant.discharge_date, aftercare_days=participant.aftercare_days)
    if not in_program(schedule, today):
        if schedule.admission_date is not None and today < schedule.admission_date:
            return f"program starts {schedule.admission_date:%d %b %Y}"
        return "discharged (program and aftercare ended)"
    return None


def send_time(participant: Participant, now: datetime) -> datetime:
    """Now, inside the member's allowed hours; otherwise when their window next opens."""
    zone: ZoneInfo = zone_for(participant.timezone)
    start, end = parse_hhmm(participant.quiet_start), parse_hhmm(participant.quiet_end)
    local = now.astimezone(zone)
    if in_window(local.time(), start, end):
        return now
    for day in (local.date(), local.date() + timedelta(days=1)):
        opens = due_instant(zone, start, day)
        if opens > now:
            return opens
    return now  # unreachable: the window opens within a day


@dataclass(frozen=True)
class Recipient:
    participant_id: int
    label: str
    masked_phone: str
    phone: str
    send_at: datetime  # `now` when it goes at once
    local_send_at: datetime  # send_at in the member's zone

    def later(self, now: datetime) -> bool:
        return self.send_at > now


@dataclass(frozen=True)
class Skipped:
    participant_id: int
    label: str
    masked_phone: str
    reason: str


@dataclass(frozen=True)
class BroadcastPlan:
    """Who gets which text, at what estimated cost; recomputed on every preview and send."""

    cohort_id: int
    stats: TextStats  # the full text, wrapper filled: the same for every recipient
    recipients: list[Recipient]
    skipped: list[Skipped]
    others: int  # members who are other counselors' clients (not in this counselor's broadcast)
    price: Decimal  # per segment
    discreet: int  # recipients with discreet wording (the text shows on their lock screen as written)

    @property
    def cost_each(self) -> Decimal:
        return self.price * self.stats.segments

    @property
    def cost_total(self) -> Decimal:
        return self.cost_each * len(self.recipients)


def broadcast_text(library: Messages, program: str, body: str) -> str:
    return library.message(BROADCAST_MESSAGE, program=program, text=clean_text(body))


def plan_broadcast(session: Session, library: Messages, program: str, cohort: Cohort, body: str, *, now: datetime,
                   counselor_id: int | None, price: Decimal) -> BroadcastPlan:
    """The broadcast of `body` to `cohort`: to `counselor_id`'s clients in it (None: every member)."""
    members = list(session.scalars(select(Participant).where(Participant.cohort_id == cohort.id)
                                   .order_by(Participant.name, Participant.id)))
    mine = [p for p in members if counselor_id is None or p.counselor_id == counselor_id]
    recipients: list[Recipient] = []
    skipped: list[Skipped] = []
    discreet = 0
    for p in mine:
        reason = skip_reason(p, now)
        if reason is not None:
            skipped.append(Skipped(p.id, member_label(p), mask_phone(p.phone), reason))
            continue
        at = send_time(p, now)
        recipients.append(Recipient(p.id, member_label(p), mask_phone(p.phone), p.phone, at,
                                    at.astimezone(zone_for(p.timezone))))
        discreet += bool(p.discreet)
    return BroadcastPlan(cohort_id=cohort.id, stats=text_stats(broadcast_text(library, program, body)),
                         recipients=recipients, skipped=skipped, others=len(members) - len(mine), price=price,
                         discreet=discreet)


def body_problems(library: Messages, program: str, body: str) -> list[str]:
    """Why a broadcast body may not be sent (empty when it may)."""
    text = clean_text(body)
    if not text:
        return ["Write the text to send."]
    if len(text) > MAX_BODY_CHARS:
        return [f"At most {MAX_BODY_CHARS} characters."]
    found = carrier_problems(text)
    problem = length_problem(text_stats(broadcast_text(library, program, text)), "The text")
    return found + ([problem] if problem else [])


def valid_broadcast_id(value: str | None) -> bool:
    return bool(value) and _BROADCAST_ID.fullmatch(value or "") is not None


def dedupe_key(broadcast_id: str, participant_id: int) -> str:
    return f"broadcast:{broadcast_id}:{participant_id}"


def queue_broadcast(session: Session, plan: BroadcastPlan, broadcast_id: str, now: datetime) -> list[int]:
    """Queue the plan's text for each recipient once per broadcast id; returns the NEW outbox ids
    (none when this broadcast was queued already). Texts for members outside their hours wait."""
    if not valid_broadcast_id(broadcast_id):
        raise ValueError("not a broadcast id")
    queued: list[int] = []
    for r in plan.recipients:
        row_id = outbox.enqueue_once(session, dedupe_key=dedupe_key(broadcast_id, r.participant_id), to=r.phone,
                                     body=plan.stats.text, kind=BROADCAST_KIND, now=now,
                                     participant_id=r.participant_id)
        if row_id is None:
            continue
        if r.later(now):
            session.execute(update(Outbox).where(Outbox.id == row_id).values(next_attempt_at=r.send_at))
        queued.append(row_id)
    return queued

