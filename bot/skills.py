"""The skills library: every coping skill, every bot message and the crisis resources per country.

Content lives in `skills_library/` as YAML, written and signed off by clinicians:

- `skills/<id>.yaml`: one coping skill per file (schema: `Skill`).
- `crisis/<CC>.yaml`: crisis resources per country, ISO alpha-2; `XX.yaml` is the international
  fallback (schema: `CrisisResources`).
- `messages.yaml`: every other text the bot sends, `key: text` or `key: [variant, ...]`.

`load_library` validates everything once at start and refuses to return a library with errors;
`check_library` runs the same checks and returns every problem (errors and warnings) at once, so
an editor can fix a whole batch in one pass. Checks cover the schema, SMS fitness (GSM-7 only, at
most two segments, words carriers act on) and rules across files.
"""

from __future__ import annotations

import re
import string
import sys
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlparse

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from bot import risk
from bot.segments import is_gsm7, non_gsm7_chars, septets
from bot.tables import check_rules_tables
from bot.text import normalise
from bot.vocabulary import FLAGS as FLAGS
from bot.vocabulary import OPT_IN_WORDS as OPT_IN_WORDS
from bot.vocabulary import OPT_OUT_WORDS, Flag, State, medically_allowed
from bot.vocabulary import STATES as STATES

DEFAULT_LIBRARY_PATH = Path(__file__).resolve().parent.parent / "skills_library"

Category = Literal[
    "breathing", "grounding", "distress_tolerance", "emotion_regulation", "interpersonal", "cbt",
    "mindfulness", "relapse_prevention", "sleep", "anger", "psychoeducation",
]
CATEGORIES: tuple[str, ...] = get_args(Category)

# What a skill physically asks of the body; each one carries a medical gate (see _SAFETY_GATES).
Involvement = Literal["breath_hold", "cold_face_immersion", "intense_exercise"]
INVOLVEMENTS: tuple[str, ...] = get_args(Involvement)

# Breath holds and the cold-water dive reflex change heart rate and oxygen: the sources advise
# medical clearance for heart or lung conditions and pregnancy (see the skills' cited sources).
_HOLD_RISKS: frozenset[str] = frozenset({"heart_condition", "lung_condition", "pregnancy"})
_SAFETY_GATES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # involvement: (flags that must be in avoid_if, flags that must be in requires)
    "breath_hold": (_HOLD_RISKS, frozenset()),
    # The dive reflex and hard exercise are unsafe with an eating disorder (electrolytes, heart
    # rhythm): Linehan, DBT Skills Training Manual, 2nd ed. (2015), TIP skills cautions.
    "cold_face_immersion": (_HOLD_RISKS | {"eating_disorder"}, frozenset({"cleared_cold_water"})),
    "intense_exercise": (
        frozenset({"heart_condition", "pregnancy", "eating_disorder"}),
        frozenset({"cleared_intense_exercise"}),
    ),
}

# Whole-word replies carriers and Twilio act on (bot.vocabulary). A participant who copies one of
# them back to us is opted out of every text, so no text may contain them outside the opt-out
# instruction itself.
CARRIER_WORDS: tuple[str, ...] = OPT_OUT_WORDS

# Messages that must name the opt-out / opt-in keywords (US carrier rules require it).
OPT_OUT_INSTRUCTION_KEYS: frozenset[str] = frozenset(
    {"help", "consent_invitation", "opted_out_confirmation", "opt_in_confirmation"}
)
# Messages that may ask for an opt-in reply (YES/START) but never name an opt-out word: the
# consent reminder re-sends the invitation, so it needs the same YES instruction.
OPT_IN_INSTRUCTION_KEYS: frozenset[str] = OPT_OUT_INSTRUCTION_KEYS | {"consent_reminder"}
# Message keys the bot's code uses; the loader refuses a library missing any of them.
# Every key the conversation engine sends; a library without one of them does not load.
REQUIRED_MESSAGE_KEYS: frozenset[str] = frozenset(
    {
        "already_active",
        "card_done",
        "category_anger",
        "category_breathing",
        "category_cbt",
        "category_distress_tolerance",
        "category_emotion_regulation",
        "category_grounding",
        "category_interpersonal",
        "category_mindfulness",
        "category_psychoeducation",
        "category_relapse_prevention",
        "category_sleep",
        "checkin_thanks",
        "checkin_low",
        "consent_invitation",
        "consent_reminder",
        "counselor_crisis_alert",
        "counselor_crisis_alert_unknown",
        "alert_reason_text",
        "alert_reason_answer",
        "alert_told_lines",
        "alert_told_emergency",
        "alert_told_third_party",
        "alert_told_nothing",
        "crisis_plan_hint",
        "counselor_optout_notice",
        "crisis_ask_safety",
        "crisis_emergency",
        "crisis_followup_safe",
        "crisis_followup_unsafe",
        "crisis_open_reply",
        "counselor_followup_alert",
        "followup_answer_unsafe",
        "followup_answer_unclear",
        "crisis_reply",
        "crisis_reply_unknown",
        "crisis_third_party",
        "crisis_violence",
        "encourage_generic",
        "encourage_improved",
        "encourage_same",
        "encourage_worse",
        "error_generic",
        "help",
        "help_crisis",
        "media_only",
        "medical_screen",
        "menu",
        "menu_invalid",
        "more_exhausted",
        "more_without_context",
        "none_menu",
        "opt_in_confirmation",
        "opted_out_confirmation",
        "paused_indefinitely",
        "paused_until",
        "plan_contacts",
        "plan_coping_strategies",
        "plan_distractions",
        "plan_intro",
        "plan_none",
        "plan_professionals",
        "plan_safe_environment",
        "plan_warning_signs",
        "post_rating",
        "rating_invalid",
        "resumed",
        "skill_intro",
        "step",
        "step_help",
        "step_last",
        "time_invalid",
        "time_outside_window",
        "time_set",
        "unknown_number",
        "about_program",
        "alert_link",
        "check_no",
        "check_question",
        "check_reask",
        "cohort_broadcast",
        "cohort_reminder",
        "counselor_ack_already",
        "counselor_ack_done",
        "counselor_ack_held",
        "counselor_ack_refused",
        "counselor_ack_resumed",
        "counselor_backoff_notice",
        "counselor_check_alert",
        "counselor_delivery_failed",
        "counselor_invalid_number",
        "crisis_realert",
        "diary_already_on",
        "diary_help",
        "diary_move_on",
        "diary_not_now",
        "diary_off",
        "diary_on",
        "diary_on_by_counselor",
        "diary_question",
        "diary_safety_question",
        "diary_start",
        "diary_start_discreet",
        "diary_thanks",
        "diary_time_outside_window",
        "log_help",
        "log_saved",
        "none_invite",
        "nudge_checkin",
        "nudge_checkin_discreet",
        "nudge_discreet",
        "nudge_practice",
        "plan_part",
        "plan_reasons_for_living",
        "slip_ack",
        "step_rating_noted",
        "unnamed_participant",
    }
)

