"""The evening diary card (DBT style) by text, and triggers noted with LOG. Pure domain: no Flask,
no Twilio.

The card's questions are content (`skills_library/diary_card.yaml`, `bot.skills.DiaryCard`): urges
rated on a scale, the day's strongest emotion and how strong, whether a skill was used, and one
trigger in a few words. A participant opts in by texting DIARY (or their counselor turns it on);
each evening at `diary_time` local the first question goes out and the participant is put in the
conversation state "diary"; each answer is stored (`DiaryEntry`, one per item per local date) and
the next question is the reply, one per text.

Rules:
- When: at `diary_time` on every local date, with the daily nudge's time rules (`bot.nudges.decide`:
  the spring-forward gap, the first of an ambiguous fall-back time, the allowed window, the late
  window after which the day is recorded as skipped) and its eligibility (active, not paused, not
  held after a crisis nor with an unacknowledged crisis event, number valid, within the program
  dates; not while a risk question is open; not in the middle of an exercise). A NudgeLog row of
  kind "diary" per participant and local date makes a second card that day impossible, whatever
  ticks run at once or are replayed. The text goes out as a nudge (`Outbox.kind` "nudge"), so the
  outbox re-checks holds, pauses and quiet hours right before sending it.
- Answers: SKIP (or NEXT) skips a question (stored as skipped). An answer that cannot be read
  (a number out of range, words where a number is asked) gets the question again with its range,
  at most MAX_REASKS times, then the card moves on. A text that says how they feel where a number
  is asked ("im so anxious"), or any other command, leaves the card: what was answered is kept and
  the text is handled as usual. Crisis detection runs before any of this (bot.conversation), so a
  risk text mid-card gets the crisis flow.
- Safety: an answer at or above a question's `safety_check_at` (urges to self-harm, 4 or 5 of 5)
  is stored, then the card ends and the caller asks the direct safety question, as a low mood
  check-in does (`bot.conversation.ask_directly`).
- The card stays open CARD_OPEN_FOR after it was sent; a later text is handled as usual.
- Discreet participants first get a text that reveals nothing; their reply starts the card.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import Date, String, and_, case, exists, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import outbox
from .db import Database
from .models import ACTIVE, CrisisEvent, DiaryEntry, NudgeLog, Participant, Trigger
from .nudges import (
    NUDGE_KIND,
    SKIPPED,
    Action,
    NudgeConfig,
    Schedule,
    decide,
    is_busy,
    zone_for,
)
from .text import normalise

log = logging.getLogger(__name__)

KIND = "diary"  # NudgeLog.kind: one card per participant per local date
SENT = "diary"  # NudgeLog.content of a card that was sent (a day left out is "skipped")
STATE = "diary"  # Participant.conv_state while a card is open
EVERY_DAY = "0123456"
SOURCE_LOG = "log"  # Trigger.source
SOURCE_DIARY = "diary"
# Re-asks of one question after answers that could not be read; the next one moves on.
MAX_REASKS = 2
# How long a card takes answers after it was sent.
CARD_OPEN_FOR = timedelta(hours=12)
MAX_TEXT = 300  # characters of a words answer or a LOG kept
# The direct question after a high self-harm urge is recorded as a "check" event with this category.
SAFETY_CATEGORY = "diary_self_harm_urge"
# The distress state a skill is offered for when the direct question is answered no.
SAFETY_OFFER_STATE = "sadness"
SKIP_COMMANDS = frozenset({"skip", "next"})
# DIARY <word>: these turn the card on or off; anything else is read as a time.
ON_WORDS = frozenset({"", "on", "card", "card on", "please", "yes", "start", "again", "back on"})
OFF_WORDS = frozenset({"off", "card off", "no", "pause", "stop", "no more", "not now", "none"})
PLANNING_CHUNK = 200

_FILLER = r"(?:i m|im|its|it s|it was|was|about|around|like|maybe|probably|prob|a|an|uh|um|say|id say|i d say)"
_SCALE = re.compile(rf"^(?:{_FILLER} )*([0-9]{{1,2}}|zero|one|two|three|four|five|none|no|nothing)"
                    rf"(?: (?:out of |of )?([0-9]{{1,2}}))?$")
_WORD_NUMBERS = {"zero": 0, "none": 0, "no": 0, "nothing": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_YES = frozenset({"yes", "y", "yeah", "yea", "yep", "yup", "ya", "sure", "definitely", "did", "i did", "yes i did"})
_NO = frozenset({"no", "n", "nope", "nah", "not", "didnt", "i didnt", "did not", "no i didnt", "not really"})
_NOTHING = frozenset({"none", "nothing", "no", "nope", "nah", "na", "n a", "not really", "nothing really", "idk"})
_LOG_PREFIX = re.compile(r"^\W*log\b[\s:,.;\-]*", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Content


def card_of(library: Any) -> Any:
    """The library's diary card (bot.skills.DiaryCard); load_library never returns one without it."""
    card = getattr(library, "diary", None)
    if card is None:
        raise LookupError("the skills library has no diary card (skills_library/diary_card.yaml)")
    return card


