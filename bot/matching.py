"""Map an inbound SMS to one distress state and rank the skills that fit it.

The matcher is first a weighted lexicon: every decision it makes can be explained by the cues it
lists in `StateMatch.evidence`, a counselor can read why a text was routed where it was, and a
clinician can change a weight without retraining anything. Only when the lexicon hears nothing at
all in a text does a learned model (`bot.learned`, trained on `skills_library/training/states.tsv`)
name a state, and then the evidence says so ("model:->loneliness (0.81)"). It runs after the risk
check (`bot.risk`) and never decides anything about risk.

The lexicon and the word lists (negators, intensifiers, known words, emoji) are data:
`skills_library/rules/lexicon.yaml`, with the SMS spellings in `sms_spellings.yaml`. This module
is the engine: it loads them once from the default library at first use, validated by
`load_tables` (and by `flask skills check`).

Pipeline for one text:
1. raw-text cues that normalisation would erase (emoji, emoticons such as ":(");
2. clause breaks marked, times like "3am" split, then `bot.text.normalise`;
3. SMS spellings expanded ("rn", "u", "cannot" -> "cant"), unknown words checked for typos
   against the lexicon (edit distance 1, or 2 for long words; results cached per word);
4. longest-match phrase scan over the tokens: each cue votes for states with a weight, scaled by
   intensifiers ("so", "af") and dropped when negated ("not anxious anymore");
5. the library's trigger phrases vote too, more weakly;
6. the best state wins if it clears a threshold and outscores the "no distress" cues
   (greetings, logistics, thanks, good news); ties go to the more acute state;
7. a text the lexicon could not place (no state won, and no no-distress cue or negation says
   why) goes to the learned model, which names a state at or above its threshold ("nobody has
   texted me in a week" -> loneliness).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rapidfuzz.distance import OSA, Levenshtein

from bot import learned
from bot.tables import (
    RulesFile,
    Source,
    default_library_path,
    required,
    sms_spellings_from,
    table_sources,
)
from bot.text import normalise
from bot.vocabulary import STATES as STATES
from bot.vocabulary import medically_allowed

if TYPE_CHECKING:
    from bot.skills import Problem

NONE = "none"

# Ties between states go to the more acute one: a skill for panic or a craving is the safer
# offer when a text is genuinely split between two states. A lapse (having just used, drunk or
# gambled again) comes right after craving: an urge still to act on is the more urgent offer.
_PRIORITY: tuple[str, ...] = (
    "panic",
    "craving",
    "lapse",
    "dissociation",
    "anger",
    "conflict",
    "shame",
    "anxiety",
    "sadness",
    "loneliness",
    "sleep",
    "rumination",
    "stress",
)
_RANK = {state: i for i, state in enumerate(_PRIORITY)}

# A state needs at least this much evidence; one clear word (weight 2-4) is enough, one weak
# cue (a swear word, "tired") is not.
THRESHOLD = 1.5
# "none" wins a mixed text only when its cues clearly outweigh the distress: "sorry, running
# late" is logistics, "thanks, still anxious" is anxiety.
NONE_MARGIN = 1.5
TRIGGER_WEIGHT = 1.5  # a library trigger phrase alone is just enough, and loses to any lexicon cue
TRIGGER_BONUS = 0.5  # rank_skills: a skill whose trigger the text hits moves ahead of equals
_NEGATED_POSITIVE_WEIGHT = 2.0  # "not ok", "dont feel happy" -> sadness
_RESOLVED_WEIGHT = 1.0  # "not anxious anymore" -> evidence for "none"
_INTENSIFY = 1.3
_SOFTEN = 0.75

_CLAUSE = "zzclause"  # marker token for sentence punctuation (normalise() erases punctuation)

LEXICON_FILE = "lexicon.yaml"

_CLAUSE_PUNCT = re.compile(r"[.!?;,:]+(?=\s|$)|\n+|\s+-+\s+")
_TIME = re.compile(r"\b(\d{1,2})(?::\d\d)?\s*(am|pm|hrs?|hours?|mins?|min|days?|x)\b", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StateMatch:
    """The matcher's answer: one state (or "none"), its score and every cue that was used."""

    state: str
    score: float
    evidence: tuple[str, ...]

    @property
    def lexicon_state(self) -> str | None:
        """The state when the lexicon named it; None when the learned fallback did."""
        return None if any(e.startswith("model:->") for e in self.evidence) else self.state


@dataclass(frozen=True)
class SkillHistory:
    """What the bot knows about one participant's past sessions."""

    recent: tuple[str, ...] = ()  # skill ids, most recent first
    own_gain: Mapping[str, float] = field(default_factory=dict)  # only skills this person rated
    global_gain: Mapping[str, float] = field(default_factory=dict)


class SkillLike(Protocol):
    """What the matcher reads of a skill (read-only)."""

    @property
    def id(self) -> str: ...
    @property
    def helps_with(self) -> Sequence[str]: ...
    @property
    def triggers(self) -> Sequence[str]: ...
    @property
    def avoid_if(self) -> Sequence[str]: ...
    @property
    def requires(self) -> Sequence[str]: ...