# Per-field keyword exemptions for crisis-resource texts. The US domestic violence hotline's own
# text line is "text START to 88788": START there is a keyword of ANOTHER service's short code,
# so it cannot opt anyone in or out of ours, and the participant needs the exact wording.
# Only opt-in words can be exempted here; opt-out words are never allowed in crisis texts.
# Keys are field paths with list indexes written as [].
KEYWORD_EXEMPTIONS: Mapping[str, frozenset[str]] = {
    "violence": frozenset({"START"}),
    "resources[].how": frozenset({"START"}),
}

# Countries that must have a crisis file; XX is the international fallback.
REQUIRED_COUNTRIES: tuple[str, ...] = ("US", "CA", "GB", "IE", "AU", "XX")
FALLBACK_COUNTRY = "XX"
# US-only short codes (Crisis Text Line, DV hotline, Veterans Crisis Line): texting them from
# another country fails or reaches nobody, so they must never appear in a non-US file.
US_SHORT_CODES: tuple[str, ...] = ("741741", "88788", "838255")

# The messages that wrap each step as it is sent ({text}, {n}, {total}): middle steps, last step.
STEP_MESSAGE_KEYS: tuple[str, str] = ("step", "step_last")

# Placeholders a skill step may use, filled when the step is sent from the participant's own
# crisis resources (crisis/<CC>.yaml, the CrisisResources field named here), so that no step
# hard-codes one country's numbers. The last two fields are optional: a country without one fills
# nothing, so the checker only allows them as a sentence of their own (the step reads well without).
STEP_PLACEHOLDERS: Mapping[str, str] = {
    "resources": "summary",  # the crisis lines, as every crisis reply gives them
    "emergency": "emergency",  # "If you are in danger ... call 911 now."
    "emergency_number": "emergency_number",  # "911", "999", "112 or 999", ...
    "drug_helpline": "drug_helpline",  # a drug and alcohol information and treatment line
    "overdose_line": "overdose_line",  # a line that stays on the phone with someone using alone
}
# The lines of a crisis file the bot sends (skill steps through STEP_PLACEHOLDERS).
SENT_RESOURCE_LINES: tuple[str, ...] = (
    "summary", "emergency", "violence", "emergency_number", "drug_helpline", "overdose_line",
)

# Crisis replies (bot.conversation): what a participant, or an unknown number, gets when a text
# reads as a crisis or a possible risk, or asks for help. Each says the texts are automated and
# not monitored 24/7, so nobody takes the bot for a person watching. Every key starting crisis_ or
# check_ is one; so are these.
CRISIS_REPLY_KEYS: frozenset[str] = frozenset({"help_crisis", "checkin_low", "diary_safety_question"})
# ...except the lines only ever sent together with such a reply (the emergency line before it, the
# domestic-violence line and the safety-plan hint after it) and the counselors' reminder.
CRISIS_REPLY_EXEMPT_KEYS: frozenset[str] = frozenset(
    {"crisis_emergency", "crisis_violence", "crisis_plan_hint", "crisis_realert"}
)
# Crisis replies sent once the counselor has been alerted also say so, and that the counselor may
# not see it right away. (crisis_third_party also reaches unknown numbers, who have no counselor
# here, so it says this only of people in the program.)
ALERTED_REPLY_KEYS: frozenset[str] = frozenset(
    {"crisis_reply", "crisis_third_party", "crisis_followup_safe", "crisis_followup_unsafe", "crisis_open_reply"}
)
_AUTOMATED_RE = re.compile(r"\bautomated\b[^.]{0,20}\bnot (?:monitored|watched) 24/7", re.IGNORECASE)
_ALERTED_RE = re.compile(
    r"\bcounselor has been alerted(?: again)? but may not (?:see it right away|have seen it yet)", re.IGNORECASE
)
# Dead ends: replies after which the conversation has no next step (paused, opted out, not joined,
# nothing more to offer, an answer the bot cannot use, a skill that made things worse). Each names
# the crisis lines ({resources}), so a dead end always keeps a way out.
DEAD_END_KEYS: frozenset[str] = frozenset({
    "plan_none", "opted_out_confirmation", "more_exhausted", "menu_invalid", "paused_indefinitely",
    "paused_until", "unknown_number", "consent_reminder", "encourage_worse",
})

MAX_SEPTETS = 306  # two concatenated GSM-7 segments (2 x 153)
# Every distress state needs at least this many skills in helps_with, so MORE has real choices and
# people whose medical flags hide some skills still get several.
MIN_SKILLS_PER_STATE = 6
ONE_SEGMENT = 160
# Crisis resources go stale (numbers change); re-verify at least yearly.
RESOURCES_STALE_AFTER = timedelta(days=365)
# Wording that says a number was NOT checked. A verification date (last_verified, verified_on)
# means a person called or texted every number it covers, so it cannot sit next to this wording:
# anywhere in a crisis file (comments included) for last_verified, in the resource for verified_on.
_UNVERIFIED_RE = re.compile(
    r"\b(?:not (?:yet )?(?:re-?)?verified|unverified|from memory"
    r"|(?:re-?)?verify (?:\w+ ){0,2}before (?:use|using|launch))\b",
    re.IGNORECASE,
)

# Skill sources must be the primary work or a reputable page (publisher, DOI or PubMed, agency,
# university or hospital). rules/denied_sources.yaml lists domains never to cite (pirate
# libraries, document-sharing copies, AI-generated pages); a URL on one of them, or on any
# subdomain of one, is an error.
DENIED_SOURCES_FILE = "rules/denied_sources.yaml"
_DOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
# Value substituted for each {placeholder} when measuring a message's length.
PLACEHOLDER_SAMPLE = "Abcdefghij Klmnopqrs"  # 20 characters

_WORD_LIST = "|".join(w.lower() for w in CARRIER_WORDS)
_CARRIER_RE = re.compile(rf"\b({_WORD_LIST})\b", re.IGNORECASE)
_OPT_IN_ASK_RE = re.compile(
    r"\b(?:reply|text|send|type|respond|answer)(?:\s+with)?\s+[\"']?("
    + "|".join(w.lower() for w in OPT_IN_WORDS) + r")\b",
    re.IGNORECASE,
)
# Word stems a lock-screen-safe ("discreet") prompt must not contain: each would tell anyone
# glancing at the phone that the texts are about mental health or substance use.
REVEALING_STEMS: tuple[str, ...] = (
    "anxi", "panic", "depress", "suicid", "crisis", "crav", "relaps", "therap", "counsel", "mental",
    "sober", "drink", "drug", "alcohol", "addict", "recover", "iop", "dbt", "cbt", "cope", "coping",
    "trauma", "psych", "urge", "distress", "emotion", "treatment", "clinic", "program", "skill",
    "anger", "angry", "sad", "lonel", "shame", "insomnia", "mood",
)
_REVEALING_RE = re.compile(r"\b(" + "|".join(REVEALING_STEMS) + r")\w*", re.IGNORECASE)
_REPLY_NEXT_RE = re.compile(r"\b(?:reply|text|send|type)\s+[\"']?next\b", re.IGNORECASE)
# The project writes US "practice" for the noun and the verb alike.
_PRACTISE_RE = re.compile(r"\bpractis\w*", re.IGNORECASE)
# A phone number or short code in a crisis line (three digits or more count), spaces and hyphens
# inside; digits run into letters (1800RESPECT, 988lifeline.org) are a name, not a number.
_NUMBER_RE = re.compile(r"(?<![\w-])\d[\d -]*\d(?!\w)")
_KEBAB_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_MESSAGE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_SHORT_CODE_RE = re.compile(r"\b(" + "|".join(US_SHORT_CODES) + r")\b")