def question_text(library: Any, card: Any, index: int) -> str:
    """Question `index` as sent: numbered "(n/total)"."""
    return str(library.message("diary_question", n=index + 1, total=len(card.questions),
                               question=card.questions[index].ask))


def opening(library: Any, *, discreet: bool, program: str) -> tuple[str, int]:
    """The card's first text and the question its answer is read against (-1: discreet, not started)."""
    card = card_of(library)
    if discreet:
        return str(library.message("diary_start_discreet", program=program)), -1
    return str(library.message("diary_start", total=len(card.questions), question=question_text(library, card, 0),
                               program=program)), 0


# --------------------------------------------------------------------------------------------
# Reading answers (pure)


@dataclass(frozen=True)
class Answer:
    value: int | None = None
    text: str | None = None
    skipped: bool = False


def parse_answer(question: Any, body: str) -> Answer | None:
    """The answer `body` gives to `question` (bot.skills.DiaryQuestion); None when it is not one.

    A scale takes "3", "3/5", "about 3", "a 3 out of 5", "none" (0); on a question with a safety
    threshold a number above the scale ("10" to a 0-5 urge) counts as its top, and a high rating on
    another scale ("9/10") as its share of this one, the words as typed kept with it. Yes or
    no takes the usual spellings, with any words after them kept ("yes, opposite action"). Words
    take any non-empty text.
    """
    if question.kind == "words":
        words = " ".join(body.split())[:MAX_TEXT]
        return Answer(text=words) if words else None
    text = normalise(body)
    if question.kind == "yes_no":
        for options, value in ((_YES, 1), (_NO, 0)):
            for size in (3, 2, 1):
                head = " ".join(text.split(" ")[:size])
                if head in options:
                    return Answer(value=value, text=_after(body, head) or None)
        return None
    match = _SCALE.match(text)
    if match is None:
        return None
    raw, out_of = match.group(1), match.group(2)
    number = _WORD_NUMBERS[raw] if raw in _WORD_NUMBERS else int(raw)
    as_typed = " ".join(body.split())[:MAX_TEXT]
    threshold = question.safety_check_at
    if out_of is not None and int(out_of) != question.high:
        # "4 out of 10" on a 0-5 scale: asked again with the range, unless it is a high rating on
        # a question with a safety threshold ("9/10" urges to self-harm), which must not be lost.
        scaled = round(number * question.high / int(out_of)) if 0 < number <= int(out_of) else -1
        return Answer(value=scaled, text=as_typed) if threshold is not None and scaled >= threshold else None
    if question.low <= number <= question.high:
        return Answer(value=number)
    if threshold is not None and number > question.high:
        return Answer(value=question.high, text=as_typed)
    return None


def _after(body: str, head: str) -> str:
    """The participant's own words after `head` (normalised words at the start of `body`)."""
    letters = r"[\W_]*".join(re.escape(c) for c in head.replace(" ", ""))
    match = re.match(rf"^[\W_]*{letters}\b", body, re.IGNORECASE)
    rest = body[match.end():] if match else ""
    return " ".join(rest.split()).strip(" ,.;:-!")[:MAX_TEXT]


