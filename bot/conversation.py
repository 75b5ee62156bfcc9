"""The conversation engine: one inbound text in, replies out. Pure domain: no Flask, no Twilio.

Order for every inbound text: crisis -> compliance words -> commands -> matching -> exercise
flow. The caller holds the participant row locked for the whole transaction, so two quick
texts from one person are handled one after the other. The one exception is a registered
counselor's "ACK <id> [note]" (`acknowledge_by_text`): a counselor's command about an event, not
a participant's text, so it is never screened for risk.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import phonenumbers
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from . import crises, diary, outbox, risk
from .db import Record, Records
from .matching import Matcher, SkillHistory, StateMatch
from .models import (
    ACTIVE,
    DISCHARGED,
    INVITED,
    OPTED_OUT,
    AuditLog,
    Counselor,
    CrisisEvent,
    ExerciseSession,
    Message,
    MoodCheckin,
    NudgeLog,
    Participant,
    SafetyPlan,
)
from .nudges import in_window, parse_hhmm, participant_label
from .segments import segments
from .sms import mask_phone
from .text import normalise
from .vocabulary import HELP_WORDS as _HELP
from .vocabulary import OPT_IN_WORDS as _OPT_IN
from .vocabulary import OPT_OUT_WORDS as _OPT_OUT
from .vocabulary import medically_allowed

if TYPE_CHECKING:
    from .skills import Library

log = logging.getLogger(__name__)

# Carrier keywords (bot.vocabulary): the whole body, any case.
OPT_OUT_WORDS = frozenset(w.lower() for w in _OPT_OUT)
OPT_IN_WORDS = frozenset(w.lower() for w in _OPT_IN)
HELP_WORDS = frozenset(w.lower() for w in _HELP)

# Revocations in other words. Each needs a "contact me" object, so "i want to stop drinking"
# and "stop thinking about it" are not revocations.
_REVOCATION = re.compile(
    r"^(please )?(stop|quit|no more|dont|do not|never) (texting|messaging|sending|contacting|txting|text|message)"
    r"( me| this number| my number)?( any ?more| texts| messages)?( please| thanks| thank you)?$"
    r"|^(please )?(unsubscribe|remove|take|opt) (me|my number)( out| off)?( of| from)?( this| the| your)?"
    r"( list| texts| program| messages| service)?( please| thanks| now)?$"
    r"|^(i )?(want|would like|wanna) to (unsubscribe|opt out)( please)?$"
    r"|^opt (me )?out( please)?$"
    r"|^(please )?(stop|unsubscribe|cancel)( it)?( now| please| thanks| thank you)*$"
    r"|^(i )?(dont|do not) want (any more |anymore |these |your )?(texts|messages)( any ?more)?( please)?$"
)

COMMANDS = ("menu", "more", "next", "done", "pause", "resume", "plan", "time", "skip", "slip", "diary", "log")
_FUZZY_COMMANDS = ("menu", "more", "next", "done", "pause", "resume", "plan", "skip", "diary")
# Commands followed by words: PAUSE 3 days, TIME 7pm, DIARY OFF, LOG argument with my sister.
_COMMANDS_WITH_WORDS = frozenset({"pause", "time", "diary", "log"})
# Short commands typed in a hurry: a swapped pair or one dropped letter ("mnu", "hlep", "nxt").
# Substitutions are not accepted at this length: "none", "gone" and "sore" are words.
_SHORT_TYPO_TARGETS = ("menu", "more", "next", "done", "plan", "skip", "help")
_SHORT_TYPO_WORDS = frozenset({"one", "men", "net", "pan", "ski", "sip", "ore", "don", "doe", "kip", "hel", "mor"})
# Questions about the service itself ("what is this", "who is this", "what can you do").
_ABOUT = re.compile(
    r"^(?:what|who|wat|wut|wht) (?:is|s|r|are|am i texting|the heck is|is texting) ?(?:this|you|u|dis|that)"
    r"(?: (?:number|thing|bot|service|program|app|text|texting me))?$"
    r"|^(?:what|wat|wut) (?:can|do|does) (?:you|u|this|it) (?:do|help with)$"
    r"|^(?:is this|are you|r u|is it) (?:a )?(?:bot|robot|real|automated|human|person|real person|ai)$"
    r"|^who (?:dis|this|r u|are u)$|^how does this work$"
)
_COMMAND_ALIASES = {
    "nxt": "next",
    "n": "next",
    "continue": "next",
    "go on": "next",
    "ok next": "next",
    "okay next": "next",
    "finished": "done",
    "im done": "done",
    "i m done": "done",
    "all done": "done",
    "options": "menu",
    "skills": "menu",
    "main menu": "menu",
    "another": "more",
    "another one": "more",
    "something else": "more",
    "different skill": "more",
    "unpause": "resume",
    "my plan": "plan",
    "safety plan": "plan",
    "my safety plan": "plan",
}
_RATING = re.compile(
    r"^(?:i ?m |im |its |it s |about |like |maybe |a |an |uh |um )*(10|[0-9])(?: ?(?:out of |of )?10)?$"
)


@dataclass(frozen=True)
class InboundSms:
    phone: str
    body: str
    sid: str
    opt_out_type: str | None = None
    num_media: int = 0


@dataclass
class Context:
    """What the engine needs from the outside world, passed in by the caller."""

    library: Library
    matcher: Matcher
    now: datetime
    program_name: str = "IOP Coping Skills"
    crisis_country: str = "US"  # resources for numbers whose own country has no resources file
    risk_context: timedelta = timedelta(hours=24)
    backup_phone: str | None = None  # gets every crisis alert, and those about unknown numbers
    public_base_url: str | None = None  # alerts link to the event's dashboard page when set
    message_id: int | None = None  # the stored inbound text being handled: the events it opens point to it

    def resources(self, phone: str) -> Any:
        """Crisis resources for the country of `phone` (bot.skills.CrisisResources)."""
        return resources_for(self.library, phone, self.crisis_country)


@lru_cache(maxsize=4096)
def phone_region(phone: str) -> str | None:
    """The ISO country of an E.164 number ("+447700900123" -> "GB"), None when unknown."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None


def resources_for(library: Any, phone: str, fallback: str) -> Any:
    """The crisis lines of the texter's own country when the library has them, else `fallback`'s:
    a UK number gets UK lines even where the clinic's default is the US."""
    region = phone_region(phone)
    region = _SAME_LINES.get(region or "", region)
    return library.crisis_resources(region if region and region in library.resources else fallback)


# Share the UK's numbers (+44): Guernsey, Jersey and the Isle of Man have 999 and Samaritans 116 123
# (https://www.samaritans.org/how-we-can-help/contact-samaritan/).
_SAME_LINES = {"GG": "GB", "JE": "GB", "IM": "GB"}


@dataclass(eq=False, slots=True)
class ParticipantRecord(Record):
    """The participant columns the engine reads and writes (the rest are the counselor's)."""

    phone: str
    name: str | None
    counselor_id: int
    status: str
    timezone: str
    nudge_time: str
    quiet_start: str
    quiet_end: str
    flags: list[str]
    consent_at: datetime | None
    consent_method: str | None
    opted_out_at: datetime | None
    nudges_paused: bool
    paused_until: datetime | None
    crisis_hold: bool
    ignored_nudges: int
    conv_state: str
    conv_data: dict[str, Any]
    last_inbound_at: datetime | None
    diary_enabled: bool
    diary_time: str


@dataclass(eq=False, slots=True)
class ExerciseRecord(Record):
    """The exercise-session columns the engine reads and writes."""

    skill_id: str
    distress_state: str
    status: str
    step_index: int
    rating_before: int | None
    rating_after: int | None
    completed_at: datetime | None