# Heuristics that catch a physically risky step whose skill does not declare it in `involves`.
_NEG = r"(?<!without )(?<!not )(?<!no )(?<!dont )(?<!don't )(?<!never )"
_INVOLVEMENT_HINTS: dict[str, re.Pattern[str]] = {
    "breath_hold": re.compile(
        _NEG + r"\b(?:hold(?:ing)? (?:your |the )?breath|breath[- ]?holds?\b"
        r"|hold (?:it )?for (?:a count of )?(?:\d|four|seven)|hold with (?:your )?lungs)",
        re.IGNORECASE,
    ),
    "cold_face_immersion": re.compile(
        r"\b(?:face|eyes)\b[^.]*\b(?:bowl|basin|sink|ice pack|cold pack)\b"
        r"|\b(?:bowl|basin|sink|ice pack|cold pack)\b[^.]*\b(?:face|eyes)\b",
        re.IGNORECASE,
    ),
    "intense_exercise": re.compile(r"\b(?:sprint\w*|jumping jacks|burpees|run up and down)\b", re.IGNORECASE),
}

# Plain replacements for the characters phones and word processors insert.
_PLAIN = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
    "\u2026": "...", "\u00a0": "space", "\u00e1": "a", "\u00ed": "i", "\u00f3": "o", "\u00fa": "u",
}


# ---------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the library: where (file relative to the library, field) and what."""

    file: str
    field: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.severity}: {self.message}"


class LibraryError(Exception):
    """The library has errors; `problems` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the skills library:\n" + format_problems(problems))


def format_problems(problems: Iterable[Problem]) -> str:
    """One line per problem, in the order found (file by file)."""
    return "\n".join(str(p) for p in problems)


# ---------------------------------------------------------------------------------------------
# Schema


def _clean_text(value: str) -> str:
    # YAML folded and literal blocks end in a newline that would cost a septet and show on screen.
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _check_trigger(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    plain = normalise(value)
    if value != plain:
        raise ValueError(
            f"write it as {plain!r}: triggers are compared with texts after normalisation "
            "(lower case, no apostrophes or punctuation, no digits inside words)"
        )
    return value


def _check_url(value: str) -> str:
    parts = urlparse(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise ValueError("must be a full http:// or https:// address")
    return value


def _check_kebab(value: str) -> str:
    if not _KEBAB_RE.match(value):
        raise ValueError("must be kebab-case: lower-case letters and digits joined by single hyphens")
    return value


def _check_country(value: str) -> str:
    if not _COUNTRY_RE.match(value):
        raise ValueError("must be an ISO 3166 alpha-2 code in capitals, e.g. US (XX for international)")
    return value


Text = Annotated[str, AfterValidator(_clean_text)]
Trigger = Annotated[str, AfterValidator(_check_trigger)]
Url = Annotated[str, AfterValidator(_check_url)]


class _Strict(BaseModel):
    # strict: YAML's "yes"/"no" booleans and bare numbers are not silently turned into text.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Source(_Strict):
    """Where a skill's content comes from."""

    citation: Text
    url: Url


class Skill(_Strict):
    """One coping skill, delivered one step per text."""

    id: Annotated[str, AfterValidator(_check_kebab)]
    title: Text
    category: Category
    helps_with: list[State]
    triggers: list[Trigger] = Field(min_length=4, max_length=10)
    duration_minutes: int = Field(ge=1, le=30)
    steps: list[Text] = Field(min_length=2, max_length=12)
    practice_prompt: Text
    practice_prompt_discreet: Text | None = None
    sources: list[Source] = Field(min_length=1)
    cautions: list[Text] = Field(default_factory=list)
    involves: list[Involvement] = Field(default_factory=list)
    avoid_if: list[Flag] = Field(default_factory=list)
    requires: list[Flag] = Field(default_factory=list)
    medical_screen: bool = False
    reviewed_by: Text | None = None
    reviewed_on: date | None = None

    def allowed_for(self, flags: Collection[str]) -> bool:
        """True when a participant with these flags may be offered the skill (the medical gate)."""
        return medically_allowed(self, flags)

    def sent_texts(self) -> list[tuple[str, str]]:
        """(field, text) for every text of this skill that is sent to participants."""
        return _sendable_skill_texts(self.model_dump())

    def step_text(self, index: int, resources: CrisisResources) -> str:
        """Step `index` as sent to a participant whose crisis resources are `resources`."""
        return fill_step(self.steps[index], resources)


class Resource(_Strict):
    """One crisis service, for counselors and the HELP text."""

    name: Text
    how: Text
    notes: Text | None = None
    # This one number checked on its own (e.g. added after the whole file was verified):
    # the date a person called or texted it, and who. Both or neither.
    verified_on: date | None = None
    verified_by: Text | None = None


class CrisisResources(_Strict):
    """Crisis resources for one country and the exact SMS lines the bot sends.

    `last_verified` is the date a person called or texted every number in the file, and
    `verified_by` who did: both or neither, and both must be written (null until someone checks).
    `emergency_number`, `drug_helpline` and `overdose_line` are sent inside skill steps
    (STEP_PLACEHOLDERS); the last two are optional, for countries that have such a line.
    """

    country: Annotated[str, AfterValidator(_check_country)]
    last_verified: date | None
    verified_by: Text | None
    owner: Text
    resources: list[Resource] = Field(min_length=1)
    summary: Text
    emergency: Text
    violence: Text
    emergency_number: Text
    drug_helpline: Text | None = None
    overdose_line: Text | None = None

    def unverified(self, today: date | None = None) -> list[str]:
        """Why these numbers cannot be trusted yet, one reason a line; empty when a person has
        checked every number (the file as a whole, or each resource), within a year of `today`."""
        if self.last_verified is not None and self.verified_by:
            checked = [("every number", self.last_verified)]
        else:
            missing = [r.name for r in self.resources if r.verified_on is None or not r.verified_by]
            if missing:
                return [f"not verified by a person: {', '.join(missing)}"]
            checked = [(r.name, r.verified_on) for r in self.resources if r.verified_on is not None]
        if today is None:
            return []
        return [f"{what}: last verified {when.isoformat()}, over a year ago"
                for what, when in checked if today - when > RESOURCES_STALE_AFTER]


# The evening diary card (diary_card.yaml; asked by bot.diary, one question per text).
DIARY_FILE = "diary_card.yaml"
DiaryKind = Literal["scale", "yes_no", "words"]
_DIARY_ITEM_RE = re.compile(r"^[a-z][a-z0-9_]{0,23}$")  # DiaryEntry.item is 24 characters
# The messages bot.diary and the DIARY and LOG commands send.
DIARY_MESSAGE_KEYS: frozenset[str] = frozenset({
    "diary_start", "diary_start_discreet", "diary_question", "diary_move_on", "diary_thanks", "diary_not_now",
    "diary_safety_question", "diary_on", "diary_already_on", "diary_off", "diary_help",
    "diary_time_outside_window", "diary_on_by_counselor", "log_saved", "log_help",
})


