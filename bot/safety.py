"""Crisis detection: does an inbound text need the crisis path instead of a coping skill?

Rules over normalised text, tuned for recall: a missed crisis costs more than a question asked.
The rules and the vocabulary they share are data a clinician can review:
`skills_library/rules/crisis_rules.yaml` (every rule carries a `why`) and the SMS spellings in
`skills_library/rules/sms_spellings.yaml`. This module is the engine that reads them: loaded once
from the default library at first use, validated by `load_tables` (and by `flask skills check`).
A rule that matches names itself in `CrisisAssessment.reasons` (never the matched words, so
reasons can be logged and shown with --explain without leaking the message).

Pipeline for one text:
1. `fold` (curly quotes, accents), emoji counted, "od'd" and censored words ("k*ll") resolved
   before apostrophes and asterisks are erased;
2. split into clauses at sentence punctuation (rules never match across a clause break "|");
3. `bot.text.normalise` per clause (apostrophes, leetspeak, elongation, spelled-out letters);
4. each token canonicalised: SMS spellings ("wanna", "rn"), algospeak ("sewerslide" ->
   "suicide", "kms" -> "kill myself" unless it is a distance), repeated-letter typos ("kil"),
   edit-distance typos on long key words ("suicde", "sucidal") and joined words ("killmyself");
5. every rule runs; each match may then be
   - dropped when directly negated ("im not suicidal", "id never hurt myself") -- only rules
     marked negatable; a strong signal elsewhere in the text still counts,
   - dropped when the rule's idiom guard fires ("die of embarrassment", "5 kms"),
   - moved to someone else (`third_party`) when its subject is another person,
   - lowered from imminent to possible when it is in the past ("i used to cut") or followed by
     laughter ("lol") -- lowered, never cancelled.

Levels: "imminent" (T3) = intent, plan, means, time, an act in progress, overdose,
medical emergency, current abuse, harm to others; "possible" (T2) = passive ideation, urges
without an act, past ideation, ambiguous violence, someone else at risk.

Categories: suicide, self_harm, overdose, medical, harm_to_others, abuse, third_party.
`third_party` means the person at risk is someone else. It stands alone when the texter reports
another person's thoughts of suicide or self-harm (they need help for helping); it comes with
`medical` or `overdose` when that other person is in physical danger now (911 first).

Decisions documented here (clinician review wanted):
- Media and education mentions ("that song about suicide", "suicide prevention training",
  "suicide squad") are not crisis (a mention is not a disclosure).
- Panic wording ("feel like im dying", "i think im going to die", "feels like a heart attack")
  and "cant breathe" alone are not crisis: the breathing skill opens with a 911 screen line.
  Chest pain together with breathlessness, arm or jaw pain, fainting is medical.
- "i could kill him" is an anger idiom (not crisis); "im going to kill him" is harm to others.
- Relapse ("i used again") and cravings go to the lapse and craving skills (bot.matching), not
  the crisis path, unless they come with an overdose or medical sign.
- "kms" is "kill myself" unless a number, a quantity word or a direction word makes it a
  distance ("5 kms", "kms away"). "kys" is being told to kill yourself: possible.
- Emoji: two or more pill emoji is imminent (Crisis Text Line found the pill emoji more
  predictive than the word "suicide"); one pill emoji, or a knife, gun, razor, blood drop,
  coffin or headstone emoji, counts when a death or distress cue, a timeframe or a body part
  comes with it, or when the text is nothing but such emoji; laughter ("lol", the crying-laughing
  face, the skull emoji) cancels the emoji-only signal, since "im dead ⚰️😂" is a joke.
- Bereavement by suicide ("my brother killed himself last year") is possible (third_party with
  the past): loss by suicide raises risk and the counselor should hear of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.tables import (
    RulesFile,
    Source,
    required,
    sms_spellings_from,
    table_sources,
)
from bot.text import fold, normalise

if TYPE_CHECKING:
    from bot.skills import Problem

IMMINENT = "imminent"
POSSIBLE = "possible"
LEVELS: tuple[str, ...] = (IMMINENT, POSSIBLE)
CATEGORIES: tuple[str, ...] = (
    "suicide",
    "self_harm",
    "overdose",
    "medical",
    "harm_to_others",
    "abuse",
    "third_party",
)
_CATEGORY_ORDER = {name: i for i, name in enumerate(CATEGORIES)}

RULES_FILE = "crisis_rules.yaml"


@dataclass(frozen=True)
class CrisisAssessment:
    """The crisis check's verdict on one text.

    `is_crisis` is True exactly when `level` is not None. `categories` follow the order of
    `CATEGORIES`; `reasons` name the rules that decided (with a suffix for any adjustment, e.g.
    "suicide.kill_self~past"), never the words of the message.
    """

    is_crisis: bool
    level: str | None
    categories: tuple[str, ...]
    reasons: tuple[str, ...]


NOT_CRISIS = CrisisAssessment(False, None, (), ())

# ============================================================================================
# Engine patterns: how a text is cut up before the tables are consulted (not vocabulary)
# ============================================================================================

# Before apostrophes vanish: "od'd", "o.d.'d", "od'ed" mean overdosed ("odd" is a word).
_OD_APOSTROPHE = re.compile(r"\bo\.?d\.?'(?:e?d)\b")
# Censored words ("k*ll", "s**cide"): each asterisk stands for one letter.
_CENSORED = re.compile(r"(?<![a-z*])[a-z]*\*+[a-z][a-z*]*(?![a-z*])|(?<![a-z*])[a-z]+\*+(?![a-z*])")
_CLAUSE_BREAK = re.compile(r"[.!?;:]+(?=\s|$)|[\n\r]+|\s[-|/]\s")
_KMS = re.compile(r"\bkms\b")


# ============================================================================================
# The tables (skills_library/rules/crisis_rules.yaml), compiled
# ============================================================================================


@dataclass(frozen=True)
class _Rule:
    name: str
    categories: tuple[str, ...]
    level: str
    pattern: re.Pattern[str]
    negatable: bool = False  # a direct negation right before the match cancels it
    subject: bool = False  # another person as subject moves it to third_party
    past: bool = True  # "used to", "years ago" lower imminent to possible
    laugh: bool = False  # laughter lowers imminent to possible
    laugh_cancels: bool = False  # laughter cancels: idiom-prone wording ("my mom will kill me lol")
    urge_level: str | None = None  # level when an urge word comes right before ("want to cut")
    soon_level: str | None = None  # level when a timeframe ("tonight", "right now") is in the clause
    not_before: re.Pattern[str] | None = None  # idiom guard on the clause text before the match
    not_after: re.Pattern[str] | None = None  # idiom guard on the clause text after the match
    accept: Callable[[re.Match[str], _Tables], bool] | None = None


@dataclass(frozen=True)
class _Combo:
    name: str
    categories: tuple[str, ...]
    level: str
    first: re.Pattern[str]
    second: re.Pattern[str]


@dataclass(frozen=True)
class _Tables:
    """Everything the engine reads from the rules tables (see crisis_rules.yaml for each)."""

    # canonical words
    token_map: Mapping[str, str]
    collapsed: Mapping[str, str]
    fuzzy_targets: tuple[str, ...]
    fuzzy_protect: frozenset[str]
    join_heads: frozenset[str]
    join_tails: frozenset[str]
    phrase_map: Mapping[str, str]
    phrase_re: re.Pattern[str]
    phrase_patterns: tuple[tuple[re.Pattern[str], str], ...]
    kms_distance_before: re.Pattern[str]
    kms_distance_after: re.Pattern[str]
    censor_targets: tuple[str, ...]
    # overdose amounts
    number_words: Mapping[str, int]
    min_pills: int
    vague_amounts: frozenset[str]
    # rules
    rules: tuple[_Rule, ...]
    combos: tuple[_Combo, ...]
    # adjustments
    negators: frozenset[str]
    negation_fillers: frozenset[str]
    first_person: frozenset[str]
    third_person: frozenset[str]
    past_before: re.Pattern[str]
    past_after: re.Pattern[str]
    soon: re.Pattern[str]
    urge_before: re.Pattern[str]
    laughter: re.Pattern[str]
    laugh_emoji: tuple[str, ...]
    other_person: re.Pattern[str]
    # emoji
    pill_emoji: str
    weapon_emoji: tuple[str, ...]
    harm_emoji: tuple[str, ...]
    death_emoji: tuple[str, ...]
    death_cue: re.Pattern[str]
    body_part: re.Pattern[str]
    emoji_logistics: re.Pattern[str]


def _enough_pills(match: re.Match[str], t: _Tables) -> bool:
    """A bare number must reach min_pills; words like "a handful" or "all" always do, except
    that vague amounts ("a lot of meds") need a past-tense act ("took a lot of"), since people on
    several medications say "i take a lot of meds"."""
    qty = match.group("qty")
    if qty in t.vague_amounts and match.group("past") in (None, "taking"):
        return False
    if qty.isdigit():
        return int(qty) >= t.min_pills
    return t.number_words.get(qty, t.min_pills) >= t.min_pills


# Checks a rule may name as `accept`, and the named groups each one reads from the match.
_ACCEPT: dict[str, tuple[Callable[[re.Match[str], _Tables], bool], tuple[str, ...]]] = {
    "enough_pills": (_enough_pills, ("qty", "past")),
}

_RULE_FIELDS = (
    "name", "why", "categories", "level", "pattern", "negatable", "subject", "past", "laugh",
    "laugh_cancels", "urge_level", "soon_level", "not_before", "not_after", "accept",
)
_FLAGS: dict[str, bool] = {"negatable": False, "subject": False, "past": True, "laugh": False, "laugh_cancels": False}
_COMBO_FIELDS = ("name", "why", "categories", "level", "first", "second")
_TOP_FIELDS = (
    "fragments", "rules", "combos", "negators", "negation_fillers", "first_person", "third_person",
    "past_before", "past_after", "soon", "urge_before", "laughter", "laugh_emoji", "other_person",
    "pill_emoji", "weapon_emoji", "harm_emoji", "death_emoji", "death_cue", "body_part", "emoji_logistics",
    "spelling_overrides", "collapse_keys", "fuzzy_targets", "fuzzy_protect", "join_heads", "join_tails",
    "phrases", "phrase_patterns", "kms_distance_before", "kms_distance_after", "censor_targets",
    "number_words", "min_pills", "vague_amounts",
)
_RULE_NAME = re.compile(r"[a-z_]+\.[a-z0-9_]+")


def load_tables(root: Path | None = None) -> tuple[_Tables | None, list[Problem]]:
    """The crisis tables of the library at `root` (default: the shipped one) and every problem
    in them (rules/crisis_rules.yaml and rules/sms_spellings.yaml). The tables are None when
    there is any problem. Cached on the files' text."""
    return _load_tables(*table_sources(root, RULES_FILE))