PARTICIPANTS = Records(ParticipantRecord, Participant.__table__, by="phone")
EXERCISES = Records(ExerciseRecord, ExerciseSession.__table__)
_EXERCISE_TABLE = ExerciseSession.__table__
_ABANDON_ACTIVE = (
    update(_EXERCISE_TABLE)
    .where(_EXERCISE_TABLE.c.participant_id == bindparam("participant_id_"), _EXERCISE_TABLE.c.status == "active")
    .values(status="abandoned", completed_at=bindparam("now_"))
)


@dataclass
class Outcome:
    replies: list[str] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    risk_events: list[str] = field(default_factory=list)  # events this text opened: "crisis", "check"


@dataclass(frozen=True)
class Reading:
    """What a text says on its own, whoever sent it and whatever state they are in."""

    risk: risk.RiskAssessment  # the text's tier on its own; `handle` adds recent context
    compliance: str | None  # "opt_out", "opt_in", "help" or None
    command: tuple[str, str] | None
    rating: int | None
    match: StateMatch | None = None  # the distress state, when read with a matcher


def read(sms: InboundSms, matcher: Matcher | None = None) -> Reading:
    """Read a text without the database: pure, so callers run it before taking any lock.

    With the `matcher`, the text's distress state is read once here, for the risk layer (a clear
    everyday state makes the learned layer more careful) and for the dialogue.
    """
    match = matcher.classify(sms.body) if matcher is not None else None
    return Reading(
        risk=risk.assess(sms.body, state=match.lexicon_state if match else None),
        match=match,
        compliance=compliance_word(sms.body, sms.opt_out_type),
        command=_parse_command(sms.body),
        rating=parse_rating(sms.body),
    )


def handle(
    session: Session, ctx: Context, participant: ParticipantRecord | None, sms: InboundSms, reading: Reading
) -> Outcome:
    """Decide what to answer and what to change for one inbound text, and write the changes.

    `reading` is `read(sms)`. Crisis comes first, whoever sent the text and whatever else it says.
    """
    out = Outcome()
    assessment = reading.risk
    answering = participant is not None and (
        (participant.conv_state == "check_pending" and risk.answer(sms.body) is not None)
        or (participant.conv_state == "crisis_followup" and risk.safety_answer(sms.body) == "safe"))
    if answering and assessment.rules.level != "imminent":
        # An answer to the question just asked is read as an answer ("no" to the direct question,
        # "ok im safe" to "are you safe?" are not new risk signals); only what the rules grade
        # imminent overrides it ("no i took them all"). Unsafe answers are alerted on as answers.
        assessment = risk.RiskAssessment(risk.NONE, assessment.rules, assessment.model_probability, False, ())
    elif risk.needs_context(assessment) and _recent_risk(session, sms.phone, ctx):
        assessment = risk.escalate(assessment)
    # The direct question needs a conversation to answer it in: unknown numbers and people who are
    # not active get the crisis reply (or, opted out, their counselor is told) instead.
    askable = participant is not None and participant.status == ACTIVE
    if assessment.tier == risk.CRISIS or (assessment.tier == risk.CHECK and not askable):
        level = assessment.rules.level or safety_level(assessment)
        _handle_crisis(session, ctx, participant, sms, assessment.categories, level, out)
    elif participant is None:
        if not _answered_recently(session, sms.phone, ctx.now):
            out.replies.append(_msg(ctx, "unknown_number", resources=ctx.resources(sms.phone).summary))
    elif assessment.tier == risk.CHECK and reading.compliance is None:
        _handle_check(session, ctx, participant, sms, assessment, reading.match, out)
        participant.last_inbound_at = ctx.now
    else:
        _respond(session, ctx, participant, sms, reading, out)
        participant.last_inbound_at = ctx.now
        if participant.ignored_nudges:
            participant.ignored_nudges = 0  # any reply restores the normal nudge rhythm
    if participant is not None:
        PARTICIPANTS.save(session.connection(), participant)
    return out


def replay(
    session: Session, ctx: Context, participant: ParticipantRecord | None, sms: InboundSms, reading: Reading
) -> Outcome:
    """Record what a text received during a database outage meant, once the database is back.

    Its fallback reply went out at the time (crisis lines for a risk text, "please text again"
    otherwise), so nothing more is said to the texter. A risk text becomes a crisis event that
    alerts the counselor (and the backup) now: without the database no question could be asked,
    so a possible risk counts as a crisis. An opt-out is applied. Anything else is only recorded;
    they were asked to text again. Returns the outbox rows to deliver (the alerts).

    A reply to a question the bot had asked just before is read as the answer, as it would have
    been at the time: "yes" to the direct question is a crisis, and anything but a clear "safe" to
    "are you safe right now?" is an urgent alert.
    """
    out = Outcome()
    assessment = reading.risk
    pending = participant.conv_state if participant is not None and participant.status == ACTIVE else None
    if pending == "check_pending" and participant is not None and risk.answer(sms.body) is not None:
        if risk.answer(sms.body) == "yes":
            categories = _checked_categories(session, participant)
            _handle_crisis(session, ctx, participant, sms, categories, "imminent", out, reason="answer")
        else:
            _close_check(session, participant, "no", ctx.now)
            participant.conv_state, participant.conv_data = "idle", {}
        out.replies.clear()
    elif pending == "crisis_followup" and participant is not None and not reading.command:
        _answer_safety(session, ctx, participant, sms, out)
        out.replies.clear()
    elif assessment.tier != risk.NONE:
        level = assessment.rules.level or "possible"
        _handle_crisis(session, ctx, participant, sms, assessment.categories, level, out)
        out.replies.clear()
    elif reading.compliance == "opt_out" and participant is not None and participant.status != OPTED_OUT:
        _opt_out(session, ctx, participant, out)
    if participant is not None:
        PARTICIPANTS.save(session.connection(), participant)
    return out


def _respond(
    session: Session, ctx: Context, participant: ParticipantRecord, sms: InboundSms, reading: Reading, out: Outcome
) -> None:
    if _handle_compliance(session, ctx, participant, sms, reading.compliance, out):
        return
    if participant.status != ACTIVE:
        if participant.status == INVITED:
            out.replies.append(_msg(ctx, "consent_reminder", resources=ctx.resources(sms.phone).summary))
        # Opted-out and discharged participants get nothing but the opt-out confirmation.
        return
    if participant.conv_state == "check_pending" and _answer_check(session, ctx, participant, sms, reading, out):
        return
    if participant.conv_state == "crisis_followup":
        if not reading.command:
            _answer_safety(session, ctx, participant, sms, out)
            return
        participant.conv_state = "idle"  # a command (PLAN, MENU) is done as asked
    if sms.num_media and not sms.body.strip():
        out.replies.append(_msg(ctx, "media_only"))
        return
    _Dialogue(session, ctx, participant, out).respond(sms.body, reading)


UNKNOWN_REPLY_EVERY = timedelta(hours=24)


def safety_level(assessment: risk.RiskAssessment) -> str:
    """The event level for a crisis the rules did not grade (context or an answer decided it)."""
    return "imminent" if assessment.tier == risk.CRISIS else "possible"


def _recent_risk(session: Session, phone: str, ctx: Context) -> bool:
    """True when this number had a check or crisis event within the context window."""
    return session.scalar(
        select(CrisisEvent.id).where(
            CrisisEvent.phone == phone, CrisisEvent.kind.in_(("crisis", "check")),
            CrisisEvent.created_at > ctx.now - ctx.risk_context,
        ).limit(1)
    ) is not None