def _check_diary_item(value: str) -> str:
    if not _DIARY_ITEM_RE.match(value):
        raise ValueError("must be snake_case (lower-case letters, digits, underscores), at most 24 characters")
    return value


class DiaryQuestion(_Strict):
    """One question of the diary card: a number on a scale, yes or no, or a few words."""

    id: Annotated[str, AfterValidator(_check_diary_item)]
    label: Text
    kind: DiaryKind
    ask: Text
    reask: Text
    low: int | None = Field(default=None, ge=0, le=10)
    high: int | None = Field(default=None, ge=1, le=10)
    safety_check_at: int | None = None
    records_trigger: bool = False


class DiaryCard(_Strict):
    """The diary card's questions, in the order they are asked."""

    questions: list[DiaryQuestion] = Field(min_length=1, max_length=8)
    reviewed_by: Text | None = None
    reviewed_on: date | None = None


# ---------------------------------------------------------------------------------------------
# The library


@dataclass(frozen=True)
class Library:
    """The validated library. Build it with `load_library`; treat it as read-only."""

    skills: dict[str, Skill]
    messages: dict[str, str | list[str]]
    resources: dict[str, CrisisResources]
    diary: DiaryCard | None = None  # diary_card.yaml (load_library refuses a library without it)

    def skill(self, skill_id: str) -> Skill:
        """The skill with this id; KeyError if there is none."""
        try:
            return self.skills[skill_id]
        except KeyError:
            raise KeyError(f"no skill {skill_id!r} in the library") from None

    def for_state(self, state: str) -> list[Skill]:
        """Skills that help with `state`, those listing it earliest in helps_with first, then by id.

        `none` has no skills; any other unknown state raises ValueError.
        """
        if state == "none":
            return []
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        ranked = [(list(map(str, s.helps_with)).index(state), s.id, s) for s in self.skills.values()
                  if state in s.helps_with]
        return [s for _, _, s in sorted(ranked, key=lambda r: (r[0], r[1]))]

    def messages_list(self, key: str) -> list[str]:
        """Every variant of message `key` as raw templates (a plain text is a list of one).

        Fill one with `message(key, variant=i, **values)`.
        """
        return list(self._templates(key))

    def message(self, key: str, *, variant: int = 0, **values: object) -> str:
        """Message `key` with placeholders filled; for variants, number `variant` (wrapping round)."""
        templates = self._templates(key)
        return _fill(key, templates[variant % len(templates)], values)

    def unreviewed(self) -> list[str]:
        """Ids of skills no clinician has signed off (empty `reviewed_by`)."""
        return sorted(s.id for s in self.skills.values() if not s.reviewed_by)

    def crisis_resources(self, country: str | None) -> CrisisResources:
        """Resources for an ISO alpha-2 country, or the international (XX) file if there is none."""
        code = (country or "").strip().upper()
        return self.resources.get(code) or self.resources[FALLBACK_COUNTRY]

    def unverified_resources(self, today: date | None = None) -> dict[str, list[str]]:
        """Country code -> reasons, for every crisis file a person has not (recently) verified.

        For a production start-up check: the bot must not send unchecked numbers to people in
        crisis. `today` also counts verifications over a year old.
        """
        found = {code: entry.unverified(today) for code, entry in sorted(self.resources.items())}
        return {code: reasons for code, reasons in found.items() if reasons}

    def _templates(self, key: str) -> list[str]:
        try:
            value = self.messages[key]
        except KeyError:
            raise KeyError(f"no message {key!r} in messages.yaml") from None
        return [value] if isinstance(value, str) else value


def _fill(key: str, template: str, values: Mapping[str, object]) -> str:
    try:
        return template.format(**values)
    except KeyError as exc:
        raise KeyError(f"message {key!r} needs a value for {{{exc.args[0]}}}") from None


def fill_step(text: str, resources: CrisisResources) -> str:
    """A skill step with its {placeholders} (STEP_PLACEHOLDERS) filled from one country's crisis
    resources. An optional line the country does not have is left out with its space."""
    values = {name: getattr(resources, field) or "" for name, field in STEP_PLACEHOLDERS.items()}
    return re.sub(r" {2,}", " ", text.format(**values)).strip()


def _placeholder_names(text: str) -> frozenset[str] | None:
    """The placeholder names in a text, or None when its braces cannot be parsed."""
    try:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)
    except ValueError:
        return None


def export_library(lib: Library) -> list[dict[str, Any]]:
    """Every skill as a JSON-ready dict (all fields, dates as ISO strings), sorted by id."""
    return [lib.skills[sid].model_dump(mode="json") for sid in sorted(lib.skills)]


def load_library(path: Path = DEFAULT_LIBRARY_PATH) -> Library:
    """The library at `path`, fully validated; raises LibraryError listing every error.

    Warnings (see check_library) do not stop loading.
    """
    library, problems = _build(Path(path), today=None)
    errors = [p for p in problems if p.severity == "error"]
    if errors or library is None:
        raise LibraryError(errors)
    return library


def check_library(path: Path = DEFAULT_LIBRARY_PATH, *, today: date | None = None) -> list[Problem]:
    """Every problem in the library at `path`, errors and warnings, file by file.

    `today` enables the check that crisis resources were verified within the last year.
    """
    return _build(Path(path), today=today)[1]


# ---------------------------------------------------------------------------------------------
# Building and checking


class _Report:
    """Collects problems for one file, so each check only names its field."""

    def __init__(self, problems: list[Problem], file: str) -> None:
        self.problems = problems
        self.file = file

    def error(self, field: str, message: str) -> None:
        self.problems.append(Problem(self.file, field, message, "error"))

    def warning(self, field: str, message: str) -> None:
        self.problems.append(Problem(self.file, field, message, "warning"))


def _build(root: Path, today: date | None) -> tuple[Library | None, list[Problem]]:
    problems: list[Problem] = []
    if not root.is_dir():
        return None, [Problem(str(root), "", "skills library folder not found")]
    skills = _load_skills(root, problems)
    _check_denied_sources(root, skills, problems)
    resources = _load_resources(root, problems, today)
    messages = _load_messages(root, problems)
    diary = _load_diary(root, messages, problems)
    _check_coverage(skills, problems)
    _check_trigger_overlap(skills, problems)
    _check_steps_as_sent(skills, messages, problems)
    _check_step_placeholders(skills, resources, problems)
    problems.extend(check_rules_tables(root))  # rules/: crisis rules, matching lexicon, SMS spellings
    # rules/context.yaml, and models/ no older than training/
    problems.extend(Problem(file, field, message) for file, field, message in risk.check_tables(root))
    return Library(skills=skills, messages=messages, resources=resources, diary=diary), problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _read_yaml(file: Path, report: _Report) -> Any:
    try:
        with file.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no object tags
    except (OSError, UnicodeDecodeError) as exc:
        report.error("", f"cannot read: {exc}")
    except yaml.YAMLError as exc:
        report.error("", f"not valid YAML: {' '.join(str(exc).split())}")
    return None