@lru_cache(maxsize=8)
def _load_tables(sms_source: Source, source: Source) -> tuple[_Tables | None, list[Problem]]:
    spellings, sms_problems = sms_spellings_from(sms_source)
    f = RulesFile(RULES_FILE, source)
    if not f.ok:
        return None, sms_problems + f.problems
    f.unknown_fields(f.data, _TOP_FIELDS, "")
    frags = f.fragments("fragments")
    for name, value in frags.items():  # report unknown placeholders even in unused fragments
        for i, text in enumerate([value] if isinstance(value, str) else value):
            f.expand(text, frags, f"fragments.{name}" if isinstance(value, str) else f"fragments.{name}[{i}]")

    def regex(field: str, **kw: Any) -> re.Pattern[str]:
        return f.regex(field, frags, **kw) or _NEVER

    def words(field: str, single: bool = True) -> list[str]:
        return f.words(field, single=single)

    collapse_keys = words("collapse_keys")
    phrase_map = _phrase_map(f)
    tables = _Tables(
        token_map=spellings.for_crisis_check(f.spellings("spelling_overrides")),
        collapsed={_collapse(k): k for k in collapse_keys},
        fuzzy_targets=tuple(words("fuzzy_targets")),
        fuzzy_protect=frozenset(words("fuzzy_protect")),
        join_heads=frozenset(words("join_heads")),
        join_tails=frozenset(words("join_tails")),
        phrase_map=phrase_map,
        phrase_re=re.compile(
            r"\b(?:" + "|".join(sorted(map(re.escape, phrase_map), key=len, reverse=True)) + r")\b"
        ),
        phrase_patterns=_phrase_patterns(f, frags),
        kms_distance_before=regex("kms_distance_before"),
        kms_distance_after=regex("kms_distance_after"),
        censor_targets=tuple(words("censor_targets")),
        number_words=_number_words(f),
        min_pills=int(f.number("min_pills", integer=True)),
        vague_amounts=frozenset(words("vague_amounts", single=False)),
        rules=_rules(f, frags),
        combos=_combos(f, frags),
        negators=frozenset(words("negators")),
        negation_fillers=frozenset(words("negation_fillers")),
        first_person=frozenset(words("first_person")),
        third_person=frozenset(words("third_person")),
        past_before=regex("past_before"),
        past_after=regex("past_after"),
        soon=regex("soon"),
        urge_before=regex("urge_before"),
        laughter=regex("laughter"),
        laugh_emoji=tuple(f.strings("laugh_emoji")),
        other_person=regex("other_person"),
        pill_emoji=f.text("pill_emoji"),
        weapon_emoji=tuple(f.strings("weapon_emoji")),
        harm_emoji=tuple(f.strings("harm_emoji")),
        death_emoji=tuple(f.strings("death_emoji")),
        death_cue=regex("death_cue"),
        body_part=regex("body_part"),
        emoji_logistics=regex("emoji_logistics"),
    )
    problems = sms_problems + f.problems
    return (None if problems else tables), problems