def _answered_recently(session: Session, phone: str, now: datetime) -> bool:
    """True when an unknown number already had its one neutral reply within UNKNOWN_REPLY_EVERY
    (so two auto-responders cannot ping-pong, and nothing more is revealed)."""
    return session.scalar(
        select(Message.id).where(
            Message.phone == phone, Message.direction == "out", Message.participant_id.is_(None),
            Message.kind == "reply", Message.created_at > now - UNKNOWN_REPLY_EVERY,
        ).limit(1)
    ) is not None


# --- crisis ---------------------------------------------------------------------------------------


def _handle_crisis(
    session: Session,
    ctx: Context,
    participant: ParticipantRecord | None,
    sms: InboundSms,
    category_list: tuple[str, ...],
    level: str,
    out: Outcome,
    *,
    reason: str = "text",
) -> None:
    """Crisis: the lines now, an event, the counselor (and backup) alerted, nudges held.

    `reason` says why, for the alert: "text" (the text read as a crisis) or "answer" (yes to the
    direct question). The alert names the tier and what the texter was sent, and no diagnosis
    word: an SMS to a counselor's phone is not the place for one (`flask crisis list` has them).
    """
    resources = ctx.resources(sms.phone)
    event = CrisisEvent(
        kind="crisis",
        participant_id=participant.id if participant else None,
        phone=sms.phone,
        level=level,
        categories=",".join(category_list),
        message_id=ctx.message_id,
        created_at=ctx.now,
    )
    session.add(event)
    session.flush()
    log.warning("crisis event %s from %s (%s)", event.id, mask_phone(sms.phone), ", ".join(category_list) or "risk")
    out.risk_events.append("crisis")

    # What the texter is sent (nothing after an opt-out: their counselor is told instead).
    silent = participant is not None and participant.status == OPTED_OUT
    replies: list[str] = []
    urgent = {"overdose", "medical", "harm_to_others"} & set(category_list)
    if urgent:  # the summary already names the emergency number; lead with it when danger is physical
        replies.append(_msg(ctx, "crisis_emergency", emergency=resources.emergency))
    if "third_party" in category_list:
        replies.append(_msg(ctx, "crisis_third_party", resources=resources.summary))
        told = "alert_told_third_party"
    else:
        key = "crisis_reply" if participant is not None else "crisis_reply_unknown"
        replies.append(_msg(ctx, key, resources=resources.summary))
        if participant is not None and _has_plan(session, participant.id):
            replies.append(_msg(ctx, "crisis_plan_hint"))
        replies.append(_msg(ctx, "crisis_ask_safety"))
        told = "alert_told_emergency" if urgent else "alert_told_lines"
    if "abuse" in category_list and resources.violence:
        replies.append(_msg(ctx, "crisis_violence", violence=resources.violence))
    told = "alert_told_nothing" if silent else told

    alert_values = {"tier": _msg(ctx, f"alert_reason_{reason}"), "told": _msg(ctx, told), "event_id": event.id,
                    "link": crises.event_link(ctx.library, ctx.public_base_url, event.id)}
    recipients: list[tuple[str, int | None]] = []
    if participant is not None:
        participant.last_inbound_at = ctx.now
        participant.crisis_hold = True
        _close_check(session, participant, "yes", ctx.now)  # a disclosure answers a pending question
        _interrupt_exercise(session, participant, ctx.now)
        counselor = _counselor(session, participant)
        alert = _msg(ctx, "counselor_crisis_alert", participant=participant.name or "A participant",
                     phone_tail=mask_phone(participant.phone), **alert_values)
        recipients.append((counselor.phone, counselor.id))
        if ctx.backup_phone and ctx.backup_phone != counselor.phone:
            recipients.append((ctx.backup_phone, None))
        if not silent:
            participant.conv_state = "crisis_followup"
            participant.conv_data = {"crisis_event": event.id}
    elif ctx.backup_phone:
        # Nobody's counselor: the backup on-call number hears about it at once.
        alert = _msg(ctx, "counselor_crisis_alert_unknown", phone_tail=mask_phone(sms.phone), **alert_values)
        recipients.append((ctx.backup_phone, None))
    for phone, counselor_id in recipients:
        row = outbox.enqueue(session, to=phone, body=alert, kind="crisis_alert", now=ctx.now,
                             counselor_id=counselor_id)
        out.outbox_ids.append(row.id)
    if recipients:
        event.alerts_sent = 1
        event.last_alert_at = ctx.now
    if not silent:
        out.replies.extend(replies)


def _has_plan(session: Session, participant_id: int) -> bool:
    plan = session.scalar(select(SafetyPlan).where(SafetyPlan.participant_id == participant_id))
    return plan is not None and any(_plan_section(plan, column) for column, _ in PLAN_SECTIONS)


# --- the safety plan as texts --------------------------------------------------------------------

# The sections of the Stanley-Brown Safety Planning Intervention in the order of its form (Stanley
# & Brown 2012, Cognitive and Behavioral Practice 19:256-264): SafetyPlan column, messages.yaml key.
PLAN_SECTIONS: tuple[tuple[str, str], ...] = (
    ("warning_signs", "plan_warning_signs"),
    ("coping_strategies", "plan_coping_strategies"),
    ("distractions", "plan_distractions"),
    ("contacts", "plan_contacts"),
    ("professionals", "plan_professionals"),
    ("safe_environment", "plan_safe_environment"),
    ("reasons_for_living", "plan_reasons_for_living"),
)
# Every text of the plan fits in this many SMS segments: the limit `skills check` holds every
# message in messages.yaml to (bot.skills.MAX_SEPTETS), in GSM-7 or, for other characters, UCS-2.
PLAN_PART_SEGMENTS = 2
# Typographic characters a keyboard or word processor puts in, made plain: one of them would turn
# the whole text into UCS-2 (70 characters a segment instead of 160; bot.segments).
_PLAIN_SMS = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u02bc": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "", "\t": " ",
})
_WORD_AND_SPACE = re.compile(r"\S+\s*")


def _plan_section(plan: SafetyPlan, column: str) -> str:
    value: str | None = getattr(plan, column)
    return (value or "").replace("\r\n", "\n").replace("\r", "\n").translate(_PLAIN_SMS).strip()


def plan_texts(library: Library, plan: SafetyPlan | None) -> list[str]:
    """The texts a participant gets for PLAN (and the dashboard previews): an intro, then each
    filled section in the form's order. A section too long for one text is split between words
    into numbered parts, each at most PLAN_PART_SEGMENTS segments. No plan, or an empty one: []."""
    if plan is None:
        return []
    filled = [(key, text) for column, key in PLAN_SECTIONS if (text := _plan_section(plan, column))]
    if not filled:
        return []
    texts = [library.message("plan_intro")]
    for key, text in filled:
        texts.extend(_plan_section_texts(library, key, text))
    return texts


def _plan_section_texts(library: Library, key: str, text: str) -> list[str]:
    whole = library.message(key, text=text)
    if segments(whole) <= PLAN_PART_SEGMENTS:
        return [whole]

    widest = 9  # parts are numbered "(n/total)": leave room for numbers this wide

    def fits(chunk: str) -> bool:
        return segments(library.message("plan_part", text=chunk, n=widest, total=widest)) <= PLAN_PART_SEGMENTS

    while len(chunks := split_words(whole, fits)) > widest:
        widest = widest * 10 + 9
    return [library.message("plan_part", text=chunk, n=n, total=len(chunks)) for n, chunk in enumerate(chunks, 1)]