def _read_mapping(file: Path, report: _Report) -> dict[str, Any] | None:
    before = len(report.problems)
    data = _read_yaml(file, report)
    if data is None:
        if len(report.problems) == before:
            report.error("", "file is empty")
        return None
    if not isinstance(data, dict):
        report.error("", "must be a mapping of field: value")
        return None
    return data


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validate(model: type[_Strict], data: dict[str, Any], report: _Report) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            message = err["msg"]
            if err["type"] == "missing":
                message = "required field is missing"
            elif err["type"] == "extra_forbidden":
                message = "unknown field (check the spelling; see skills_library/README.md)"
            elif err["type"] == "value_error":
                message = message.removeprefix("Value error, ")
            elif err["type"] == "literal_error":
                message = f"{err['input']!r} is not allowed. {message}"
            report.error(_loc(err["loc"]), message)
        return None


# --- skills ---------------------------------------------------------------------------------


def _folder_mappings(
    root: Path, folder: str, key: str, problems: list[Problem]
) -> Iterator[tuple[Path, str, _Report, dict[str, Any]]]:
    """Each YAML mapping in root/folder (sorted), with its report; `key` must equal the file stem."""
    directory = root / folder
    for file in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        rel = file.relative_to(root).as_posix()
        report = _Report(problems, rel)
        data = _read_mapping(file, report)
        if data is None:
            continue
        if data.get(key) != file.stem:
            report.error(key, f"must equal the file name without .yaml ({file.stem!r}), got {data.get(key)!r}")
        yield file, rel, report, data


def _load_skills(root: Path, problems: list[Problem]) -> dict[str, Skill]:
    folder = root / "skills"
    if not (folder.is_dir() and any(folder.glob("*.yaml"))):
        problems.append(Problem("skills/", "", "no skill files (skills/*.yaml) found"))
    skills: dict[str, Skill] = {}
    seen_ids: dict[str, str] = {}
    for _file, rel, report, data in _folder_mappings(root, "skills", "id", problems):
        # Text checks run on the raw data so that a schema error elsewhere hides nothing.
        _check_skill_texts(data, report)
        skill = _validate(Skill, data, report)
        if skill is None:
            continue
        _check_skill_rules(skill, report)
        folded = skill.id.lower()
        if folded in seen_ids:
            report.error("id", f"duplicate id, also used by {seen_ids[folded]}")
            continue
        seen_ids[folded] = rel
        skills[skill.id] = skill
    return skills