class LibraryLike(Protocol):
    """What the matcher reads of a library (read-only)."""

    @property
    def skills(self) -> Mapping[str, SkillLike]: ...

    def for_state(self, state: str) -> Sequence[SkillLike]: ...


@dataclass(frozen=True)
class _Pattern:
    words: tuple[str, ...]  # literal | "prefix*" | "~" (gap 0-2) | "#" (number)
    votes: tuple[tuple[str, float], ...]  # (state or "none", weight)
    label: str


@dataclass
class _Cue:
    start: int
    end: int
    pattern: _Pattern


# --------------------------------------------------------------------------------------------
# The tables (skills_library/rules/lexicon.yaml), compiled
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tables:
    """Everything the matcher reads from the tables (see lexicon.yaml for each)."""

    lexicon: tuple[_Pattern, ...]  # every cue of every block, in file order, "none" and neutral last
    sms: Mapping[str, str]
    pairs: Mapping[tuple[str, str], str]
    positive_words: frozenset[str]
    emoji: Mapping[str, tuple[str, float]]
    none_emoji: frozenset[str]
    emoticons: tuple[tuple[re.Pattern[str], str, float], ...]
    negators: frozenset[str]
    negation_breakers: frozenset[str]
    negation_scope: frozenset[str]
    never_intense: frozenset[str]
    not_just: frozenset[str]
    effort: frozenset[str]
    resolution: frozenset[str]
    pre_intensifiers: frozenset[str]
    post_intensifiers: frozenset[str]
    post_intensifier_pairs: frozenset[tuple[str, ...]]
    fillers: frozenset[str]
    softeners: frozenset[str]
    number_words: frozenset[str]
    known_words: frozenset[str]
    stem_forms: frozenset[str]


_TOP_FIELDS = (
    "placeholders", "states", "none_cues", "neutral", "emoji", "none_emoji", "emoticons", "word_pairs",
    "spelling_overrides", "known_words", "stem_forms", "positive_words", "negators", "negation_breakers",
    "negation_scope", "never_intense", "not_just", "effort", "resolution", "pre_intensifiers",
    "post_intensifiers", "post_intensifier_pairs", "softeners", "fillers", "number_words",
)
_CUE_WORD = re.compile(r"[a-z0-9]+\*?|~|#")


# The learned fallback needs a few words to judge, and a weak lean still counts as "sounds
# unhappy" (an invitation to say more rather than a greeting).
MODEL_MIN_WORDS = 3
WEAK_MODEL_PROBABILITY = 0.3
# One weak no-distress word ("group", "morning", "happy": weight 1.5) does not explain a text the
# lexicon could not place ("they all go to coffee after group and nobody asks me"): the learned
# layer still reads it, but must be surer. Stronger no-distress cues ("thanks", "what time is
# group") and negations ("not anxious") are the lexicon's answer. Chosen on the training texts
# (held-out families) and the tuning sets.
WEAK_NONE_SCORE = 2.0
WEAK_NONE_PROBABILITY = 0.5
STATES_MODEL = Path("models") / "states.json.gz"


def _default_model() -> learned.LinearModel | None:
    path = default_library_path() / STATES_MODEL
    return learned.load(path) if path.exists() else None


def load_tables(root: Path | None = None) -> tuple[_Tables | None, list[Problem]]:
    """The matching tables of the library at `root` (default: the shipped one) and every problem
    in them (rules/lexicon.yaml and rules/sms_spellings.yaml). The tables are None when there is
    any problem. Cached on the files' text."""
    return _load_tables(*table_sources(root, LEXICON_FILE))


@lru_cache(maxsize=8)
def _load_tables(sms_source: Source, source: Source) -> tuple[_Tables | None, list[Problem]]:
    spellings, sms_problems = sms_spellings_from(sms_source)
    f = RulesFile(LEXICON_FILE, source)
    if not f.ok:
        return None, sms_problems + f.problems
    f.unknown_fields(f.data, _TOP_FIELDS, "")
    placeholders = f.fragments("placeholders")
    lexicon: list[_Pattern] = []
    states = f.mapping("states")
    for state, rows in states.items():
        if state not in STATES:
            f.error(f"states.{state}", f"unknown state {state!r} (expected one of: {', '.join(STATES)})")
            continue
        if not isinstance(rows, dict) or not rows:
            f.error(f"states.{state}", "must be a mapping of weight: cues")
            continue
        lexicon.extend(_cue_blocks(f, rows, state, f"states.{state}", placeholders))
    for state in STATES:
        if state not in states:
            f.error("states", f"no cues for the state {state!r}")
    lexicon.extend(_cue_blocks(f, f.mapping("none_cues"), NONE, "none_cues", placeholders))
    neutral = f.text("neutral")
    if neutral:
        lexicon.extend(_cue_block(f, neutral, NONE, 0.0, "neutral", placeholders))
    words = f.words
    tables = _Tables(
        lexicon=tuple(lexicon),
        sms=spellings.for_matcher(f.spellings("spelling_overrides", required=False)),
        pairs=_word_pairs(f),
        positive_words=frozenset(words("positive_words", single=True)),
        emoji=_emoji(f),
        none_emoji=frozenset(f.strings("none_emoji")),
        emoticons=_emoticons(f),
        negators=frozenset(words("negators", single=True)),
        negation_breakers=frozenset(words("negation_breakers", single=True)) | {_CLAUSE},
        negation_scope=frozenset(words("negation_scope", single=True)),
        never_intense=frozenset(words("never_intense", single=True)),
        not_just=frozenset(words("not_just", single=True)),
        effort=frozenset(words("effort", single=True)),
        resolution=frozenset(words("resolution", single=True)),
        pre_intensifiers=frozenset(words("pre_intensifiers", single=True)),
        post_intensifiers=frozenset(words("post_intensifiers", single=True)),
        post_intensifier_pairs=frozenset(tuple(p.split()) for p in words("post_intensifier_pairs")),
        fillers=frozenset(words("fillers", single=True)),
        softeners=frozenset(words("softeners", single=True)),
        number_words=frozenset(words("number_words", single=True)),
        known_words=frozenset(words("known_words", single=True)),
        stem_forms=frozenset(words("stem_forms", single=True)),
    )
    problems = sms_problems + f.problems
    return (None if problems else tables), problems