def split_words(text: str, fits: Callable[[str], bool]) -> list[str]:
    """`text` in order as the fewest greedy parts that each `fits`, broken only at white space.
    A word too long for a part of its own is the one thing cut: it fills the part it starts in."""
    parts: list[str] = []
    current = ""
    for word in _WORD_AND_SPACE.findall(text.strip()):
        if fits((current + word).rstrip()):
            current += word
        elif fits(word.rstrip()):
            parts.append(current.rstrip())
            current = word
        else:
            while not fits((current + word).rstrip()):
                cut = _longest_fitting_prefix(current, word, fits)
                parts.append((current + word[:cut]).rstrip())
                current, word = "", word[cut:]
            current += word
    if current.strip():
        parts.append(current.rstrip())
    return parts


def _longest_fitting_prefix(current: str, word: str, fits: Callable[[str], bool]) -> int:
    """The most characters of `word` that fit after `current` (0 only when `current` is not empty)."""
    low, high = (0 if current else 1), len(word)  # one character alone always fits a part
    while low < high:
        middle = (low + high + 1) // 2
        if fits(current + word[:middle]):
            low = middle
        else:
            high = middle - 1
    return low


# A weekly mood check-in at or below this (0 = very low, 10 = very good) is met with the direct
# safety question instead of thanks.
LOW_MOOD = 2

# After the crisis reply asked "are you safe right now?", this many unsafe or unclear answers are
# each met with the lines again and an urgent alert; then the conversation goes on (the repeat
# alerts go on until a counselor acknowledges the event).
SAFETY_ANSWERS = 3


def _answer_safety(
    session: Session, ctx: Context, participant: ParticipantRecord, sms: InboundSms, out: Outcome
) -> None:
    """Read a reply to "are you safe right now?" with that question's polarity ("no" is unsafe).

    Safe: thanks, the lines stay there. Unsafe or unclear: the emergency and crisis lines again and
    an urgent alert saying what was answered; never a menu for someone who may not be safe.
    """
    answer = risk.safety_answer(sms.body)
    data = dict(participant.conv_data or {})
    event = session.get(CrisisEvent, data.get("crisis_event") or 0)
    if event is not None and event.answer is None:
        event.answer = answer
        event.answered_at = ctx.now
    resources = ctx.resources(sms.phone)
    if answer == "safe":
        participant.conv_state = "idle"
        participant.conv_data = {}
        out.replies.append(_msg(ctx, "crisis_followup_safe", resources=resources.summary))
        return
    out.replies.append(_msg(ctx, "crisis_emergency", emergency=resources.emergency))
    out.replies.append(_msg(ctx, "crisis_followup_unsafe", resources=resources.summary))
    answered = int(data.get("answers", 0)) + 1
    # Every "not safe" is urgent; of unclear answers ("hi", "ok whatever") only the first alerts,
    # so the counselor is not flooded while the repeat alerts run.
    if answer == "unsafe" or answered == 1:
        _alert_followup(session, ctx, participant, answer, event, out)
    if answered >= SAFETY_ANSWERS:
        participant.conv_state = "idle"
        participant.conv_data = {}
    else:
        participant.conv_data = {**data, "answers": answered}


def _alert_followup(
    session: Session, ctx: Context, participant: ParticipantRecord, answer: str, event: CrisisEvent | None,
    out: Outcome,
) -> None:
    """The urgent alert (counselor and backup) saying how the crisis follow-up was answered."""
    counselor = _counselor(session, participant)
    alert = _msg(ctx, "counselor_followup_alert", participant=participant.name or "A participant",
                 phone_tail=mask_phone(participant.phone), answer=_msg(ctx, f"followup_answer_{answer}"),
                 event_id=event.id if event is not None else "-",
                 link=crises.event_link(ctx.library, ctx.public_base_url, event.id) if event is not None else "")
    recipients: list[tuple[str, int | None]] = [(counselor.phone, counselor.id)]
    if ctx.backup_phone and ctx.backup_phone != counselor.phone:
        recipients.append((ctx.backup_phone, None))
    for phone, counselor_id in recipients:
        row = outbox.enqueue(session, to=phone, body=alert, kind="crisis_alert", now=ctx.now,
                             counselor_id=counselor_id)
        out.outbox_ids.append(row.id)


# --- check: possible risk, asked about directly -----------------------------------------------------


def _handle_check(
    session: Session, ctx: Context, participant: ParticipantRecord, sms: InboundSms,
    assessment: risk.RiskAssessment, reading_match: StateMatch | None, out: Outcome,
) -> None:
    """Ask plainly whether they are thinking of suicide or of hurting themselves, with the lines.

    The event is recorded now; the answer decides what follows (`_answer_check`), and silence for
    CHECK_TIMEOUT_MINUTES sends the counselor a lower-urgency alert (`outbox.alert_unanswered_checks`).
    """
    state = (reading_match or ctx.matcher.classify(sms.body)).state  # what to offer if the answer is no
    ask_directly(session, ctx, participant, ",".join(assessment.categories), state, "check_question", out)


def ask_directly(
    session: Session, ctx: Context, participant: ParticipantRecord, categories: str, state: str, key: str,
    out: Outcome,
) -> None:
    """Record a check event and ask message `key` (the direct question, with the lines); the
    answer is read by `_answer_check`, and a skill for `state` is offered if it is no."""
    _close_check(session, participant, None, ctx.now)
    event = CrisisEvent(
        kind="check", participant_id=participant.id, phone=participant.phone, level="possible",
        categories=categories, message_id=ctx.message_id, created_at=ctx.now,
    )
    session.add(event)
    session.flush()
    log.warning("check event %s from %s", event.id, mask_phone(participant.phone))
    out.risk_events.append("check")
    _interrupt_exercise(session, participant, ctx.now)
    participant.conv_state = "check_pending"
    participant.conv_data = {"check_event": event.id, "state": state}
    resources = ctx.resources(participant.phone)
    out.replies.append(_msg(ctx, key, resources=resources.summary))


def _answer_check(
    session: Session, ctx: Context, participant: ParticipantRecord, sms: InboundSms, reading: Reading,
    out: Outcome,
) -> bool:
    """Read a reply to the direct question. True when it was handled as the answer."""
    data = dict(participant.conv_data or {})
    answer = risk.answer(sms.body)
    if answer == "yes":
        categories = _checked_categories(session, participant)
        _handle_crisis(session, ctx, participant, sms, categories, "imminent", out, reason="answer")
        return True
    if answer == "no":
        _close_check(session, participant, "no", ctx.now)
        participant.conv_state = "idle"
        participant.conv_data = {}
        out.replies.append(_msg(ctx, "check_no", resources=ctx.resources(sms.phone).summary))
        # A skill for what they described; hopelessness with no clearer state gets one for low mood.
        state = str(data.get("state") or "none")
        _Dialogue(session, ctx, participant, out).offer("sadness" if state == "none" else state)
        return True
    if not data.get("reasked") and reading.command is None:
        participant.conv_data = {**data, "reasked": True}
        resources = ctx.resources(sms.phone)
        out.replies.append(_msg(ctx, "check_reask", resources=resources.summary))
        return True
    # Still no answer: carry on with what they said; the question stays open for the timeout alert.
    participant.conv_state = "idle"
    participant.conv_data = {}
    return False


def _checked_categories(session: Session, participant: ParticipantRecord) -> tuple[str, ...]:
    """The risk categories the pending direct question was asked about (suicide if unknown)."""
    event = session.get(CrisisEvent, (participant.conv_data or {}).get("check_event") or 0)
    return tuple(c for c in (event.categories if event else "").split(",") if c) or ("suicide",)


def _close_check(session: Session, participant: ParticipantRecord, answer: str | None, now: datetime) -> None:
    """Record the answer to a pending direct question (None: superseded by a new question)."""
    if participant.conv_state != "check_pending":
        return
    event = session.get(CrisisEvent, (participant.conv_data or {}).get("check_event") or 0)
    if event is not None and event.answer is None:
        event.answer = answer or "superseded"
        event.answered_at = now