_NEVER = re.compile(r"(?!)")  # stands in for a pattern with a problem (the tables are then refused)


def _phrase_map(f: RulesFile) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in f.mapping("phrases").items():
        if not isinstance(key, str) or not re.fullmatch(r"[a-z0-9]+(?: [a-z0-9]+)+", key):
            f.error(f"phrases.{key}", f"{key!r} must be two or more lower-case words")
        elif not isinstance(value, str) or not re.fullmatch(r"[a-z0-9]+(?: [a-z0-9]+)*", value):
            f.error(f"phrases.{key}", f"{value!r} must be lower-case words")
        else:
            out[key] = value
    return out


def _phrase_patterns(f: RulesFile, frags: Mapping[str, Any]) -> tuple[tuple[re.Pattern[str], str], ...]:
    out = []
    for path, item in f.records("phrase_patterns"):
        f.unknown_fields(item, ("pattern", "replace"), path)
        pattern = f.regex("pattern", frags, item, path=f"{path}.pattern")
        replace = item.get("replace")
        if not isinstance(replace, str):
            f.error(f"{path}.replace", "must be text")
        elif pattern is not None:
            bad = [ref for ref in re.findall(r"\\(\d+)", replace) if int(ref) > pattern.groups]
            if bad:
                f.error(f"{path}.replace", f"refers to group \\{bad[0]}, but the pattern has {pattern.groups}")
            else:
                out.append((pattern, replace))
    return tuple(out)