def _cue_blocks(
    f: RulesFile, rows: Mapping[Any, Any], state: str, where: str, placeholders: Mapping[str, Any]
) -> list[_Pattern]:
    out: list[_Pattern] = []
    for weight, spec in rows.items():
        path = f"{where}.{weight}"
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 10:
            f.error(path, f"the weight must be a number above 0 and at most 10, not {weight!r}")
        elif not isinstance(spec, str) or not spec.strip():
            f.error(path, "must be cues separated by |")
        else:
            out.extend(_cue_block(f, spec, state, float(weight), path, placeholders))
    return out


def _cue_block(
    f: RulesFile, spec: str, state: str, weight: float, where: str, placeholders: Mapping[str, Any]
) -> list[_Pattern]:
    """The patterns of one cue block, or [] with a problem when it does not parse."""
    before = len(f.problems)
    text = f.expand(spec, placeholders, where, group=("(", ")"))
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            break
    if depth != 0:
        f.error(where, "unbalanced parentheses")
    words = re.split(r"[\s()|?]+", text)
    bad = sorted({w for w in words if w and not _CUE_WORD.fullmatch(w) and not re.fullmatch(r"\{[A-Z0-9_]+\}", w)})
    if bad:
        f.error(where, f"not cue words (lower-case a-z 0-9, word*, ~, #): {', '.join(bad[:8])}")
    if len(f.problems) > before:
        return []
    return _compile(text, state, weight)


def _word_pairs(f: RulesFile) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for key, value in f.mapping("word_pairs").items():
        parts = key.split(" ") if isinstance(key, str) else []
        if len(parts) != 2 or not all(re.fullmatch(r"[a-z0-9]+", p) for p in parts):
            f.error(f"word_pairs.{key}", f"{key!r} must be two lower-case words")
        elif not isinstance(value, str) or not re.fullmatch(r"[a-z0-9]+", value):
            f.error(f"word_pairs.{key}", f"{value!r} must be one lower-case word")
        else:
            out[(parts[0], parts[1])] = value
    return out


def _emoji(f: RulesFile) -> dict[str, tuple[str, float]]:
    out: dict[str, tuple[str, float]] = {}
    for char, value in f.mapping("emoji").items():
        where = f"emoji.{char}"
        if not isinstance(char, str) or len(char) != 1:
            f.error(where, "each key is one emoji character")
        elif (
            not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], (int, float))
            or isinstance(value[1], bool)
        ):
            f.error(where, f"must be [state, weight], not {value!r}")
        elif value[0] not in STATES:
            f.error(where, f"unknown state {value[0]!r} (expected one of: {', '.join(STATES)})")
        else:
            out[char] = (value[0], float(value[1]))
    return out


def _emoticons(f: RulesFile) -> tuple[tuple[re.Pattern[str], str, float], ...]:
    out = []
    for path, item in f.records("emoticons"):
        f.unknown_fields(item, ("pattern", "state", "weight"), path)
        pattern = f.regex("pattern", {}, item, path=f"{path}.pattern")
        state = item.get("state")
        if state not in STATES:
            f.error(f"{path}.state", f"unknown state {state!r} (expected one of: {', '.join(STATES)})")
        weight = f.number("weight", item, path=f"{path}.weight")
        if pattern is not None and state in STATES:
            out.append((pattern, str(state), float(weight)))
    return tuple(out)


@cache
def _tables() -> _Tables:
    """The shipped tables, loaded at first use; a library with problems is refused outright."""
    return required(load_tables())