def _record_lapse(session: Session, participant: ParticipantRecord, now: datetime, how: str) -> None:
    """A lapse for the counselor's notes: an event without an SMS alert."""
    session.add(CrisisEvent(kind="lapse", participant_id=participant.id, phone=participant.phone, level="lapse",
                            categories=how, created_at=now))


def _counselor(session: Session, participant: ParticipantRecord) -> Counselor:
    return session.get_one(Counselor, participant.counselor_id)


def _interrupt_exercise(session: Session, participant: ParticipantRecord, now: datetime) -> None:
    session_id = (participant.conv_data or {}).get("session_id")
    if session_id:
        connection = session.connection()
        running = EXERCISES.load(connection, session_id)
        if running is not None and running.status == "active":
            running.status = "interrupted"
            running.completed_at = now
            EXERCISES.save(connection, running)
    participant.conv_state = "idle"
    participant.conv_data = {}


# --- counselors' texts ---------------------------------------------------------------------------


def counselors_at(session: Session, phone: str) -> list[Counselor]:
    """The active counselors whose alert phone is `phone` (an on-call phone may be shared)."""
    return list(session.scalars(
        select(Counselor).where(Counselor.phone == phone, Counselor.active.is_(True)).order_by(Counselor.id)))


def acknowledge_by_text(
    session: Session, ctx: Context, counselors: list[Counselor], command: crises.AckCommand
) -> Outcome:
    """A counselor's "ACK <id> [note]" from their alert phone: acknowledge the event with the note.

    Their own clients' events only (an admin: any). An id that does not exist and one that is not
    theirs get the same answer, so ids cannot be probed; an event acknowledged before is left as
    it was, and the answer says by whom. The note is stored on the event and never logged.
    """
    out = Outcome()
    for counselor in _owner_first(session, counselors, command.event_id):
        try:
            ack = crises.acknowledge(session, command.event_id, counselor.email, ctx.now, outcome=crises.SMS_OUTCOME,
                                     note=command.note, channel="sms")
        except crises.CrisisError:
            continue
        log.info("crisis event %s: ACK text from %s (%s)", command.event_id, mask_phone(counselor.phone),
                 "acknowledged" if ack.new else "already acknowledged")
        participant = participant_label(ctx.library, ack.participant.name if ack.participant else None)
        if not ack.new:
            by = session.scalar(select(Counselor.name).where(Counselor.email == ack.event.acknowledged_by))
            out.replies.append(_msg(ctx, "counselor_ack_already", event_id=command.event_id,
                                    by=by or ack.event.acknowledged_by or "-"))
        elif ack.hold_lifted:
            out.replies.append(_msg(ctx, "counselor_ack_resumed", event_id=command.event_id, participant=participant))
        elif ack.still_held:
            out.replies.append(_msg(ctx, "counselor_ack_held", event_id=command.event_id, participant=participant))
        else:
            out.replies.append(_msg(ctx, "counselor_ack_done", event_id=command.event_id))
        return out
    log.info("ACK text from %s refused", mask_phone(counselors[0].phone if counselors else None))
    out.replies.append(_msg(ctx, "counselor_ack_refused", event_id=command.shown))
    return out


def _owner_first(session: Session, counselors: list[Counselor], event_id: int) -> list[Counselor]:
    """Who acts when several counselors share the phone: the client's own counselor, then admins."""
    owner = session.scalar(
        select(Participant.counselor_id).join(CrisisEvent, CrisisEvent.participant_id == Participant.id)
        .where(CrisisEvent.id == event_id)
    ) if 0 < event_id <= crises.MAX_EVENT_ID else None
    return sorted(counselors, key=lambda c: (c.id != owner, not c.is_admin, c.id))


# --- compliance -----------------------------------------------------------------------------------


def compliance_word(body: str, opt_out_type: str | None = None) -> str | None:
    """"opt_out", "opt_in" or "help" when the text is a compliance keyword or a revocation."""
    if opt_out_type:
        kind = opt_out_type.strip().upper()
        if kind in {"STOP", "START", "HELP"}:
            return {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}[kind]
    word = re.sub(r"[^a-z]", "", body.strip().lower())
    bare = body.strip().lower().strip(" .!?\"'")
    if word in OPT_OUT_WORDS and " " not in bare:
        return "opt_out"
    if word in OPT_IN_WORDS and " " not in bare:
        return "opt_in"
    if word in HELP_WORDS and " " not in bare:
        return "help"
    if " " not in bare and _short_typo(word) == "help":  # "hlep", "hep"; never a carrier word
        return "help"
    if _REVOCATION.match(normalise(body)):
        return "opt_out"
    return None


def _handle_compliance(
    session: Session, ctx: Context, participant: ParticipantRecord, sms: InboundSms, kind: str | None, out: Outcome
) -> bool:
    if kind is None:
        return False
    if kind == "opt_out":
        if participant.status != OPTED_OUT:
            _opt_out(session, ctx, participant, out)
            out.replies.append(_msg(ctx, "opted_out_confirmation", resources=ctx.resources(sms.phone).summary))
        return True
    if kind == "opt_in":
        if participant.status == ACTIVE:
            if sms.body.strip().lower().strip(".!") == "yes" and participant.conv_state != "idle":
                return False  # "yes" as an answer inside a conversation
            out.replies.append(_msg(ctx, "already_active"))
            return True
        if participant.status == DISCHARGED:
            return True
        participant.status = ACTIVE
        participant.opted_out_at = None
        participant.consent_at = ctx.now
        participant.consent_method = f"replied {sms.body.strip()[:20].upper() or sms.opt_out_type} by SMS"
        participant.conv_state = "idle"
        session.add(
            AuditLog(actor=f"sms:{mask_phone(participant.phone)}", action="consent", participant_id=participant.id,
                     detail={"method": participant.consent_method}, created_at=ctx.now)
        )
        out.replies.append(_msg(ctx, "opt_in_confirmation"))
        return True
    if participant.status == OPTED_OUT:
        return True  # nothing but the confirmation after an opt-out
    counselor = _counselor(session, participant)
    out.replies.append(_msg(ctx, "help", counselor=counselor.name, counselor_phone=counselor.phone))
    resources = ctx.resources(sms.phone)
    out.replies.append(_msg(ctx, "help_crisis", resources=resources.summary))
    return True


def _opt_out(session: Session, ctx: Context, participant: ParticipantRecord, out: Outcome) -> None:
    participant.status = OPTED_OUT
    participant.opted_out_at = ctx.now
    _interrupt_exercise(session, participant, ctx.now)
    outbox.cancel_pending_for(session, participant.id)
    session.add(AuditLog(actor=f"sms:{mask_phone(participant.phone)}", action="opt_out",
                         participant_id=participant.id, detail={}, created_at=ctx.now))
    counselor = _counselor(session, participant)
    notice = _msg(ctx, "counselor_optout_notice", participant=participant.name or "A participant",
                  phone_tail=mask_phone(participant.phone))
    row = outbox.enqueue(session, to=counselor.phone, body=notice, kind="optout_notice", now=ctx.now,
                         counselor_id=counselor.id)
    out.outbox_ids.append(row.id)


# --- commands, matching and the exercise state machine -----------------------------------------


def _parse_command(body: str) -> tuple[str, str] | None:
    """(command, argument) for texts that are commands, tolerating case, punctuation and typos."""
    text = normalise(body)
    if not text:
        return None
    if text in _COMMAND_ALIASES:
        return _COMMAND_ALIASES[text], ""
    if _ABOUT.match(text):
        return "about", ""
    first, _, rest = text.partition(" ")
    if first in COMMANDS and (not rest or first in _COMMANDS_WITH_WORDS):
        return first, rest
    if not rest and 3 <= len(first) <= 4:
        short = _short_typo(first)
        if short is not None and short != "help":
            return short, ""
    if not rest and len(first) >= 4:
        hit = process.extractOne(first, _FUZZY_COMMANDS, scorer=fuzz.ratio, score_cutoff=75)
        if hit is not None:
            return hit[0], ""
    return None