def _number_words(f: RulesFile) -> dict[str, int]:
    out = {}
    for key, value in f.mapping("number_words").items():
        if not isinstance(key, str) or not re.fullmatch(r"[a-z]+(?: [a-z]+)*", key):
            f.error(f"number_words.{key}", f"{key!r} must be lower-case words")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            f.error(f"number_words.{key}", f"must be a whole number, not {value!r}")
        else:
            out[key] = value
    return out


def _level(f: RulesFile, value: Any, where: str) -> str | None:
    if value in LEVELS:
        return str(value)
    f.error(where, f"unknown level {value!r} (expected one of: {', '.join(LEVELS)})")
    return None


def _categories(f: RulesFile, value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        f.error(where, f"must be a non-empty list of categories, not {value!r}")
        return ()
    for item in value:
        if item not in CATEGORIES:
            f.error(where, f"unknown category {item!r} (expected: {', '.join(CATEGORIES)})")
    return tuple(c for c in value if c in CATEGORIES)


def _why(f: RulesFile, item: Mapping[str, Any], where: str) -> None:
    why = item.get("why")
    if not isinstance(why, str) or not why.strip():
        f.error(f"{where}.why", "every rule says why it is there (non-empty text)")


def _named(f: RulesFile, section: str, path: str, item: Mapping[str, Any], example: str) -> str:
    """Where problems in a rule or combo are reported: `section[name]` when its name is valid
    (category.what in lower case), else its position (and the invalid name is an error)."""
    name = item.get("name")
    if not isinstance(name, str) or not _RULE_NAME.fullmatch(name):
        f.error(f"{path}.name", f"must be category.what in lower case (like {example}), not {name!r}")
        return path
    return f"{section}[{name}]"


def _rules(f: RulesFile, frags: Mapping[str, Any]) -> tuple[_Rule, ...]:
    out = []
    seen: set[str] = set()
    for path, item in f.records("rules"):
        where = _named(f, "rules", path, item, "suicide.kill_self")
        name = str(item.get("name"))
        if where != path:
            if name in seen:
                f.error(f"{where}.name", "duplicate rule name: each rule needs its own")
            seen.add(name)
        f.unknown_fields(item, _RULE_FIELDS, where)
        _why(f, item, where)
        categories = _categories(f, item.get("categories"), f"{where}.categories")
        level = _level(f, item.get("level"), f"{where}.level")
        pattern = f.regex("pattern", frags, item, path=f"{where}.pattern")
        flags = {flag: f.flag(flag, item, default, path=f"{where}.{flag}") for flag, default in _FLAGS.items()}
        levels = {
            key: _level(f, item[key], f"{where}.{key}") if key in item else None
            for key in ("urge_level", "soon_level")
        }
        not_before = (
            f.regex("not_before", frags, item, path=f"{where}.not_before", suffix="$") if "not_before" in item else None
        )
        not_after = (
            f.regex("not_after", frags, item, path=f"{where}.not_after", prefix="^") if "not_after" in item else None
        )
        accept = None
        if "accept" in item:
            found = _ACCEPT.get(item["accept"]) if isinstance(item["accept"], str) else None
            if found is None:
                f.error(f"{where}.accept", f"unknown accept check {item['accept']!r} (known: {', '.join(_ACCEPT)})")
            else:
                accept, groups = found
                missing = [g for g in groups if pattern is not None and g not in pattern.groupindex]
                if missing:
                    f.error(f"{where}.accept", f"{item['accept']} needs the named groups {', '.join(missing)} "
                                               "in the pattern, like (?P<qty>...)")
        if pattern is None or level is None or not categories:
            continue
        out.append(_Rule(
            name=str(name), categories=categories, level=level, pattern=pattern, **flags,
            urge_level=levels["urge_level"], soon_level=levels["soon_level"],
            not_before=not_before, not_after=not_after, accept=accept,
        ))
    return tuple(out)


def _combos(f: RulesFile, frags: Mapping[str, Any]) -> tuple[_Combo, ...]:
    out = []
    for path, item in f.records("combos"):
        where = _named(f, "combos", path, item, "medical.chest_pain")
        f.unknown_fields(item, _COMBO_FIELDS, where)
        _why(f, item, where)
        categories = _categories(f, item.get("categories"), f"{where}.categories")
        level = _level(f, item.get("level"), f"{where}.level")
        first = f.regex("first", frags, item, path=f"{where}.first")
        second = f.regex("second", frags, item, path=f"{where}.second")
        if first is not None and second is not None and level is not None and categories:
            out.append(_Combo(str(item.get("name")), categories, level, first, second))
    return tuple(out)


@cache
def _tables() -> _Tables:
    """The shipped tables, loaded at first use; a library with problems is refused outright."""
    return required(load_tables())


# ============================================================================================
# Canonical tokens
# ============================================================================================


def _collapse(word: str) -> str:
    out: list[str] = []
    for ch in word:
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=16384)
def _canon_word(token: str) -> str:
    """A token with SMS spellings expanded and typos of key words repaired (no splitting)."""
    t = _tables()
    mapped = t.token_map.get(token)
    if mapped is not None:
        return mapped
    if len(token) <= 2 or token.isdigit():
        return token
    collapsed = t.collapsed.get(_collapse(token))
    if collapsed is not None:
        return t.token_map.get(collapsed, collapsed)
    if len(token) < 5 or token in t.fuzzy_protect or not token.isalpha():
        return token
    found = process.extractOne(token, t.fuzzy_targets, scorer=OSA.distance, score_cutoff=1)
    if found is not None:
        return str(found[0])
    return token