class Matcher:
    """Classifies texts into distress states and ranks the library's skills for a participant.

    Build one per loaded library and share it: indexes are built once, and per-word caches
    (SMS spelling, typo correction) grow only with the vocabulary seen, up to a fixed bound.
    """

    _CACHE_LIMIT = 50_000

    def __init__(self, library: LibraryLike, model: learned.LinearModel | None | bool = True) -> None:
        """`model`: the learned fallback for texts no cue speaks to (True: the shipped one,
        False or None: the lexicon alone)."""
        self._library = library
        self._model = _default_model() if model is True else (model or None)
        self._t = t = _tables()
        lexicon = list(t.lexicon)
        self._lexicon = _Index(_merge(lexicon), t)
        self._trigger_skills: dict[tuple[str, ...], list[str]] = {}
        triggers = self._compile_triggers(library)
        self._triggers = _Index(triggers, t)
        self._typo_targets = _typo_targets(lexicon, t)
        self._collapse_targets = frozenset(
            p.words[0]
            for p in lexicon
            if len(p.words) == 1 and max((w for s, w in p.votes if s != NONE), default=0.0) >= 2.0
        )
        self._deletes = _delete_index(w for w in self._typo_targets if len(w) >= 5)
        self._token_cache: dict[str, tuple[tuple[str, ...], str | None]] = {}
        # Skills that route by question rather than by feeling ("what is cbt"): psychoeducation cards.
        self._cards = [
            (f" {' '.join(self._plain_tokens(t))} ", skill_id)
            for skill_id, skill in sorted(library.skills.items())
            if not skill.helps_with
            for t in skill.triggers
        ]

    def info_card(self, text: str) -> str | None:
        """The id of an information card whose trigger phrase the text contains ("what is tms?")."""
        padded = f" {' '.join(self._plain_tokens(text))} "
        return next((skill_id for phrase, skill_id in self._cards if phrase.strip() and phrase in padded), None)

    # ---- classification -------------------------------------------------------------------
    def classify(self, text: str) -> StateMatch:
        """The single best state for `text`, or "none".

        "none" when no state reaches THRESHOLD or the no-distress cues outweigh the best state
        by NONE_MARGIN. Deterministic; the evidence lists every cue found (including negated
        ones and those of losing states), lexicon cues in text order, then trigger phrases.
        """
        scores: dict[str, float] = {}
        evidence: list[str] = []
        self._raw_cues(text, scores, evidence)
        toks = self._tokens(text, evidence)
        self._score_lexicon(toks, scores, evidence)
        for cue in self._triggers.scan(toks):
            key = cue.pattern.words
            for state, weight in cue.pattern.votes:
                scores[state] = scores.get(state, 0.0) + weight
            evidence.append(f"trigger:{cue.pattern.label}->{'+'.join(self._trigger_skills[key])}")
        result = _decide(scores, tuple(evidence))
        # The learned layer where the lexicon could not place the text: no state won, and no
        # clear no-distress cue ("thanks", "what time is group"), neutral phrase ("killed it")
        # or negation ("not anxious") explains why. What the lexicon understood, it explains.
        if result.state == NONE and self._model is not None and not any(
            e.startswith(("negated:", "lexicon:not ")) for e in evidence
        ):
            none_score = scores.get(NONE, 0.0)
            if not any(e.startswith("none:") for e in evidence):
                return self._learned(text, result, self._model.threshold)
            if 0.0 < none_score < WEAK_NONE_SCORE:
                return self._learned(text, result, max(self._model.threshold, WEAK_NONE_PROBABILITY))
        return result

    def _learned(self, text: str, result: StateMatch, threshold: float) -> StateMatch:
        """The learned layer, for a text the lexicon could not place.

        It names a state when its probability reaches `threshold`; below that, a distress
        state it leans to is kept in the evidence as "model:weak->state" (when no no-distress
        cue was found), so the conversation can invite the texter to say more instead of
        greeting them.
        """
        assert self._model is not None
        if len(normalise(text).split()) < MODEL_MIN_WORDS:
            return result
        prediction = self._model.predict(text)
        label, probability = prediction.label, prediction.probability
        if label == NONE:
            return result
        if probability >= threshold:
            return StateMatch(label, round(probability, 3), (*result.evidence, f"model:->{label} ({probability:.2f})"))
        if probability >= WEAK_MODEL_PROBABILITY and not any(e.startswith("none:") for e in result.evidence):
            return StateMatch(NONE, result.score, (*result.evidence, f"model:weak->{label} ({probability:.2f})"))
        return result

    def _raw_cues(self, text: str, scores: dict[str, float], evidence: list[str]) -> None:
        """Emoji and emoticons: normalisation erases them, so they are read from the raw text."""
        t = self._t
        if not text.isascii():
            for ch in dict.fromkeys(text):
                hit = t.emoji.get(ch)
                if hit is not None:
                    count = min(text.count(ch), 3)
                    weight = hit[1] * (1.0 + 0.25 * (count - 1))
                    scores[hit[0]] = scores.get(hit[0], 0.0) + weight
                    evidence.append(f"emoji:{ch}->{hit[0]}")
                elif ch in t.none_emoji:
                    scores[NONE] = scores.get(NONE, 0.0) + 1.0
                    evidence.append(f"none:{ch}")
        if ":" in text or ";" in text:
            for pattern, state, weight in t.emoticons:
                if pattern.search(text):
                    scores[state] = scores.get(state, 0.0) + weight
                    evidence.append(f"emoticon->{state}")

    def _tokens(self, text: str, evidence: list[str]) -> list[str]:
        """Normalised tokens with clause markers, SMS spellings expanded and typos corrected."""
        marked = _TIME.sub(r"\1 \2", _CLAUSE_PUNCT.sub(f" {_CLAUSE} ", text))
        raw = normalise(marked).split()
        out: list[str] = []
        i = 0
        while i < len(raw):
            tok = raw[i]
            if i + 1 < len(raw):
                pair = self._t.pairs.get((tok, raw[i + 1]))
                if pair is not None:
                    out.append(pair)
                    i += 2
                    continue
            expanded, fixed = self._token(tok)
            if fixed is not None:
                evidence.append(f"typo:{tok}->{fixed}")
            out.extend(expanded)
            i += 1
        return out

    def _token(self, tok: str) -> tuple[tuple[str, ...], str | None]:
        cached = self._token_cache.get(tok)
        if cached is not None:
            return cached
        result = self._resolve_token(tok)
        if len(self._token_cache) >= self._CACHE_LIMIT:
            self._token_cache.clear()
        self._token_cache[tok] = result
        return result

    def _resolve_token(self, tok: str) -> tuple[tuple[str, ...], str | None]:
        sms = self._t.sms.get(tok)
        if sms is not None:
            return tuple(sms.split()), None
        if (
            len(tok) < 4
            or tok in self._t.known_words
            or tok in self._lexicon.vocabulary
            or tok in self._triggers.vocabulary
            or not tok.isalpha()
            or self._lexicon.has_prefix_match(tok)
        ):
            return (tok,), None
        # "sadd", "madd": a doubled letter left over after elongation squeezing.
        for j in range(len(tok) - 1):
            if tok[j] == tok[j + 1]:
                single = tok[:j] + tok[j + 1 :]
                if single in self._collapse_targets:
                    return (single,), single
        if len(tok) < 5:
            return (tok,), None
        fixed = self._correct(tok)
        return ((fixed,), fixed) if fixed else ((tok,), None)

    def _correct(self, tok: str) -> str | None:
        """The emotion word `tok` is most likely a typo of, or None.

        Targets are the lexicon's single-word cues (weight >= 2) and a few full forms of its
        stems. Accepted: edit distance 1 (2 for words of 9+ letters) by rapidfuzz's OSA
        distance, which counts a swap of neighbours as one edit ("lonley"); same first letter;
        a substituted letter must be a keyboard neighbour of the intended one, because a
        non-neighbour substitution usually spells another real word ("teams", "class",
        "lived"). Candidates come from a precomputed deletion index. Ties: fewest edits, then
        the longer word (dropped letters are the commonest thumb typo), then alphabetical.
        """
        limit = 2 if len(tok) >= 9 else 1
        found: set[str] = set(self._deletes.get(tok, ()))
        for variant in _deletions(tok):
            found.update(self._deletes.get(variant, ()))
        best: tuple[int, int, str] | None = None
        for cand in found:
            if cand[0] != tok[0] or abs(len(cand) - len(tok)) > limit or len(cand) < 5:
                continue
            dist = OSA.distance(tok, cand, score_cutoff=limit)
            if dist > limit or _inflection(tok, cand) or not _plausible_typo(tok, cand, dist):
                continue
            key = (dist, -len(cand), cand)
            if best is None or key < best:
                best = key
        return best[2] if best else None

    def _score_lexicon(self, toks: list[str], scores: dict[str, float], evidence: list[str]) -> None:
        t = self._t
        for cue in self._lexicon.scan(toks):
            label = " ".join(toks[cue.start : cue.end])  # the words as written, not the pattern
            negator = _negated(toks, cue.start, t)
            is_none_cue = all(state == NONE for state, _ in cue.pattern.votes)
            if negator is not None:
                evidence.append(f"negated:{label}")
                if is_none_cue and label.rsplit(" ", 1)[-1] in t.positive_words:
                    scores["sadness"] = scores.get("sadness", 0.0) + _NEGATED_POSITIVE_WEIGHT
                    evidence.append(f"lexicon:not {label}->sadness")
                elif not is_none_cue and _resolved(toks, negator, cue.end, t):
                    scores[NONE] = scores.get(NONE, 0.0) + _RESOLVED_WEIGHT
                    evidence.append("none:resolved")
                continue
            factor, modifiers = _intensity(toks, cue.start, cue.end, t)
            evidence.extend(modifiers)
            for state, weight in cue.pattern.votes:
                scores[state] = scores.get(state, 0.0) + weight * (factor if state != NONE else 1.0)
                evidence.append(f"none:{label}" if state == NONE else f"lexicon:{label}->{state}")

    # ---- skill ranking --------------------------------------------------------------------
    def rank_skills(
        self,
        state: str,
        *,
        flags: frozenset[str] = frozenset(),
        history: SkillHistory | None = None,
        text: str = "",
    ) -> list[str]:
        """Skill ids for `state`, best first; [] for "none" or when no skill is allowed.

        Only skills whose avoid_if flags are all absent and requires flags all present are
        returned. Score: the participant's own mean rating drop for the skill if they rated it,
        else the mean across everyone, else 0; plus a small bonus when `text` hits one of the
        skill's trigger phrases. The last three skills used go to the back (the most recent
        last). Ties keep the library's order for the state, so the result is deterministic.
        """
        if state == NONE:
            return []
        history = history or SkillHistory()
        allowed = [s for s in self._library.for_state(state) if medically_allowed(s, flags)]
        hit = self.triggered_skills(text) if text else frozenset()
        recent = list(dict.fromkeys(history.recent[:3]))

        def score(skill: SkillLike) -> float:
            if skill.id in history.own_gain:
                base = float(history.own_gain[skill.id])
            else:
                base = float(history.global_gain.get(skill.id, 0.0))
            return base + (TRIGGER_BONUS if skill.id in hit else 0.0)

        order = {skill.id: i for i, skill in enumerate(allowed)}
        fresh = sorted((s for s in allowed if s.id not in recent), key=lambda s: (-score(s), order[s.id]))
        stale = sorted((s for s in allowed if s.id in recent), key=lambda s: -recent.index(s.id))
        return [s.id for s in fresh] + [s.id for s in stale]

    def triggered_skills(self, text: str) -> frozenset[str]:
        """Ids of the skills whose trigger phrases occur in `text`."""
        toks = self._tokens(text, [])
        return frozenset(
            skill for cue in self._triggers.scan(toks) for skill in self._trigger_skills[cue.pattern.words]
        )

    def _compile_triggers(self, library: LibraryLike) -> list[_Pattern]:
        """One pattern per distinct trigger phrase, voting for the states of every skill that lists it.

        A skill's first helps_with state gets the full trigger weight and its other states 60%:
        the library lists a skill's main use first.
        """
        votes: dict[tuple[str, ...], dict[str, float]] = {}
        for skill_id in sorted(library.skills):
            skill = library.skills[skill_id]
            states = [s for s in skill.helps_with if s in STATES]
            for trigger in skill.triggers:
                words = tuple(self._plain_tokens(trigger))
                if not words or not states:
                    continue
                skills = self._trigger_skills.setdefault(words, [])
                if skill_id not in skills:
                    skills.append(skill_id)
                phrase_votes = votes.setdefault(words, {})
                for rank, state in enumerate(states):
                    weight = TRIGGER_WEIGHT if rank == 0 else TRIGGER_WEIGHT * 0.6
                    phrase_votes[state] = max(phrase_votes.get(state, 0.0), weight)
        return [_Pattern(words, tuple(sorted(v.items())), " ".join(words)) for words, v in votes.items()]

    def _plain_tokens(self, text: str) -> list[str]:
        """Tokens of a trigger phrase, spelled the way `_tokens` spells a text (no typo step)."""
        pairs, sms = self._t.pairs, self._t.sms
        raw = normalise(text).split()
        out: list[str] = []
        i = 0
        while i < len(raw):
            pair = pairs.get((raw[i], raw[i + 1])) if i + 1 < len(raw) else None
            if pair is not None:
                out.append(pair)
                i += 2
                continue
            out.extend(sms.get(raw[i], raw[i]).split())
            i += 1
        return out