def log_words(body: str, fallback: str = "") -> str:
    """The words after LOG in a text ("LOG: fight with mom" -> "fight with mom"), as typed."""
    match = _LOG_PREFIX.match(body)
    words = body[match.end():] if match else fallback
    return " ".join(words.split())[:MAX_TEXT]


def is_nothing(words: str) -> bool:
    """True for a trigger answer that names nothing ("none", "nothing really")."""
    return normalise(words) in _NOTHING


# --------------------------------------------------------------------------------------------
# One text in the diary state


@dataclass
class Turn:
    """What one text in the diary state did."""

    handled: bool  # False: not an answer; the card is left and the caller handles the text as usual
    replies: list[str] = field(default_factory=list)
    state: str = "idle"
    data: dict[str, Any] = field(default_factory=dict)
    safety_check: bool = False  # ask the direct safety question now (SAFETY_CATEGORY)


def is_open(data: Mapping[str, Any], now: datetime) -> bool:
    """True while the card in `data` (conv_data) still takes answers."""
    until, day = data.get("until"), data.get("date")
    if not isinstance(until, str) or not isinstance(day, str):
        return False
    try:
        date.fromisoformat(day)
        return now < datetime.fromisoformat(until)
    except ValueError:
        return False


def take_answer(
    session: Session, library: Any, participant_id: int, data: Mapping[str, Any], body: str,
    command: str | None, feeling: Callable[[], bool], now: datetime, *, program: str, diary_time: str = "",
) -> Turn:
    """Read one text as the answer to the open question; store it and say what comes next.

    `command` is the text's command name if it is one; `feeling()` says whether it reads as a
    distress state (asked only when a number or yes/no was expected).
    """
    if not is_open(data, now):
        return Turn(handled=False)
    local_date = date.fromisoformat(str(data["date"]))
    turn = _take(session, library, participant_id, data, local_date, body, command, feeling, now, program=program,
                 diary_time=diary_time)
    if turn.handled:  # the card was answered: for the reply rate, as with the daily nudge
        logged = session.scalar(select(NudgeLog).where(
            NudgeLog.participant_id == participant_id, NudgeLog.local_date == local_date, NudgeLog.kind == KIND))
        if logged is not None and logged.replied_at is None:
            logged.replied_at = now
    return turn


def _take(
    session: Session, library: Any, participant_id: int, data: Mapping[str, Any], local_date: date, body: str,
    command: str | None, feeling: Callable[[], bool], now: datetime, *, program: str, diary_time: str,
) -> Turn:
    card = card_of(library)
    index = int(data.get("q", 0))
    card_data = {k: data[k] for k in ("date", "until") if k in data}
    if index < 0:  # discreet opening: any plain reply starts the card
        if command in {"skip", "done"}:
            return Turn(True, [library.message("diary_not_now", time=display_time(diary_time), program=program)])
        if command is not None or feeling():
            return Turn(handled=False)
        return Turn(True, [library.message("diary_start", total=len(card.questions), program=program,
                                           question=question_text(library, card, 0))],
                    STATE, {**card_data, "q": 0, "tries": 0})
    if index >= len(card.questions):
        return Turn(handled=False)
    question = card.questions[index]
    if command in SKIP_COMMANDS:
        record(session, participant_id, local_date, question.id, Answer(skipped=True), now)
        return _advance(library, card, index, card_data, program)
    if command is not None:
        return Turn(handled=False)
    answer = parse_answer(question, body)
    if answer is None:
        if question.kind != "words" and feeling():
            return Turn(handled=False)
        tries = int(data.get("tries", 0)) + 1
        if tries <= MAX_REASKS:
            return Turn(True, [question.reask], STATE, {**card_data, "q": index, "tries": tries})
        return _advance(library, card, index, card_data, program, moving_on=True)
    record(session, participant_id, local_date, question.id, answer, now)
    if question.records_trigger and answer.text and not is_nothing(answer.text):
        add_trigger(session, participant_id, answer.text, SOURCE_DIARY, now)
    threshold = question.safety_check_at
    if threshold is not None and answer.value is not None and answer.value >= threshold:
        log.warning("diary: participant %s rated %s at %s; asking directly", participant_id, question.id,
                    answer.value)
        return Turn(True, safety_check=True)
    return _advance(library, card, index, card_data, program)