@lru_cache(maxsize=16384)
def _canon_token(token: str) -> str:
    """`_canon_word`, then joined pairs of key words split ("killmyself" -> "kill myself")."""
    word = _canon_word(token)
    if word != token or len(token) < 6 or not token.isalpha():
        return word
    t = _tables()
    for cut in range(2, len(token) - 1):
        head, tail = _canon_word(token[:cut]), _canon_word(token[cut:])
        if head in t.join_heads and tail in t.join_tails:
            return f"{head} {tail}"
    return token


def _rewrite_phrases(clause: str, t: _Tables) -> str:
    """Phrase-level rewrites (crisis_rules.yaml `phrases`, then `phrase_patterns`)."""
    clause = t.phrase_re.sub(lambda m: t.phrase_map[m.group(0)], clause)
    for pattern, repl in t.phrase_patterns:
        clause = pattern.sub(repl, clause)
    return clause


def _expand_kms(text: str, t: _Tables) -> str:
    """"kms" is "kill myself" unless a number, quantity or direction makes it a distance."""

    def repl(match: re.Match[str]) -> str:
        before = text[max(0, match.start() - 16) : match.start()]
        after = text[match.end() : match.end() + 16]
        if t.kms_distance_before.search(before) or t.kms_distance_after.search(after):
            return "kilometres"
        return "kill myself"

    return _KMS.sub(repl, text)