def _sendable_skill_texts(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    texts: list[tuple[str, str]] = []
    for field in ("title", "practice_prompt", "practice_prompt_discreet"):
        if isinstance(data.get(field), str):
            texts.append((field, data[field].strip()))
    steps = data.get("steps")
    if isinstance(steps, list):
        texts.extend((f"steps[{i}]", s.strip()) for i, s in enumerate(steps) if isinstance(s, str))
    return texts


def _check_skill_texts(data: Mapping[str, Any], report: _Report) -> None:
    for field, text in _sendable_skill_texts(data):
        if field.startswith("steps"):
            _check_step_syntax(text, field, report)
            text = _render(text, {}) or text  # measured as sent, each placeholder a 20-character line
        elif "{" in text or "}" in text:
            report.error(field, "braces are only for {placeholders}, and only steps have them "
                                f"({', '.join('{' + n + '}' for n in STEP_PLACEHOLDERS)})")
        _check_sms_text(text, field, report)
        if _REPLY_NEXT_RE.search(text):
            report.error(field, 'do not write "reply NEXT": the bot adds its own prompt after each step')
    discreet = data.get("practice_prompt_discreet")
    if isinstance(discreet, str):
        for match in _REVEALING_RE.finditer(discreet):
            report.error(
                "practice_prompt_discreet",
                f"{match.group(0)!r} could reveal what the texts are about on a lock screen",
            )
    steps = [_render(t, {}) or t for f, t in _sendable_skill_texts(data) if f.startswith("steps")]
    long_steps = [i for i, s in enumerate(steps) if is_gsm7(s) and septets(s) > ONE_SEGMENT]
    for i in long_steps:
        report.warning(f"steps[{i}]", f"{septets(steps[i])} characters: over one SMS segment ({ONE_SEGMENT})")
    if steps and len(long_steps) * 3 > len(steps):
        share = f"{len(long_steps)} of {len(steps)}"
        report.error("steps", f"{share} steps exceed one SMS segment; at most a third may")


def _check_step_syntax(text: str, field: str, report: _Report) -> None:
    """A step's placeholders parse and are all in STEP_PLACEHOLDERS."""
    names = _placeholder_names(text)
    if names is None:
        report.error(field, "bad placeholder braces; write {{ and }} for literal braces")
        return
    known = ", ".join("{" + n + "}" for n in STEP_PLACEHOLDERS)
    for name in sorted(names - STEP_PLACEHOLDERS.keys()):
        report.error(field, f"unknown placeholder {{{name}}}: a step may use {known}, filled from the "
                            "participant's crisis resources (crisis/<CC>.yaml)")
    try:
        plain = all(not spec and not conversion for _, name, spec, conversion in string.Formatter().parse(text)
                    if name is not None)
    except ValueError:
        plain = False
    if not plain:
        report.error(field, "placeholders must be plain names like {emergency_number}")


def _check_sms_text(text: str, field: str, report: _Report, allowed_words: Collection[str] = ()) -> None:
    """GSM-7 only, at most two segments, no carrier keywords or opt-in asks unless allowed; one
    spelling of "practice" (a warning)."""
    bad = non_gsm7_chars(text)
    if bad:
        shown = ", ".join(f"{c!r} (use {_PLAIN[c]!r})" if c in _PLAIN else repr(c) for c in bad)
        report.error(field, f"not GSM-7, would be sent as UCS-2 at 70 characters a segment: {shown}")
        length = len(text)
    else:
        length = septets(text)
    if length > MAX_SEPTETS:
        report.error(field, f"{length} characters; the limit is {MAX_SEPTETS} (two SMS segments)")
    allowed = {w.upper() for w in allowed_words}
    for match in _CARRIER_RE.finditer(text):
        if match.group(1).upper() not in allowed:
            report.error(
                field,
                f"contains {match.group(1)!r}, a word carriers treat as opt-out; reword it "
                '(write "S-T-O-P" for the DBT skill, "afterwards" for "at the end", "pause" for "stop")',
            )
    for match in _OPT_IN_ASK_RE.finditer(text):
        if match.group(1).upper() not in allowed:
            word = match.group(1).upper()
            report.error(field, f"asks the reader to send {word!r}, a carrier opt-in keyword")
    for match in _PRACTISE_RE.finditer(text):
        report.warning(field, f"{match.group(0)!r}: write 'practice' (US spelling, noun and verb alike)")


def _check_skill_rules(skill: Skill, report: _Report) -> None:
    if not skill.helps_with and skill.category != "psychoeducation":
        report.error("helps_with", "must list at least one state (only psychoeducation cards may be empty)")
    for field in ("helps_with", "triggers", "avoid_if", "requires", "involves"):
        values: list[str] = getattr(skill, field)
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            report.error(field, f"listed more than once: {', '.join(dupes)}")
    both = sorted(set(skill.avoid_if) & set(skill.requires))
    if both:
        report.error("requires", f"also in avoid_if, so nobody could get this skill: {', '.join(both)}")
    if (skill.reviewed_by is None) != (skill.reviewed_on is None):
        report.error("reviewed_on", "reviewed_by and reviewed_on go together: fill both or neither")
    _check_safety_gates(skill, report)


def _check_safety_gates(skill: Skill, report: _Report) -> None:
    step_text = " ".join(skill.steps)
    for involvement, hint in _INVOLVEMENT_HINTS.items():
        found = hint.search(step_text)
        if found and involvement not in skill.involves:
            report.error(
                "involves",
                f"steps look like they involve {involvement.replace('_', ' ')} ({found.group(0)!r}); "
                f"add {involvement} to involves",
            )
    for involvement in skill.involves:
        must_avoid, must_require = _SAFETY_GATES[involvement]
        missing_avoid = sorted(must_avoid - set(skill.avoid_if))
        missing_require = sorted(must_require - set(skill.requires))
        if missing_avoid:
            report.error("avoid_if", f"{involvement} needs avoid_if to include {', '.join(missing_avoid)}")
        if missing_require:
            report.error("requires", f"{involvement} needs requires to include {', '.join(missing_require)}")
    breathing = skill.category == "breathing" or "breath_hold" in skill.involves
    if breathing and "panic" in skill.helps_with and not skill.medical_screen:
        report.error(
            "medical_screen",
            "a breathing skill offered for panic must send the medical screen first (medical_screen: true)",
        )


def _check_coverage(skills: Mapping[str, Skill], problems: list[Problem]) -> None:
    for state in STATES:
        helpers = [s.id for s in skills.values() if state in s.helps_with]
        if not helpers:
            problems.append(Problem("skills/", "helps_with", f"no skill helps with {state!r}"))
        elif len(helpers) < MIN_SKILLS_PER_STATE:
            message = (f"only {len(helpers)} skill(s) help with {state!r} ({', '.join(sorted(helpers))}); "
                       f"at least {MIN_SKILLS_PER_STATE} are needed")
            problems.append(Problem("skills/", "helps_with", message))


def _check_trigger_overlap(skills: Mapping[str, Skill], problems: list[Problem]) -> None:
    owners: dict[str, list[str]] = defaultdict(list)
    for skill in skills.values():
        for trigger in dict.fromkeys(skill.triggers):
            owners[trigger].append(skill.id)
    for trigger, ids in owners.items():
        if len(ids) > 1:
            for sid in ids:
                others = ", ".join(i for i in ids if i != sid)
                message = f"{trigger!r} is also a trigger of {others}"
                problems.append(Problem(f"skills/{sid}.yaml", "triggers", message, "warning"))


def _check_steps_as_sent(
    skills: Mapping[str, Skill], messages: Mapping[str, str | list[str]], problems: list[Problem]
) -> None:
    """Warn about steps that fit one segment alone but not once wrapped in the step message."""
    for skill in skills.values():
        total = len(skill.steps)
        for i, template_step in enumerate(skill.steps):
            step = _render(template_step, {}) or template_step  # each placeholder a 20-character line
            key = STEP_MESSAGE_KEYS[1] if i == total - 1 else STEP_MESSAGE_KEYS[0]
            template = messages.get(key)
            if not isinstance(template, str) or not is_gsm7(step) or septets(step) > ONE_SEGMENT:
                continue  # a missing template, UCS-2 or an already long step is reported elsewhere
            sent = _render(template, {"text": step, "n": i + 1, "total": total})
            if sent is not None and is_gsm7(sent) and septets(sent) > ONE_SEGMENT:
                problems.append(Problem(
                    f"skills/{skill.id}.yaml", f"steps[{i}]",
                    f"{septets(sent)} characters once sent with the {key!r} message; "
                    f"shorten it by {septets(sent) - ONE_SEGMENT} to fit one SMS segment",
                    "warning",
                ))


def _check_step_placeholders(
    skills: Mapping[str, Skill], resources: Mapping[str, CrisisResources], problems: list[Problem]
) -> None:
    """Every country can fill every step placeholder, and every step fits two segments once filled.

    A country file without an optional line (drug_helpline, overdose_line) fills nothing, which
    reads well only when the placeholder is a sentence of its own; anywhere else it is an error.
    """
    for skill in skills.values():
        file = f"skills/{skill.id}.yaml"
        for i, step in enumerate(skill.steps):
            names = _placeholder_names(step)
            if not names or not names <= STEP_PLACEHOLDERS.keys():
                continue  # none, or reported with the skill's texts
            for name in sorted(names):
                field = STEP_PLACEHOLDERS[name]
                lacking = sorted(code for code, entry in resources.items() if not getattr(entry, field))
                alone = re.search(r"(?:^|[.!?] +)\{" + name + r"\}(?: +|$)", step)
                if lacking and not alone:
                    problems.append(Problem(file, f"steps[{i}]", (
                        f"{{{name}}} cannot be filled for {', '.join(lacking)}: crisis/{lacking[0]}.yaml has no "
                        f"{field}. Make the placeholder a sentence of its own, so the step reads well without "
                        f"it, or add {field} to every crisis file")))
            for code, entry in sorted(resources.items()):
                sent = fill_step(step, entry)
                length = septets(sent) if is_gsm7(sent) else len(sent)
                if length > MAX_SEPTETS:
                    problems.append(Problem(file, f"steps[{i}]", (
                        f"{length} characters once filled with crisis/{code}.yaml; the limit is {MAX_SEPTETS} "
                        "(two SMS segments)")))


def _render(template: str, values: Mapping[str, object]) -> str | None:
    """`template` with `values`, other placeholders filled with the 20-character sample."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        return template.format(**{n: PLACEHOLDER_SAMPLE for n in names} | dict(values))
    except (ValueError, KeyError, IndexError):
        return None


# --- crisis resources -------------------------------------------------------------------------


def _load_resources(root: Path, problems: list[Problem], today: date | None) -> dict[str, CrisisResources]:
    folder = root / "crisis"
    resources: dict[str, CrisisResources] = {}
    for file, _rel, report, data in _folder_mappings(root, "crisis", "country", problems):
        _check_resource_texts(data, file.stem, report)
        entry = _validate(CrisisResources, data, report)
        if entry is None:
            continue
        _check_verification(entry, file, report, today)
        _check_sent_lines(entry, report)
        resources[entry.country] = entry
    for code in REQUIRED_COUNTRIES:
        if code not in resources and not (folder / f"{code}.yaml").exists():
            problems.append(Problem(f"crisis/{code}.yaml", "", "required crisis resources file is missing"))
    return resources


def _check_verification(entry: CrisisResources, file: Path, report: _Report, today: date | None) -> None:
    """A verification date needs a verifier (and the reverse), cannot sit next to "not verified"
    wording, and is not in the future; a file nobody has verified gets one warning."""
    dated: list[tuple[str, date | None, str | None, str]] = [
        ("last_verified", entry.last_verified, entry.verified_by, "verified_by")
    ]
    dated += [(f"resources[{i}].verified_on", r.verified_on, r.verified_by, f"resources[{i}].verified_by")
              for i, r in enumerate(entry.resources)]
    for field, when, who, who_field in dated:
        if (when is None) != (not who):
            report.error(field if when is None else who_field,
                         f"{field.rsplit('.', 1)[-1]} and {who_field.rsplit('.', 1)[-1]} go together: the date a "
                         "person called or texted the numbers, and who that was; fill both or neither")
        if when is None or today is None:
            continue
        if when > today:
            report.error(field, f"{when.isoformat()} is in the future")
        elif today - when > RESOURCES_STALE_AFTER:
            report.warning(field, f"{when.isoformat()} is over a year ago: re-verify")
    if entry.last_verified is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        hits = [(n, m.group(0)) for n, line in enumerate(lines, 1) if (m := _UNVERIFIED_RE.search(line))]
        if hits:
            more = f" (also line {', '.join(str(n) for n, _ in hits[1:])})" if hits[1:] else ""
            report.error("last_verified", (
                f"is set, but line {hits[0][0]} says {hits[0][1]!r}{more}: a date means a person checked every "
                "number in the file; clear last_verified and verified_by (or date only the resources that "
                "were checked, with verified_on), or check the numbers and remove that wording"))
    for i, resource in enumerate(entry.resources):
        text = " ".join(filter(None, (resource.name, resource.how, resource.notes)))
        found = _UNVERIFIED_RE.search(text)
        if resource.verified_on is not None and found:
            report.error(f"resources[{i}].verified_on", (
                f"is set, but the resource says {found.group(0)!r}: clear verified_on and verified_by, "
                "or check the number and remove that wording"))
    if entry.last_verified is None:
        missing = [r for r in entry.resources if r.verified_on is None or not r.verified_by]
        if missing:
            report.warning("last_verified", (
                f"not verified: nobody has called or texted these numbers ({len(missing)} of "
                f"{len(entry.resources)} unchecked); fine in development, but before production a person "
                "must check them and fill last_verified and verified_by"))


def _check_denied_sources(root: Path, skills: Mapping[str, Skill], problems: list[Problem]) -> None:
    """Every skill source on a deny-listed domain (rules/denied_sources.yaml), or a subdomain of one."""
    report = _Report(problems, DENIED_SOURCES_FILE)
    file = root / DENIED_SOURCES_FILE
    if not file.exists():
        report.error("", "missing: the domains skill sources may never cite live here")
        return
    data = _read_mapping(file, report)
    if data is None:
        return
    entries = data.get("domains")
    if set(data) != {"domains"} or not isinstance(entries, list) or not entries:
        report.error("domains", "the file holds one field, domains: a list of {domain, why}")
        return
    denied: dict[str, str] = {}
    for i, item in enumerate(entries):
        domain, why = (item.get("domain"), item.get("why")) if isinstance(item, dict) else (None, None)
        if not (isinstance(item, dict) and set(item) == {"domain", "why"} and isinstance(why, str) and why.strip()
                and isinstance(domain, str)):
            report.error(f"domains[{i}]", "must be a mapping with a domain and a why (non-blank text)")
        elif not _DOMAIN_RE.match(domain) or domain.startswith("www."):
            report.error(f"domains[{i}].domain",
                         f"{domain!r} must be a bare lower-case domain like scribd.com (no scheme, path or www.)")
        elif domain in denied:
            report.error(f"domains[{i}].domain", f"{domain} is listed twice")
        else:
            denied[domain] = why.strip()
    for skill in skills.values():
        for i, source in enumerate(skill.sources):
            host = (urlparse(source.url).hostname or "").rstrip(".").lower()
            for domain, why in denied.items():
                if host == domain or host.endswith("." + domain):
                    problems.append(Problem(
                        f"skills/{skill.id}.yaml", f"sources[{i}].url",
                        f"{domain} is on the deny-list of source domains ({why}); cite the primary work "
                        "instead: the book with its publisher's page, a DOI or PubMed link, or an agency, "
                        "university or hospital page"))
                    break


def _walk_strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk_strings(item, f"{path}[{i}]")


def _check_resource_texts(data: Mapping[str, Any], stem: str, report: _Report) -> None:
    for field, text in _walk_strings(dict(data), ""):
        if stem != "US":
            for match in _SHORT_CODE_RE.finditer(text):
                report.error(field, f"US-only short code {match.group(1)} in a non-US file")
        text = text.strip()
        sent_line = field in SENT_RESOURCE_LINES
        if sent_line or field.startswith("resources"):
            exempt = KEYWORD_EXEMPTIONS.get(re.sub(r"\[\d+\]", "[]", field), frozenset()) & set(OPT_IN_WORDS)
            _check_sms_text(text, field, report, exempt)
        if sent_line and is_gsm7(text) and septets(text) > ONE_SEGMENT:
            report.warning(field, f"over one SMS segment ({ONE_SEGMENT}); crisis lines should be short")


def _check_sent_lines(entry: CrisisResources, report: _Report) -> None:
    """The sent lines name only numbers listed in `resources` (where counselors see them and
    verification covers them); the emergency number alone is the one summary and emergency give;
    the optional step lines are whole sentences (a step may end with one, or leave it out)."""
    listed = {re.sub(r"\D", "", m.group(0)) for r in entry.resources for m in _NUMBER_RE.finditer(r.how)}
    for field in SENT_RESOURCE_LINES:
        text = getattr(entry, field) or ""
        for match in _NUMBER_RE.finditer(text):
            digits = re.sub(r"\D", "", match.group(0))
            if len(digits) >= 3 and digits not in listed:
                report.error(field, f"names {match.group(0)}, which no resource in this file lists (how): add it "
                                    "there, so counselors see it and verifying the file covers it")
    number = " ".join(entry.emergency_number.split()).lower()
    for field in ("summary", "emergency"):
        if number not in " ".join(getattr(entry, field).split()).lower():
            report.error("emergency_number", f"{entry.emergency_number!r} is not in {field}: skill steps name "
                                             "the emergency number alone, and it must be the one the crisis lines give")
    for field in ("drug_helpline", "overdose_line"):
        line = getattr(entry, field)
        if line is not None and not (line[0].isupper() and line.endswith((".", "!", "?"))):
            report.error(field, "must be one whole sentence (a capital first, a full stop last): skill steps send it "
                                "as a sentence of its own")


# --- messages -----------------------------------------------------------------------------------


def _load_messages(root: Path, problems: list[Problem]) -> dict[str, str | list[str]]:
    file = root / "messages.yaml"
    report = _Report(problems, "messages.yaml")
    if not file.exists():
        report.error("", "missing: every text the bot sends lives here")
        return {}
    data = _read_mapping(file, report)
    if data is None:
        return {}
    messages: dict[str, str | list[str]] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not _MESSAGE_KEY_RE.match(key):
            report.error(str(key), "keys are snake_case: lower-case letters, digits and underscores")
            continue
        variants = _message_variants(key, value, report)
        if variants is None:
            continue
        names = [_check_message(key if len(variants) == 1 else f"{key}[{i}]", key, v, report)
                 for i, v in enumerate(variants)]
        if any(n is not None and n != names[0] for n in names):
            report.error(key, "variants must use the same {placeholders}")
        messages[key] = variants[0].strip() if isinstance(value, str) else [v.strip() for v in variants]
    _check_ways_out(messages, report)
    for key in sorted(REQUIRED_MESSAGE_KEYS - messages.keys()):
        report.error(key, "required message is missing")
    return messages


def _check_ways_out(messages: Mapping[str, str | list[str]], report: _Report) -> None:
    """Crisis replies say the texts are automated and not monitored 24/7 (and, after an alert, that
    the counselor was alerted but may not see it right away); dead ends name the crisis lines."""
    for key, value in messages.items():
        crisis = (key.startswith(("crisis_", "check_")) or key in CRISIS_REPLY_KEYS) and (
            key not in CRISIS_REPLY_EXEMPT_KEYS)
        variants = [value] if isinstance(value, str) else value
        for i, text in enumerate(variants):
            field = key if isinstance(value, str) else f"{key}[{i}]"
            flat = " ".join(text.split())
            if crisis and not _AUTOMATED_RE.search(flat):
                report.error(field, 'a crisis reply must say the texts are "automated, not monitored 24/7" '
                                    "(as crisis_reply does)")
            if key in ALERTED_REPLY_KEYS and not _ALERTED_RE.search(flat):
                report.error(field, 'must say "your counselor has been alerted but may not see it right away" '
                                    "(as crisis_reply does): the counselor was alerted")
            if key in DEAD_END_KEYS and "resources" not in (_placeholder_names(text) or ()):
                report.error(field, "a dead end (no next step) must keep a way out: add the crisis lines, "
                                    '"In a crisis: {resources}"')


def _message_variants(key: str, value: Any, report: _Report) -> list[str] | None:
    if isinstance(value, str) and value.strip():
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return list(value)
    report.error(key, "must be a non-blank text or a non-empty list of non-blank texts")
    return None


def _check_message(field: str, key: str, template: str, report: _Report) -> frozenset[str] | None:
    """Check one message text; returns its placeholder names, or None if it cannot be parsed."""
    names: set[str] = set()
    try:
        for _, name, spec, conversion in string.Formatter().parse(template):
            if name is None:
                continue
            if not name.isidentifier() or spec or conversion:
                report.error(field, f"placeholder {{{name}}} must be a plain name like {{name}}")
                return None
            names.add(name)
    except ValueError as exc:
        report.error(field, f"bad placeholder braces ({exc}); write {{{{ and }}}} for literal braces")
        return None
    filled = template.strip().format(**{n: PLACEHOLDER_SAMPLE for n in names})
    allowed: tuple[str, ...] = ()
    if key in OPT_OUT_INSTRUCTION_KEYS:
        allowed = CARRIER_WORDS + OPT_IN_WORDS
    elif key in OPT_IN_INSTRUCTION_KEYS:
        allowed = OPT_IN_WORDS
    _check_sms_text(filled, field, report, allowed)
    return frozenset(names)


# --- the diary card -----------------------------------------------------------------------------


def _load_diary(root: Path, messages: Mapping[str, str | list[str]], problems: list[Problem]) -> DiaryCard | None:
    report = _Report(problems, DIARY_FILE)
    for key in sorted(DIARY_MESSAGE_KEYS - messages.keys()):
        problems.append(Problem("messages.yaml", key, "required message is missing (the diary card sends it)"))
    file = root / DIARY_FILE
    if not file.exists():
        report.error("", "missing: the evening diary card's questions live here")
        return None
    data = _read_mapping(file, report)
    if data is None:
        return None
    questions = data.get("questions")
    for i, question in enumerate(questions if isinstance(questions, list) else []):
        for field in ("ask", "reask"):
            text = question.get(field) if isinstance(question, dict) else None
            if isinstance(text, str):
                _check_sms_text(text.strip(), f"questions[{i}].{field}", report)
    card: DiaryCard | None = _validate(DiaryCard, data, report)
    if card is None:
        return None
    _check_diary_rules(card, messages, report)
    return card


def _check_diary_rules(card: DiaryCard, messages: Mapping[str, str | list[str]], report: _Report) -> None:
    seen: set[str] = set()
    for i, q in enumerate(card.questions):
        where = f"questions[{i}]"
        if q.id in seen:
            report.error(f"{where}.id", f"{q.id!r} is used by an earlier question")
        seen.add(q.id)
        if q.kind == "scale":
            if q.low is None or q.high is None or q.low >= q.high:
                report.error(where, "a scale needs low and high, low below high")
            else:
                if not (str(q.low) in q.reask and str(q.high) in q.reask):
                    report.error(f"{where}.reask", f"must give the range ({q.low} to {q.high}): it follows an "
                                                   "answer the bot could not read")
                if q.safety_check_at is not None and not q.low < q.safety_check_at <= q.high:
                    report.error(f"{where}.safety_check_at", f"must be above {q.low} and at most {q.high}")
        elif q.low is not None or q.high is not None or q.safety_check_at is not None:
            report.error(where, "low, high and safety_check_at are for scale questions only")
        if q.records_trigger and q.kind != "words":
            report.error(f"{where}.records_trigger", "only a words question can record a trigger")
    if sum(q.records_trigger for q in card.questions) > 1:
        report.error("questions", "at most one question records a trigger")
    if (card.reviewed_by is None) != (card.reviewed_on is None):
        report.error("reviewed_on", "reviewed_by and reviewed_on go together: fill both or neither")
    # Each question as sent: numbered, the first inside the opening text, later ones after a skip.
    total = len(card.questions)
    for i, q in enumerate(card.questions):
        template = messages.get("diary_question")
        values = {"n": i + 1, "total": total, "question": q.ask}
        shown = _render(template, values) if isinstance(template, str) else None
        if shown is None:
            continue
        wrappers = ["diary_start"] if i == 0 else ["diary_move_on"]
        for key in wrappers:
            wrapper = messages.get(key)
            sent = _render(wrapper, {"total": total, "question": shown}) if isinstance(wrapper, str) else shown
            if sent is not None and is_gsm7(sent) and septets(sent) > MAX_SEPTETS:
                report.error(f"questions[{i}].ask", f"{septets(sent)} characters once sent with {key!r}; "
                                                    f"the limit is {MAX_SEPTETS} (two SMS segments)")


# ---------------------------------------------------------------------------------------------
# Command line: python -m bot.skills [library-path]


def run_check(path: Path, today: date | None, write: Callable[[str], object] = print) -> int:
    """Print every problem and a summary; returns 1 if there are errors, else 0."""
    problems = check_library(path, today=today)
    if problems:
        write(format_problems(problems))
    errors = sum(p.severity == "error" for p in problems)
    write(f"{errors} error(s), {len(problems) - errors} warning(s) in {path}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(run_check(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_LIBRARY_PATH, date.today()))