def _short_typo(word: str) -> str | None:
    """The short command `word` is a hurried spelling of: one swapped pair or one dropped letter."""
    if word in _SHORT_TYPO_WORDS:
        return None
    for target in _SHORT_TYPO_TARGETS:
        if len(word) == len(target) and sorted(word) == sorted(target) and OSA.distance(word, target) == 1:
            return target
        if len(word) == len(target) - 1 and any(target[:i] + target[i + 1 :] == word for i in range(len(target))):
            return target
    return None


def parse_rating(body: str) -> int | None:
    """A 0-10 rating in forms like "7", "7/10", "im a 7", "about 6 out of 10"."""
    m = _RATING.match(normalise(body))
    return int(m.group(1)) if m else None


class _Dialogue:
    def __init__(self, session: Session, ctx: Context, participant: ParticipantRecord, out: Outcome) -> None:
        self.session = session
        self.connection = session.connection()  # for Core statements
        self.ctx = ctx
        self.p = participant
        self.out = out
        self.data: dict[str, Any] = dict(participant.conv_data or {})
        self._exercises: dict[int, ExerciseRecord] = {}  # loaded or created, by id; written at the end
        self._match_result: StateMatch | None = None
        # Which variant of each varied message this participant got last (kept across states).
        warm = self.data.get("warm")
        self.warm: dict[str, int] = dict(warm) if isinstance(warm, dict) else {}
        self.body = ""  # the text being answered, as typed

    def say(self, key: str, **values: Any) -> None:
        # Every reply may name the crisis lines (a dead end always carries a way out).
        values.setdefault("resources", self.ctx.resources(self.p.phone).summary)
        self.out.replies.append(_msg(self.ctx, key, **values))

    def _classify(self, body: str) -> StateMatch:
        """The text's distress state, worked out once however many states look at it."""
        if self._match_result is None:
            self._match_result = self.ctx.matcher.classify(body)
        return self._match_result

    def set_state(self, state: str, **data: Any) -> None:
        self.p.conv_state = state
        if self.warm:
            data["warm"] = self.warm
        self.data = data
        self.p.conv_data = dict(data)

    def respond(self, body: str, reading: Reading) -> None:
        """Answer `body` and write the exercise sessions it changed."""
        self._match_result = reading.match
        self.body = body
        self._route(body, reading.command, reading.rating)
        if self.warm and (self.p.conv_data or {}).get("warm") != self.warm:
            self.p.conv_data = {**(self.p.conv_data or {}), "warm": self.warm}
        self._write_exercises()

    # Route by command first, then by the state we are in.
    def _route(self, body: str, command: tuple[str, str] | None, rating: int | None) -> None:
        state = self.p.conv_state
        handlers: dict[str, Callable[[str, tuple[str, str] | None, int | None], bool]] = {
            "pre_rating": self._in_pre_rating,
            "step": self._in_step,
            "post_rating": self._in_post_rating,
            "menu": self._in_menu,
            "checkin": self._in_checkin,
            "nudge": self._in_nudge,
            diary.STATE: self._in_diary,
        }
        handler = handlers.get(state)
        if handler is not None and handler(body, command, rating):
            return
        if command is not None:
            self._command(*command)
            return
        self._match(body)

    def _command(self, name: str, arg: str) -> None:
        if name == "menu":
            self._show_menu()
        elif name == "more":
            self._more()
        elif name in {"next", "done", "skip"}:
            self._nothing_matched(distressed=False)
        elif name == "pause":
            self._pause(arg)
        elif name == "resume":
            self.p.nudges_paused = False
            self.p.paused_until = None
            self.say("resumed", time=_display_time(self.p.nudge_time))
        elif name == "plan":
            self._plan()
        elif name == "time":
            self._set_time(arg)
        elif name == "about":
            self.say("about_program")
        elif name == "slip":
            _record_lapse(self.session, self.p, self.ctx.now, "reported with SLIP")
            self.say("slip_ack")
            self.offer("lapse", validate=False)
        elif name == "diary":
            self._diary(arg)
        elif name == "log":
            self._log(arg)

    # -- states
    def _in_pre_rating(self, body: str, command: tuple[str, str] | None, rating: int | None) -> bool:
        running = self._running()
        if running is None:
            self.set_state("idle")
            return False
        if rating is not None:
            running.rating_before = rating
            self._send_step(running)
            return True
        if command is not None and command[0] in {"skip", "next"}:
            self._send_step(running)
            return True
        if command is not None and command[0] == "more":
            self._more()
            return True
        if command is None and self._classify(body).state == "none":
            self.say("rating_invalid")
            return True
        self._abandon(running)
        return False

    def _in_step(self, body: str, command: tuple[str, str] | None, rating: int | None) -> bool:
        running = self._running()
        if running is None:
            self.set_state("idle")
            return False
        name = command[0] if command else None
        if name == "next":
            running.step_index += 1
            skill = self.ctx.library.skill(running.skill_id)
            if running.step_index >= len(skill.steps):
                self._ask_post_rating(running)
            else:
                self._send_step(running)
            return True
        if name in {"done", "skip"}:
            self._ask_post_rating(running)
            return True
        if name == "more":
            self._more()
            return True
        if command is not None:
            return False
        if rating is not None:  # a rating asked for inside a step ("rate it every few minutes")
            running.rating_after = rating
            self.say("step_rating_noted", rating=rating)
            return True
        if self._classify(body).state == "none":
            self.say("step_help")
            return True
        self._abandon(running)
        return False

    def _in_post_rating(self, body: str, command: tuple[str, str] | None, rating: int | None) -> bool:
        running = self._running()
        if running is None:
            self.set_state("idle")
            return False
        if rating is not None:
            running.rating_after = rating
            self._complete(running)
            return True
        if command is not None and command[0] in {"skip", "done", "next"}:
            self._complete(running)
            return True
        if command is None and self._classify(body).state == "none":
            self.say("rating_invalid")
            return True
        self._complete(running, encourage=False)
        return False

    def _in_menu(self, body: str, command: tuple[str, str] | None, rating: int | None) -> bool:
        categories = self.data.get("categories", [])
        text = normalise(body)
        if text.isdigit():
            index = int(text) - 1
            if 0 <= index < len(categories):
                self._start_from_category(categories[index])
            else:
                self.say("menu_invalid")
            return True
        self.set_state("idle")
        return False

    def _in_checkin(self, body: str, command: tuple[str, str] | None, rating: int | None) -> bool:
        self.set_state("idle")
        if rating is None:
            return False
        self.session.add(MoodCheckin(participant_id=self.p.id, rating=rating, created_at=self.ctx.now))
        self._mark_nudge_replied()
        if rating <= LOW_MOOD:  # not a thank-you: a gentle, direct safety question
            ask_directly(self.session, self.ctx, self.p, "low_checkin", "sadness", "checkin_low", self.out)
            return True
        self.say("checkin_thanks", rating=rating)
        return True

    def _in_nudge(self, body: str, command: tuple[str, str] | None, rating: int | None) -> bool:
        skill_id = self.data.get("skill_id")
        self.set_state("idle")
        self._mark_nudge_replied()
        if command is not None or not skill_id or skill_id not in self.ctx.library.skills:
            return False
        if self._classify(body).state != "none":
            return False  # they told us how they feel: match that instead
        skill = self.ctx.library.skill(skill_id)
        self._start(skill, state=skill.helps_with[0] if skill.helps_with else "none", source="nudge")
        return True

    def _nothing_matched(self, *, distressed: bool) -> None:
        """The reply when a text names no state. While a crisis event of theirs is open (not yet
        acknowledged by a counselor) and they have not said they are safe since, the crisis lines
        and the way to a person, never a menu: someone who may be unsafe is not offered a list."""
        if self.p.crisis_hold and self._may_be_unsafe():
            self.say("crisis_open_reply")
        elif distressed:
            self._say_varied("none_invite")  # sounds unhappy, but we could not tell how
        else:
            self.say("none_menu")

    def _may_be_unsafe(self) -> bool:
        """True unless their latest open crisis event was answered "safe"."""
        answer = self.session.scalar(
            select(CrisisEvent.answer)
            .where(CrisisEvent.participant_id == self.p.id, CrisisEvent.kind == "crisis",
                   CrisisEvent.acknowledged_at.is_(None))
            .order_by(CrisisEvent.created_at.desc(), CrisisEvent.id.desc())
            .limit(1)
        )
        return answer != "safe"

    # -- actions
    def _match(self, body: str) -> None:
        match = self._classify(body)
        if match.state == "none":
            card = self.ctx.matcher.info_card(body)
            if card is not None and card in self.ctx.library.skills:
                self._start(self.ctx.library.skill(card), state="none", source="text")
            else:
                self._nothing_matched(distressed=_sounds_distressed(match))
            return
        if match.state == "lapse":
            _record_lapse(self.session, self.p, self.ctx.now, "texted")
        self.offer(match.state, text=body)

    def offer(self, state: str, *, text: str | None = None, validate: bool = True) -> None:
        """Start the best skill for `state`, after one validating line; the menu when none fits."""
        if state == "none":
            self._show_menu()
            return
        ranked = self.ctx.matcher.rank_skills(
            state, flags=frozenset(self.p.flags or ()), history=self._history(), text=text or ""
        )
        if not ranked:
            self._show_menu()
            return
        if validate:
            self._say_varied(f"validate_{state}")
        self._start(self.ctx.library.skill(ranked[0]), state=state, source="text")

    def _say_varied(self, key: str) -> None:
        """One of the variants of `key`, never the one this participant got last time."""
        variants = self.ctx.library.messages_list(key)
        last = self.warm.get(key, -1)
        choice = (last + 1) % len(variants)
        self.warm = {**self.warm, key: choice}
        self.out.replies.append(self.ctx.library.message(key, variant=choice, program=self.ctx.program_name))

    def _more(self) -> None:
        state = self.data.get("distress_state") or (self.p.conv_data or {}).get("last_state")
        running = self._running()
        if running is not None:
            state = running.distress_state
            self._abandon(running)
        if not state or state == "none":
            self.say("more_without_context")
            return
        ranked = self.ctx.matcher.rank_skills(state, flags=frozenset(self.p.flags or ()), history=self._history())
        tried = set(self.data.get("tried", []))
        fresh = [skill_id for skill_id in ranked if skill_id not in tried]
        if not fresh:
            self.set_state("idle", last_state=state)
            self.say("more_exhausted")
            return
        self._start(self.ctx.library.skill(fresh[0]), state=state, source="text", tried=sorted(tried))

    def _show_menu(self) -> None:
        running = self._running()
        if running is not None:
            self._abandon(running)
        library = self.ctx.library
        flags = frozenset(self.p.flags or ())
        categories = sorted({s.category for s in library.skills.values() if medically_allowed(s, flags)},
                            key=_category_rank)
        options = ", ".join(f"{i} {_msg(self.ctx, 'category_' + c)}" for i, c in enumerate(categories, 1))
        self.set_state("menu", categories=categories)
        self.say("menu", options=options)

    def _start_from_category(self, category: str) -> None:
        flags = frozenset(self.p.flags or ())
        recent = set(self._history().recent[:3])
        skills = [s for s in self.ctx.library.skills.values()
                  if s.category == category and medically_allowed(s, flags)]
        skills.sort(key=lambda s: (s.id in recent, s.id))
        if not skills:
            self.say("menu_invalid")
            return
        skill = skills[0]
        self._start(skill, state=skill.helps_with[0] if skill.helps_with else "none", source="menu")

    def _start(self, skill: Any, *, state: str, source: str, tried: list[str] | None = None) -> None:
        self._write_exercises()
        # A nudge may have replaced a stale exercise's state: close whatever is still open.
        self.connection.execute(_ABANDON_ACTIVE, {"participant_id_": self.p.id, "now_": self.ctx.now})
        running = EXERCISES.create(
            self.connection, participant_id=self.p.id, skill_id=skill.id, distress_state=state, source=source,
            status="active", step_index=0, rating_before=None, rating_after=None, started_at=self.ctx.now,
            completed_at=None,
        )
        self._exercises[running.id] = running
        self.set_state("pre_rating", session_id=running.id, distress_state=state,
                       tried=sorted(set(tried or []) | {skill.id}))
        if state == "none":  # an information card: no distress to rate
            self._send_step(running)
            return
        if skill.medical_screen and state == "panic":
            resources = self.ctx.resources(self.p.phone)
            self.say("medical_screen", emergency=resources.emergency)
        self.say("skill_intro", title=skill.title, minutes=skill.duration_minutes)

    def _send_step(self, running: ExerciseRecord) -> None:
        skill = self.ctx.library.skill(running.skill_id)
        total = len(skill.steps)
        index = min(running.step_index, total - 1)
        key = "step_last" if index == total - 1 else "step"
        self.set_state("step", **{**self.data, "session_id": running.id})
        text = skill.step_text(index, self.ctx.resources(self.p.phone))  # numbers of their own country
        self.say(key, text=text, n=index + 1, total=total)

    def _ask_post_rating(self, running: ExerciseRecord) -> None:
        if running.distress_state == "none":
            self._complete(running)
            return
        self.set_state("post_rating", **{**self.data, "session_id": running.id})
        self.say("post_rating")

    def _complete(self, running: ExerciseRecord, *, encourage: bool = True) -> None:
        running.status = "completed"
        running.completed_at = self.ctx.now
        self.set_state("idle", last_state=running.distress_state, tried=self.data.get("tried", []))
        if not encourage:
            return
        if running.distress_state == "none":
            self.say("card_done")
            return
        before, after = running.rating_before, running.rating_after
        skill = self.ctx.library.skill(running.skill_id)
        if before is None or after is None:
            key = "encourage_generic"
        elif after < before:
            key = "encourage_improved"
        elif after == before:
            key = "encourage_same"
        else:
            key = "encourage_worse"
        variants = self.ctx.library.messages_list(key)
        choice = running.id % len(variants)  # rotate wording from one session to the next
        self.out.replies.append(
            self.ctx.library.message(key, variant=choice, before=before, after=after, title=skill.title,
                                     program=self.ctx.program_name,
                                     resources=self.ctx.resources(self.p.phone).summary)
        )

    def _abandon(self, running: ExerciseRecord) -> None:
        running.status = "abandoned"
        running.completed_at = self.ctx.now
        self.set_state("idle", last_state=running.distress_state, tried=self.data.get("tried", []))

    def _running(self) -> ExerciseRecord | None:
        session_id = self.data.get("session_id")
        if not session_id:
            return None
        running = self._exercises.get(session_id)
        if running is None:
            running = EXERCISES.load(self.connection, session_id)
            if running is None:
                return None
            self._exercises[session_id] = running
        return running if running.status == "active" else None

    def _write_exercises(self) -> None:
        """Write the changed exercise sessions, so that queries and the end of the text see them."""
        for running in self._exercises.values():
            EXERCISES.save(self.connection, running)

    def _history(self) -> SkillHistory:
        self._write_exercises()
        return skill_history(self.session, self.p.id)

    def _pause(self, arg: str) -> None:
        self.p.nudges_paused = True
        m = re.match(r"(?:for )?(\d{1,2}) ?(day|days|d|week|weeks|w)$", arg.strip())
        if m:
            days = int(m.group(1)) * (7 if m.group(2).startswith("w") else 1)
            self.p.paused_until = self.ctx.now + timedelta(days=max(days, 1))
            local = self.p.paused_until.astimezone(ZoneInfo(self.p.timezone))
            self.say("paused_until", date=local.strftime("%a %b %d").replace(" 0", " "))
        else:
            self.p.paused_until = None
            self.say("paused_indefinitely")

    def _set_time(self, arg: str) -> None:
        parsed = parse_time(arg)
        if parsed is None:
            self.say("time_invalid")
            return
        if not allowed_time(parsed, self.p.quiet_start, self.p.quiet_end):
            self.say("time_outside_window", start=_display_time(self.p.quiet_start),
                     end=_display_time(self.p.quiet_end))
            return
        self.p.nudge_time = parsed
        self.say("time_set", time=_display_time(parsed))

    def _plan(self) -> None:
        plan = self.session.scalar(select(SafetyPlan).where(SafetyPlan.participant_id == self.p.id))
        texts = plan_texts(self.ctx.library, plan)
        if not texts:
            self.say("plan_none")
            return
        self.out.replies.extend(texts)

    def _mark_nudge_replied(self) -> None:
        nudge = self.session.scalar(
            select(NudgeLog)
            .where(NudgeLog.participant_id == self.p.id, NudgeLog.content.in_(("practice", "checkin")))
            .order_by(NudgeLog.planned_at.desc())
            .limit(1)
        )
        if nudge is not None and nudge.replied_at is None:
            nudge.replied_at = self.ctx.now

    # -- the evening diary card (bot.diary) and LOG
    def _in_diary(self, body: str, command: tuple[str, str] | None, rating: int | None) -> bool:
        turn = diary.take_answer(
            self.session, self.ctx.library, self.p.id, self.data, body, command[0] if command else None,
            lambda: self._classify(body).state != "none", self.ctx.now, program=self.ctx.program_name,
            diary_time=self.p.diary_time)
        self.set_state(turn.state, **turn.data)
        self.out.replies.extend(turn.replies)
        if turn.safety_check:  # a high self-harm urge: the direct question, as after a low check-in
            ask_directly(self.session, self.ctx, self.p, diary.SAFETY_CATEGORY, diary.SAFETY_OFFER_STATE,
                         "diary_safety_question", self.out)
        return turn.handled

    def _diary(self, arg: str) -> None:
        """DIARY (on), DIARY OFF, DIARY <time> (on, at that time)."""
        word = arg.strip()
        if word in diary.OFF_WORDS:
            self.p.diary_enabled = False
            self.say("diary_off")
            return
        wanted = self.p.diary_time if word in diary.ON_WORDS else parse_time(word)
        if wanted is None:
            self.say("diary_help")
            return
        if not allowed_time(wanted, self.p.quiet_start, self.p.quiet_end):  # it would never be sent
            self.say("diary_time_outside_window", start=_display_time(self.p.quiet_start),
                     end=_display_time(self.p.quiet_end))
            return
        if word not in diary.ON_WORDS:
            self.p.diary_time = wanted
        elif self.p.diary_enabled:
            self.say("diary_already_on", time=_display_time(self.p.diary_time))
            return
        self.p.diary_enabled = True
        self.say("diary_on", time=_display_time(self.p.diary_time),
                 total=len(diary.card_of(self.ctx.library).questions))

    def _log(self, arg: str) -> None:
        """LOG <words>: a trigger in their own words, for the counselor's notes (no alert)."""
        words = diary.log_words(self.body, fallback=arg)
        if not words:
            self.say("log_help")
            return
        diary.add_trigger(self.session, self.p.id, words, diary.SOURCE_LOG, self.ctx.now)
        self.say("log_saved")