def _uncensor(text: str, t: _Tables) -> str:
    def repl(match: re.Match[str]) -> str:
        word = match.group(0)
        pattern = re.compile(word.replace("*", "[a-z]"))
        for target in t.censor_targets:
            if pattern.fullmatch(target):
                return target
        return word

    return _CENSORED.sub(repl, text) if "*" in text else text


def canonical(text: str) -> str:
    """The text as the rules see it: canonical words, clauses joined by " | ".

    Exposed for tests and for --explain tooling; deterministic and side-effect free.
    """
    return _canonical_folded(fold(text), _tables())


def _canonical_folded(folded: str, t: _Tables) -> str:
    folded = _uncensor(_OD_APOSTROPHE.sub("overdosed", folded), t)
    clauses = []
    for part in _CLAUSE_BREAK.split(folded):
        words = normalise(part).split()
        if not words:
            continue
        clause = _rewrite_phrases(" ".join(_canon_token(w) for w in words), t)
        if "kms" in clause:
            clause = _expand_kms(clause, t)
        clauses.append(clause)
    return " | ".join(clauses)


# ============================================================================================
# Adjustments: negation, subject, past, laughter
# ============================================================================================


def _clause_bounds(text: str, start: int, end: int) -> tuple[str, str]:
    """The clause text before and after a match (clauses are separated by "|")."""
    left = text.rfind("|", 0, start) + 1
    right = text.find("|", end)
    if right == -1:
        right = len(text)
    return text[left:start], text[end:right]


def _is_negated(before: str, t: _Tables) -> bool:
    """True when a negator precedes the match with only filler words between."""
    for word in reversed(before.split()[-6:]):
        if word in t.negators:
            return True
        if word not in t.negation_fillers:
            return False
    return False


def _someone_else(before: str, matched: str, t: _Tables) -> bool:
    """True when the nearest person before the match (or inside it) is another person."""
    words = before.split()[-8:] + matched.split()[:2]
    for word in reversed(words):
        if word in t.first_person:
            return False
        if word in t.third_person:
            return True
    return False


def _urged(before: str, t: _Tables) -> bool:
    """True when an urge word ends the text before a match ("want to" + "cut myself")."""
    return t.urge_before.search(" " + " ".join(before.split()[-5:])) is not None


@dataclass
class _Hit:
    name: str
    categories: tuple[str, ...]
    level: str


def _apply_rule(rule: _Rule, text: str, laughing: bool, t: _Tables) -> _Hit | None:
    """The first match of `rule` that survives its guards, adjusted; None if none does."""
    if rule.laugh_cancels and laughing:
        return None
    for match in rule.pattern.finditer(text):
        if rule.accept is not None and not rule.accept(match, t):
            continue
        before, after = _clause_bounds(text, match.start(), match.end())
        if rule.not_before is not None and rule.not_before.search(before):
            continue
        if rule.not_after is not None and rule.not_after.search(after):
            continue
        if rule.negatable and _is_negated(before, t):
            continue
        level, categories, tags = rule.level, rule.categories, []
        if rule.soon_level and t.soon.search(before + match.group(0) + after):
            level = rule.soon_level
            tags.append("soon")
        if rule.urge_level and _urged(before, t):
            level = rule.urge_level
            tags.append("urge")
        if rule.subject and _someone_else(before, match.group(0), t):
            categories, level = _third_party(categories, level)
            tags.append("third_party")
        if level == IMMINENT and rule.past and (t.past_before.search(before) or t.past_after.search(after)):
            level = POSSIBLE
            tags.append("past")
        if level == IMMINENT and rule.laugh and laughing:
            level = POSSIBLE
            tags.append("laughing")
        name = rule.name + "".join("~" + tag for tag in tags)
        return _Hit(name, categories, level)
    return None