def _advance(library: Any, card: Any, index: int, card_data: dict[str, Any], program: str, *,
             moving_on: bool = False) -> Turn:
    following = index + 1
    if following >= len(card.questions):
        return Turn(True, [library.message("diary_thanks", program=program)])
    shown = question_text(library, card, following)
    if moving_on:
        shown = library.message("diary_move_on", question=shown, program=program)
    return Turn(True, [shown], STATE, {**card_data, "q": following, "tries": 0})


def record(session: Session, participant_id: int, local_date: date, item: str, answer: Answer, now: datetime) -> None:
    """Store one answer (a second answer to the same item that day replaces the first)."""
    entry = session.scalar(select(DiaryEntry).where(
        DiaryEntry.participant_id == participant_id, DiaryEntry.local_date == local_date, DiaryEntry.item == item))
    if entry is None:
        session.add(DiaryEntry(participant_id=participant_id, local_date=local_date, item=item, value=answer.value,
                               text=answer.text, skipped=answer.skipped, created_at=now))
        return
    entry.value, entry.text, entry.skipped, entry.created_at = answer.value, answer.text, answer.skipped, now


def add_trigger(session: Session, participant_id: int, words: str, source: str, now: datetime) -> None:
    session.add(Trigger(participant_id=participant_id, text=words[:MAX_TEXT], source=source, created_at=now))


def display_time(hhmm: str) -> str:
    """"20:00" -> "8pm", "19:30" -> "7:30pm" (as the TIME command shows times)."""
    try:
        hour, minute = (int(x) for x in hhmm.split(":"))
    except ValueError:
        return hhmm
    shown = hour % 12 or 12
    suffix = "am" if hour < 12 else "pm"
    return f"{shown}{suffix}" if minute == 0 else f"{shown}:{minute:02d}{suffix}"


# --------------------------------------------------------------------------------------------
# The evening planning (the scheduler's tick)


@dataclass(frozen=True)
class _Local:
    local_date: date
    hhmm: str


def _zones(session: Session, now: datetime) -> dict[str, _Local]:
    names = session.scalars(select(Participant.timezone).where(
        Participant.status == ACTIVE, Participant.diary_enabled.is_(True)).distinct())
    table: dict[str, _Local] = {}
    for name in names:
        try:
            local = now.astimezone(zone_for(name))
        except (ZoneInfoNotFoundError, ValueError):
            log.error("participants with unknown time zone %r get no diary card", name)
            continue
        table[name] = _Local(local.date(), local.strftime("%H:%M"))
    return table


def _due_query(zones: Mapping[str, _Local], now: datetime) -> Any:
    """Participants whose card may be due at `now` and not yet logged for their local today (a
    coarse SQL filter: `decide` has the final word)."""
    local_date = case({n: literal(z.local_date, Date()) for n, z in zones.items()}, value=Participant.timezone,
                      else_=literal(None, Date()))
    local_hhmm = case({n: literal(z.hhmm, String()) for n, z in zones.items()}, value=Participant.timezone,
                      else_=literal(None, String()))
    unacknowledged = exists().where(CrisisEvent.participant_id == Participant.id, CrisisEvent.kind == "crisis",
                                    CrisisEvent.acknowledged_at.is_(None))
    logged = exists().where(NudgeLog.participant_id == Participant.id, NudgeLog.local_date == local_date,
                            NudgeLog.kind == KIND)
    return select(Participant).where(
        Participant.diary_enabled.is_(True),
        Participant.status == ACTIVE,
        Participant.crisis_hold.is_(False),
        Participant.invalid_number.is_(False),
        Participant.conv_state.not_in(("check_pending", "crisis_followup")),  # a risk question is open
        or_(and_(Participant.paused_until.is_(None), Participant.nudges_paused.is_(False)),
            Participant.paused_until <= now),
        Participant.timezone.in_(list(zones)),
        Participant.diary_time <= local_hhmm,
        ~unacknowledged,
        ~logged,
    ).order_by(Participant.id)