def _sounds_distressed(match: StateMatch) -> bool:
    """A text that matched no state but carried some distress cue below the threshold."""
    return any("->" in cue and not cue.startswith(("none", "typo")) for cue in match.evidence)


_CATEGORY_ORDER = (
    "breathing", "grounding", "distress_tolerance", "emotion_regulation", "interpersonal", "cbt",
    "mindfulness", "relapse_prevention", "sleep", "anger", "psychoeducation",
)


def _category_rank(category: str) -> int:
    return _CATEGORY_ORDER.index(category) if category in _CATEGORY_ORDER else len(_CATEGORY_ORDER)


def parse_time(text: str) -> str | None:
    """"HH:MM" (24 h) from "7pm", "7:30 pm", "19:30", "0730"; None when it is not a time."""
    text = normalise(text).replace(" ", "")
    m = re.fullmatch(r"(\d{1,2})(?::?(\d{2}))?(am|pm|a|p)?", text)
    if not m:
        return None
    hour, minute, suffix = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if suffix:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix.startswith("p") else 0)
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def allowed_time(hhmm: str, start: str, end: str) -> bool:
    """True when "HH:MM" lies in the allowed window [start, end] (which may wrap past midnight)."""
    return in_window(parse_hhmm(hhmm), parse_hhmm(start), parse_hhmm(end))