def _third_party(categories: tuple[str, ...], level: str) -> tuple[tuple[str, ...], str]:
    """Another person at risk: physical danger keeps its category and level (911 first);
    thoughts of suicide or self-harm become third_party alone at possible level."""
    physical = tuple(c for c in categories if c in ("overdose", "medical", "harm_to_others"))
    if physical:
        return physical + ("third_party",), level
    return ("third_party",), POSSIBLE


# ============================================================================================
# Emoji (decided in the module docstring)
# ============================================================================================


def _emoji_hits(folded: str, text: str, laughing: bool, t: _Tables) -> list[_Hit]:
    """Emoji signals (read from the folded raw text; `text` is the canonical form)."""
    pills = folded.count(t.pill_emoji)
    weapons = sum(folded.count(e) for e in t.weapon_emoji)
    harm = sum(folded.count(e) for e in t.harm_emoji)
    death = sum(folded.count(e) for e in t.death_emoji)
    if not (pills or weapons or harm or death):
        return []
    hits: list[_Hit] = []
    logistics = t.emoji_logistics.search(text) is not None
    cue = t.death_cue.search(text) is not None
    words = bool(text.strip(" |"))
    if pills >= 2 and not logistics:
        hits.append(_Hit("emoji.pills", ("overdose",), IMMINENT))
    elif pills == 1 and not logistics and not laughing and (cue or death or weapons or not words):
        hits.append(_Hit("emoji.pill_distress", ("overdose",), POSSIBLE))
    if (weapons or harm or death) and not laughing and not logistics:
        several = (weapons + harm + death) >= 2
        if t.body_part.search(text) and (weapons or harm):
            hits.append(_Hit("emoji.blade_body", ("self_harm",), POSSIBLE))
        elif cue or several or not words:
            hits.append(_Hit("emoji.death", ("suicide",), POSSIBLE))
    return hits


# ============================================================================================
# Entry point
# ============================================================================================


def _categorise_regret(hit: _Hit, text: str, t: _Tables) -> _Hit:
    """"ill do something i regret" is harm to others when another person is in the text
    (crisis_rules.yaml `other_person`); otherwise it is read as about the texter (suicide)."""
    if hit.name.startswith("suicide.do_something") and t.other_person.search(text):
        return _Hit(hit.name + "~other", ("harm_to_others",), hit.level)
    return hit


def assess(text: str) -> CrisisAssessment:
    """Decide whether `text` needs the crisis path. Pure; never raises on any string.

    Recall first: a strong signal is never cancelled by a negation or an idiom elsewhere in the
    text. `reasons` name the rules that fired, suffixed with adjustments (~past, ~third_party).
    """
    if not text or not text.strip():
        return NOT_CRISIS
    t = _tables()
    folded = fold(text)
    canon = _canonical_folded(folded, t)
    laughing = t.laughter.search(canon) is not None or any(e in folded for e in t.laugh_emoji)
    hits: list[_Hit] = []
    if canon:
        for rule in t.rules:
            if rule.pattern.search(canon) is None:  # most rules, most texts: skip the guards
                continue
            hit = _apply_rule(rule, canon, laughing, t)
            if hit is not None:
                hits.append(_categorise_regret(hit, canon, t))
        for combo in t.combos:
            if combo.first.search(canon) and combo.second.search(canon):
                hits.append(_Hit(combo.name, combo.categories, combo.level))
    if not folded.isascii():
        hits.extend(_emoji_hits(folded, canon, laughing, t))
    return _combine(hits)


def _combine(hits: Sequence[_Hit]) -> CrisisAssessment:
    """The most urgent level wins; categories and reasons are the union, in a stable order."""
    if not hits:
        return NOT_CRISIS
    level = IMMINENT if any(h.level == IMMINENT for h in hits) else POSSIBLE
    categories = sorted({c for h in hits for c in h.categories}, key=_CATEGORY_ORDER.__getitem__)
    reasons = tuple(dict.fromkeys(h.name for h in hits))
    return CrisisAssessment(True, level, tuple(categories), reasons)