# --------------------------------------------------------------------------------------------
# Pattern compilation and scanning
# --------------------------------------------------------------------------------------------
def _split_top(spec: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    i = 0
    while i < len(spec):
        ch = spec[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and spec.startswith(sep, i):
            parts.append("".join(current))
            current = []
            i += len(sep)
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _expand(entry: str) -> list[tuple[str, ...]]:
    """All word sequences an entry stands for: "(a|b c)? d" -> [(a, d), (b, c, d), (d,)]."""
    entry = entry.strip()
    if not entry:
        return [()]
    if entry.startswith("("):
        close = _closing_paren(entry)
        inner, rest = entry[1:close], entry[close + 1 :]
        optional = rest.startswith("?")
        rest = rest[1:] if optional else rest
        heads = [w for alt in _split_top(inner, "|") for w in _expand(alt)]
        if optional:
            heads.append(())
        tails = _expand(rest)
        return [h + t for h in heads for t in tails]
    head, _, rest = entry.partition(" ")
    return [(head, *t) for t in _expand(rest)]


def _closing_paren(entry: str) -> int:
    """Index of the parenthesis closing the one that opens `entry`."""
    depth = 0
    for j, ch in enumerate(entry):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return j
    raise ValueError(f"unbalanced parentheses in lexicon entry {entry!r}")


def _compile(spec: str, state: str, weight: float) -> list[_Pattern]:
    """Patterns of one lexicon block (placeholders already filled); line breaks and indentation ignored."""
    spec = " ".join(spec.split())
    out = []
    for entry in _split_top(spec, " | "):
        for words in _expand(entry):
            if words:
                out.append(_Pattern(words, ((state, weight),), " ".join(words)))
    return out


def _merge(patterns: Iterable[_Pattern]) -> list[_Pattern]:
    """One pattern per word sequence; a sequence listed for two states votes for both.

    Listed twice for the same state, the higher weight wins.
    """
    merged: dict[tuple[str, ...], dict[str, float]] = {}
    for p in patterns:
        votes = merged.setdefault(p.words, {})
        for state, weight in p.votes:
            votes[state] = max(votes.get(state, 0.0), weight)
    return [_Pattern(words, tuple(sorted(v.items())), " ".join(words)) for words, v in merged.items()]


def _is_number(tok: str, number_words: frozenset[str]) -> bool:
    return tok.isdigit() or tok in number_words


class _Node:
    """One step of the phrase trie: edges by word, by word prefix, for a number, for a gap."""

    __slots__ = ("words", "prefixes", "number", "gap", "patterns")

    def __init__(self) -> None:
        self.words: dict[str, _Node] = {}
        self.prefixes: dict[str, _Node] = {}
        self.number: _Node | None = None
        self.gap: _Node | None = None
        self.patterns: list[_Pattern] = []

    def child(self, word: str) -> _Node:
        if word == "#":
            self.number = self.number or _Node()
            return self.number
        if word == "~":
            self.gap = self.gap or _Node()
            return self.gap
        table = self.prefixes if word.endswith("*") else self.words
        key = word.rstrip("*")
        node = table.get(key)
        if node is None:
            node = table[key] = _Node()
        return node


class _Index:
    """Patterns in a word trie, for a longest-match scan that costs about one dict lookup per word."""

    def __init__(self, patterns: Iterable[_Pattern], t: _Tables) -> None:
        self.numbers = t.number_words
        self.fillers = t.fillers
        self.root = _Node()
        self.vocabulary: set[str] = set()
        self._prefix_words: set[str] = set()
        for p in patterns:
            node = self.root
            for w in p.words:
                node = node.child(w)
                if w.endswith("*"):
                    self._prefix_words.add(w[:-1])
                elif w not in ("~", "#"):
                    self.vocabulary.add(w)
            node.patterns.append(p)
        self._prefix_lengths = sorted({len(p) for p in self._prefix_words})
        self._root_lengths = sorted({len(p) for p in self.root.prefixes})
        self._starts: dict[str, list[_Node]] = {}

    def has_prefix_match(self, tok: str) -> bool:
        return any(tok[:n] in self._prefix_words for n in self._prefix_lengths if n <= len(tok))

    def _start_nodes(self, tok: str) -> list[_Node]:
        """Trie nodes one word in from the root for `tok` (cached: the root fans out widely)."""
        found = self._starts.get(tok)
        if found is None:
            root = self.root
            found = [root.words[tok]] if tok in root.words else []
            found.extend(root.prefixes[tok[:n]] for n in self._root_lengths if tok[:n] in root.prefixes)
            if root.number is not None and _is_number(tok, self.numbers):
                found.append(root.number)
            if len(self._starts) < 50_000:
                self._starts[tok] = found
        return found

    def scan(self, toks: Sequence[str]) -> list[_Cue]:
        """Non-overlapping cues, left to right, longest match first at each position.

        Every pattern that reaches the longest end at a position is kept (so a phrase listed
        for two states votes for both), and the scan resumes after it.
        """
        cues: list[_Cue] = []
        i, n = 0, len(toks)
        while i < n:
            best: list[tuple[int, _Pattern]] = []
            for node in self._start_nodes(toks[i]):
                _walk(node, toks, i + 1, 0, best, self)
            if best:
                end = max(e for e, _ in best)
                seen: set[tuple[str, ...]] = set()
                for e, p in best:
                    if e == end and p.words not in seen:
                        seen.add(p.words)
                        cues.append(_Cue(i, end, p))
                i = end
            else:
                i += 1
        return cues


def _walk(
    node: _Node, toks: Sequence[str], j: int, skipped: int, out: list[tuple[int, _Pattern]], index: _Index
) -> None:
    """Collect (end, pattern) for every pattern completed from `node` at word `j` onwards.

    Inside a phrase up to two filler words are skipped ("could *really* use a hit"); a gap
    "~" skips 0-2 words; nothing crosses a clause marker.
    """
    for p in node.patterns:
        out.append((j, p))
    if node.gap is not None:
        for k in range(j, min(j + 3, len(toks) + 1)):
            if k > j and toks[k - 1] == _CLAUSE:
                break
            _walk(node.gap, toks, k, skipped, out, index)
    if j >= len(toks):
        return
    tok = toks[j]
    nxt = node.words.get(tok)
    if nxt is not None:
        _walk(nxt, toks, j + 1, skipped, out, index)
    if node.prefixes:
        for prefix, child in node.prefixes.items():
            if tok.startswith(prefix):
                _walk(child, toks, j + 1, skipped, out, index)
    if node.number is not None and _is_number(tok, index.numbers):
        _walk(node.number, toks, j + 1, skipped, out, index)
    if skipped < 2 and tok in index.fillers and (node.words or node.prefixes or node.number):
        _walk(node, toks, j + 1, skipped + 1, out, index)


def _typo_targets(patterns: Iterable[_Pattern], t: _Tables) -> frozenset[str]:
    """Words a typo may be corrected to: strong single-word cues, the words of distress phrases
    and full forms of stems; never a "none" cue, never shorter than 5 letters."""
    words: set[str] = set(t.stem_forms)
    for p in patterns:
        strength = max((w for s, w in p.votes if s != NONE), default=0.0)
        if len(p.words) == 1 and strength >= 2.0 or len(p.words) > 1 and strength > 0.0:
            words.update(w for w in p.words if w.isalpha() and len(w) >= 5)
    return frozenset(words)


_VOWELS = frozenset("aeiouy")
_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_POS = {ch: (r, c) for r, row in enumerate(_QWERTY_ROWS) for c, ch in enumerate(row)}


def _neighbours(a: str, b: str) -> bool:
    (ra, ca), (rb, cb) = _KEY_POS.get(a, (9, 99)), _KEY_POS.get(b, (-9, -99))
    return abs(ra - rb) <= 1 and abs(ca - cb) <= 1


def _inflection(tok: str, cand: str) -> bool:
    """"points" is a form of "point", not a typo of it."""
    short, long_ = sorted((tok, cand), key=len)
    return long_.startswith(short) and long_[len(short) :] in {"s", "es", "d", "ed", "ing", "er", "ers", "ly"}


def _plausible_typo(tok: str, cand: str, dist: int) -> bool:
    """Every substituted letter is a keyboard neighbour, or a vowel for a vowel in a word of 8+
    letters ("hyperventalating"); swaps, drops and extra letters always pass."""
    if Levenshtein.distance(tok, cand) > dist:
        return True  # OSA found a cheaper path through a transposition: "lonley", "anxeity"
    long_word = len(cand) >= 8
    return all(
        _neighbours(tok[e.src_pos], cand[e.dest_pos])
        or long_word and tok[e.src_pos] in _VOWELS and cand[e.dest_pos] in _VOWELS
        for e in Levenshtein.editops(tok, cand)
        if e.tag == "replace"
    )


def _deletions(word: str) -> set[str]:
    return {word[:j] + word[j + 1 :] for j in range(len(word))}


def _delete_index(words: Iterable[str]) -> dict[str, list[str]]:
    """Map each one-letter deletion of a word (and the word itself) to the words it came from."""
    index: dict[str, list[str]] = {}
    for word in sorted(set(words)):
        for variant in {word, *_deletions(word)}:
            index.setdefault(variant, []).append(word)
    return index


# --------------------------------------------------------------------------------------------
# Negation, intensity, decision
# --------------------------------------------------------------------------------------------
def _negated(toks: Sequence[str], start: int, t: _Tables) -> int | None:
    """Index of the negator governing the cue at `start`, or None.

    The negator must be at most 3 words back with only linking words between ("dont feel
    sad", "not even that angry"); another content word ends its scope ("not funny, just sad").
    """
    for j in range(start - 1, max(start - 4, -1), -1):
        tok = toks[j]
        if tok in t.negation_breakers:
            return None
        if tok not in t.negators and tok not in t.negation_scope:
            return None
        if tok in t.negators:
            between = toks[j + 1 : start]
            if tok == "never" and t.never_intense.intersection(between):
                return None
            if between[:1] and between[0] in t.not_just:
                return None
            if j > 0 and toks[j - 1] in t.effort:
                return None
            return j
    return None


def _resolved(toks: Sequence[str], negator: int, end: int, t: _Tables) -> bool:
    """'no longer angry', 'not anxious anymore', 'not stressed at all': the feeling has passed."""
    if toks[negator] == "no" and negator + 1 < len(toks) and toks[negator + 1] == "longer":
        return True
    return any(tok in t.resolution for tok in toks[end : end + 3])


def _intensity(toks: Sequence[str], start: int, end: int, t: _Tables) -> tuple[float, list[str]]:
    factor, notes = 1.0, []
    for j in range(max(start - 2, 0), start):
        tok = toks[j]
        if tok in t.pre_intensifiers:
            factor = _INTENSIFY
            notes.append(f"intensifier:{tok}")
        elif tok in t.softeners:
            factor = _SOFTEN
            notes.append(f"softener:{tok}")
    if end < len(toks) and toks[end] in t.post_intensifiers:
        factor = max(factor, 1.0) * _INTENSIFY
        notes.append(f"intensifier:{toks[end]}")
    elif tuple(toks[end : end + 2]) in t.post_intensifier_pairs:
        factor = max(factor, 1.0) * _INTENSIFY
        notes.append(f"intensifier:{' '.join(toks[end : end + 2])}")
    return factor, notes


def _decide(scores: Mapping[str, float], evidence: tuple[str, ...]) -> StateMatch:
    best = max(
        (s for s in STATES if scores.get(s, 0.0) > 0.0),
        key=lambda s: (scores[s], -_RANK[s]),
        default=None,
    )
    none_score = scores.get(NONE, 0.0)
    if best is None or scores[best] < THRESHOLD or none_score >= NONE_MARGIN * scores[best]:
        return StateMatch(NONE, round(none_score, 3), evidence)
    return StateMatch(best, round(scores[best], 3), evidence)