def _display_time(hhmm: str) -> str:
    hour, minute = (int(x) for x in hhmm.split(":"))
    suffix = "am" if hour < 12 else "pm"
    shown = hour % 12 or 12
    return f"{shown}{suffix}" if minute == 0 else f"{shown}:{minute:02d}{suffix}"


def skill_history(session: Session, participant_id: int) -> SkillHistory:
    """Recent skills and how much each helped this participant and everyone."""
    connection = session.connection()
    params = {"participant_id_": participant_id}
    return SkillHistory(
        recent=tuple(connection.execute(_RECENT_SKILLS, params).scalars()),
        own_gain={skill_id: float(value) for skill_id, value in connection.execute(_OWN_GAINS, params)},
        global_gain=_global_gains(session),
    )


_GAIN = func.avg(ExerciseSession.rating_before - ExerciseSession.rating_after)
_RATED = (ExerciseSession.rating_before.is_not(None), ExerciseSession.rating_after.is_not(None))
_RECENT_SKILLS = (
    select(ExerciseSession.skill_id)
    .where(ExerciseSession.participant_id == bindparam("participant_id_"))
    .order_by(ExerciseSession.started_at.desc(), ExerciseSession.id.desc())
    .limit(5)
)
_OWN_GAINS = (
    select(ExerciseSession.skill_id, _GAIN)
    .where(ExerciseSession.participant_id == bindparam("participant_id_"), *_RATED)
    .group_by(ExerciseSession.skill_id)
)
_GLOBAL_TTL_SECONDS = 300.0
_global_cache: dict[int, tuple[float, dict[str, float]]] = {}


def _global_gains(session: Session) -> dict[str, float]:
    """Mean rating drop per skill across everyone; an aggregate over all sessions, so cached a while."""
    key = id(session.get_bind())
    cached = _global_cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    rows = session.execute(select(ExerciseSession.skill_id, _GAIN).where(*_RATED).group_by(ExerciseSession.skill_id))
    gains = {skill_id: float(value) for skill_id, value in rows}
    _global_cache[key] = (time.monotonic() + _GLOBAL_TTL_SECONDS, gains)
    return gains


def _msg(ctx: Context, key: str, **values: Any) -> str:
    return ctx.library.message(key, program=ctx.program_name, **values)