def plan_due_cards(
    db: Database, library: Any, now: datetime, config: NudgeConfig | Mapping[str, Any] | None = None
) -> int:
    """Send every diary card due at `now` (aware UTC), each once per local date; returns how many
    were queued. Chunks of participants are planned in their own transactions; on PostgreSQL rows
    another tick (or an inbound text) holds are skipped, and the unique keys forbid a second card."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    cfg = NudgeConfig.coerce(config)
    zones = db.run(lambda s: _zones(s, now))
    if not zones:
        return 0
    ids = db.run(lambda s: list(s.scalars(_due_query(zones, now).with_only_columns(Participant.id))))

    def plan(chunk: Sequence[int]) -> int:
        return db.run(lambda s: _plan_chunk(s, library, now, cfg, zones, chunk))

    return sum(plan(ids[i:i + PLANNING_CHUNK]) for i in range(0, len(ids), PLANNING_CHUNK))


def _plan_chunk(session: Session, library: Any, now: datetime, cfg: NudgeConfig, zones: Mapping[str, _Local],
                ids: Sequence[int]) -> int:
    stmt = _due_query(zones, now).where(Participant.id.in_(list(ids)))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=Participant)
    queued = 0
    for participant in session.scalars(stmt).all():
        schedule = Schedule(timezone=participant.timezone, nudge_time=participant.diary_time, nudge_days=EVERY_DAY,
                            quiet_start=participant.quiet_start, quiet_end=participant.quiet_end,
                            admission_date=participant.admission_date, discharge_date=participant.discharge_date,
                            aftercare_days=participant.aftercare_days or 0)
        try:
            decision = decide(schedule, now, cfg.late_window)
        except ValueError:
            log.error("participant %s has an unreadable diary setting; no card", participant.id)
            continue
        if decision.action is Action.SKIP:
            _log_once(session, participant.id, decision.local_date, SKIPPED, None, now)
        elif decision.action is Action.SEND and not is_busy(participant.conv_state, participant.last_inbound_at, now):
            queued += _send(session, library, cfg, participant, decision.local_date, now)
    return queued


def _log_once(session: Session, participant_id: int, local_date: date, content: str, outbox_id: int | None,
              now: datetime) -> bool:
    try:
        with session.begin_nested():
            session.add(NudgeLog(participant_id=participant_id, local_date=local_date, kind=KIND, content=content,
                                 outbox_id=outbox_id, planned_at=now))
            session.flush()
    except IntegrityError:  # another tick logged this date first
        return False
    return True


def _send(session: Session, library: Any, cfg: NudgeConfig, participant: Participant, local_date: date,
          now: datetime) -> int:
    body, first = opening(library, discreet=participant.discreet, program=cfg.program_name)
    try:
        with session.begin_nested():
            row = outbox.enqueue(session, to=participant.phone, body=body, kind=NUDGE_KIND, now=now,
                                 participant_id=participant.id, dedupe_key=f"diary:{participant.id}:{local_date}")
            session.add(NudgeLog(participant_id=participant.id, local_date=local_date, kind=KIND, content=SENT,
                                 outbox_id=row.id, planned_at=now))
            session.flush()
    except IntegrityError:  # another tick planned this card first
        return 0
    kept = {"warm": participant.conv_data["warm"]} if "warm" in (participant.conv_data or {}) else {}
    participant.conv_state = STATE
    participant.conv_data = {**kept, "date": local_date.isoformat(), "q": first, "tries": 0,
                             "until": (now + CARD_OPEN_FOR).isoformat()}
    return 1


# --------------------------------------------------------------------------------------------
# The week as counselors see it


@dataclass(frozen=True)
class GridColumn:
    item: str
    label: str
    kind: str  # scale | yes_no | words | "" (an item no longer on the card)
    scale: str = ""  # "0-5" for a scale


@dataclass(frozen=True)
class GridCell:
    shown: str = ""  # "" when there is no answer
    note: str = ""  # words that came with a yes or no, or an off-scale rating as typed
    skipped: bool = False
    high: bool = False  # at or above the question's safety threshold


@dataclass(frozen=True)
class GridDay:
    day: date
    cells: tuple[GridCell, ...]

    @property
    def answered(self) -> bool:
        return any(c.shown or c.skipped for c in self.cells)


@dataclass(frozen=True)
class GridTrigger:
    day: date  # the participant's local date
    at: str  # local "HH:MM"
    text: str
    source: str  # log | diary


@dataclass(frozen=True)
class WeekGrid:
    """A participant's diary card for the seven local dates ending `end`, and that week's triggers.

    The template `dashboard/_client_diary.html` renders it: one row per day (oldest first), one
    column per item.
    """

    participant_id: int
    start: date
    end: date
    columns: tuple[GridColumn, ...]
    days: tuple[GridDay, ...]
    triggers: tuple[GridTrigger, ...]  # newest first
    enabled: bool
    diary_time: str  # "HH:MM" local
    timezone: str

    @property
    def empty(self) -> bool:
        return not self.triggers and not any(d.answered for d in self.days)


def week_grid(session: Session, participant_id: int, end_date: date, card: Any | None = None) -> WeekGrid:
    """The diary grid for the week ending `end_date` (a local date); `card` (bot.skills.DiaryCard)
    gives the columns and their labels, in order; items answered earlier but no longer on the card
    follow as extra columns."""
    participant = session.get_one(Participant, participant_id)
    start = end_date - timedelta(days=6)
    entries = list(session.scalars(select(DiaryEntry).where(
        DiaryEntry.participant_id == participant_id, DiaryEntry.local_date.between(start, end_date))))
    questions = {q.id: q for q in (card.questions if card is not None else ())}
    columns = [GridColumn(q.id, q.label, q.kind, f"{q.low}-{q.high}" if q.kind == "scale" else "")
               for q in questions.values()]
    for item in sorted({e.item for e in entries} - set(questions)):
        columns.append(GridColumn(item, item.replace("_", " ").capitalize(), ""))
    by_key = {(e.local_date, e.item): e for e in entries}
    days = []
    for offset in range(7):
        day = start + timedelta(days=offset)
        days.append(GridDay(day, tuple(_cell(by_key.get((day, c.item)), questions.get(c.item)) for c in columns)))
    try:
        zone: tzinfo = zone_for(participant.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC  # checked on entry; never let one bad value break the page
    first = datetime.combine(start, time(0), zone)
    after = datetime.combine(end_date + timedelta(days=1), time(0), zone)
    rows = session.scalars(select(Trigger).where(
        Trigger.participant_id == participant_id, Trigger.created_at >= first, Trigger.created_at < after)
        .order_by(Trigger.created_at.desc(), Trigger.id.desc()))
    triggers = []
    for row in rows:
        local = row.created_at.astimezone(zone)
        triggers.append(GridTrigger(local.date(), local.strftime("%H:%M"), row.text, row.source))
    return WeekGrid(participant_id, start, end_date, tuple(columns), tuple(days), tuple(triggers),
                    participant.diary_enabled, participant.diary_time, participant.timezone)


def _cell(entry: DiaryEntry | None, question: Any | None) -> GridCell:
    if entry is None:
        return GridCell()
    if entry.skipped:
        return GridCell(shown="skipped", skipped=True)
    kind = question.kind if question is not None else ("scale" if entry.value is not None else "words")
    if kind == "yes_no" and entry.value is not None:
        return GridCell(shown="yes" if entry.value else "no", note=entry.text or "")
    if entry.value is not None:
        threshold = getattr(question, "safety_check_at", None)
        return GridCell(shown=str(entry.value), note=entry.text or "",
                        high=threshold is not None and entry.value >= threshold)
    return GridCell(shown=entry.text or "")


def weeks_back(end_date: date, weeks: int = 1) -> date:
    return end_date - timedelta(days=7 * weeks)


