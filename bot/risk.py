"""Risk tiers: how urgently a text needs a human, from rules, a learned layer and recent context.

Tiers:
- `crisis`: act now (intent, plan, means, preparation, goodbye, an act in progress, overdose,
  medical danger, abuse, harm to others): the crisis reply, the counselor alerted at once.
- `check`: possible risk (passive ideation, hopelessness, urges without an act, wording only the
  learned layer recognises): the bot asks directly whether they are thinking of suicide or of
  hurting themselves, with the crisis lines, and the answer decides. Asking does not raise risk
  (Dazzi et al. 2014, https://doi.org/10.1017/S0033291714001299).
- `none`.

How the layers combine (each named in `reasons`, for --explain):
1. The rules (`bot.safety`, clinician-reviewable tables) decide what they recognise: an
   imminent hit is `crisis`; a possible hit is `check` when it is about the texter's own
   thoughts of suicide or self-harm, and `crisis` otherwise (abuse, overdose, someone else at
   risk: those replies give the right number at once).
2. Recovery talk, mentions and clarifications: a text that places risk in the past ("two years
   ago", "since my overdose"), says how things are now ("doing so much better", "a year clean")
   and has nothing current ("tonight", "again", "want to die") is `none`, whatever the rules or
   the model say. So is a
   text about a show, a class or a sport whose only rule hits notice a word ("suicide sprints"),
   and one that clarifies something said before ("i meant the group chat lol"). Rule hits that
   are all in the past without such markers are `check` at most.
3. The learned layer (`bot.learned`, OR-ed with the rules) lifts `none` to `check` when its
   probability reaches the model's threshold. It never decides `crisis` alone: its false alarms
   are too frequent to act on without asking. A plain denial with nothing current after it
   ("no im not going to hurt myself, just venting") gets no question from it; a text read as
   recovery talk does when the model is very sure (the reading can be wrong: "2 years sober and
   i used my old amount").
4. Context: within RISK_CONTEXT_HOURS of a check or crisis event, a vague intent or farewell
   ("gonna do it tonight", "bye everyone") or any `check` text becomes `crisis`
   (`escalate`). The same words from someone with no recent risk are not.

The tables of vague wording, recovery markers and answers to the direct question live in
`skills_library/rules/context.yaml`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot import learned, matching, safety
from bot.text import normalise
from bot.vocabulary import STATES

CRISIS = "crisis"
CHECK = "check"
NONE = "none"
TIERS = (CRISIS, CHECK, NONE)

LIBRARY = Path(__file__).resolve().parent.parent / "skills_library"
CONTEXT_FILE = Path("rules") / "context.yaml"
RISK_MODEL_FILE = Path("models") / "risk.json.gz"

# The learned layer needs some words to judge: a one- or two-word text ("nope", "not really") is
# an answer or a greeting far more often than a disclosure, and vague short wording is what the
# context tables are for.
MODEL_MIN_WORDS = 3

# Categories whose "possible" hits are asked about rather than acted on: the direct question is
# about suicide and self-harm, so it only fits those.
_ASKABLE = frozenset({"suicide", "self_harm"})


@dataclass(frozen=True)
class RiskAssessment:
    tier: str
    rules: safety.CrisisAssessment
    model_probability: float | None
    vague: bool  # vague intent or farewell wording: `crisis` only with recent risk
    reasons: tuple[str, ...]
    model_cues: tuple[str, ...] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        return self.rules.categories

    @property
    def is_crisis(self) -> bool:
        return self.tier == CRISIS


@dataclass(frozen=True)
class ContextTables:
    vague: tuple[tuple[str, re.Pattern[str]], ...]
    past: re.Pattern[str]
    recovery: re.Pattern[str]
    current: re.Pattern[str]
    mention: re.Pattern[str]
    clarify: re.Pattern[str]
    denial: re.Pattern[str]
    mention_rules: frozenset[str]
    gate_states: frozenset[str]
    gate_threshold: float
    recovery_threshold: float
    yes: re.Pattern[str]
    no: re.Pattern[str]
    preamble: re.Pattern[str]
    no_but: re.Pattern[str]
    safe: re.Pattern[str]
    unsafe: re.Pattern[str]


def read_tables(path: Path) -> tuple[ContextTables | None, list[tuple[str, str]]]:
    """The context tables at `path`, and every problem as (field, message)."""
    problems: list[tuple[str, str]] = []
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return None, [("", f"cannot read: {exc}")]
    if not isinstance(data, dict):
        return None, [("", "must be a mapping")]

    def compile_(field: str, pattern: Any) -> re.Pattern[str] | None:
        if not isinstance(pattern, str) or not pattern.strip():
            problems.append((field, "must be a non-empty regular expression"))
            return None
        try:
            return re.compile(pattern)
        except re.error as exc:
            problems.append((field, f"does not compile: {exc}"))
            return None

    vague: list[tuple[str, re.Pattern[str]]] = []
    entries = data.get("vague")
    if not isinstance(entries, list) or not entries:
        problems.append(("vague", "must be a non-empty list"))
        entries = []
    names: set[str] = set()
    for i, entry in enumerate(entries):
        field = f"vague[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "pattern", "why"} or not entry.get("why"):
            problems.append((field, "needs exactly name, pattern and why"))
            continue
        name = str(entry.get("name", ""))
        if not name or name in names:
            problems.append((field + ".name", f"missing or duplicate name {name!r}"))
        names.add(name)
        compiled = compile_(field + ".pattern", entry.get("pattern"))
        if compiled is not None:
            vague.append((name, compiled))

    def phrases(field: str) -> re.Pattern[str] | None:
        items = data.get(field)
        if not isinstance(items, list) or not items or not all(isinstance(x, str) and x.strip() for x in items):
            problems.append((field, "must be a non-empty list of phrases"))
            return None
        return compile_(field, r"^(?:" + "|".join(items) + r")(?: |$)")

    past, recovery, current, mention, clarify, denial = (
        compile_(key, data.get(key)) for key in ("past", "recovery", "current", "mention", "clarify", "denial")
    )
    mention_rules = data.get("mention_rules")
    if not isinstance(mention_rules, list) or not all(isinstance(x, str) for x in mention_rules):
        problems.append(("mention_rules", "must be a list of rule names"))
        mention_rules = []
    yes, no, no_but = phrases("answer_yes"), phrases("answer_no"), compile_("answer_no_but", data.get("answer_no_but"))
    preamble = compile_("answer_preamble", data.get("answer_preamble"))
    safe, unsafe = phrases("safe_yes"), phrases("safe_no")
    gate = data.get("model_gate")
    gate_states: frozenset[str] = frozenset()
    gate_threshold = 1.0
    if not isinstance(gate, dict) or not isinstance(gate.get("states"), list) \
            or not isinstance(gate.get("threshold"), (int, float)) or not 0 < gate["threshold"] <= 1:
        problems.append(("model_gate", "needs states (a list) and threshold (0-1]"))
    else:
        gate_states, gate_threshold = frozenset(map(str, gate["states"])), float(gate["threshold"])
        unknown = sorted(gate_states - set(STATES))
        if unknown:
            problems.append(("model_gate.states", f"not distress states: {', '.join(unknown)} "
                             f"(expected some of: {', '.join(STATES)})"))
    recovery_threshold = data.get("recovery_model_threshold")
    if not isinstance(recovery_threshold, (int, float)) or not 0 < recovery_threshold <= 1:
        problems.append(("recovery_model_threshold", "must be a number in (0-1]"))
        recovery_threshold = 1.0
    if (problems or past is None or recovery is None or current is None or mention is None or clarify is None
            or denial is None or yes is None or no is None or preamble is None or no_but is None or safe is None
            or unsafe is None):
        return None, problems
    return ContextTables(tuple(vague), past, recovery, current, mention, clarify, denial, frozenset(mention_rules),
                         gate_states, gate_threshold, float(recovery_threshold), yes, no, preamble, no_but, safe,
                         unsafe), []


@lru_cache(maxsize=4)
def tables(library: Path = LIBRARY) -> ContextTables:
    loaded, problems = read_tables(library / CONTEXT_FILE)
    if loaded is None:
        raise ValueError(f"{CONTEXT_FILE}: " + "; ".join(f"{f}: {m}" for f, m in problems))
    return loaded


@lru_cache(maxsize=4)
def _risk_model(library: Path = LIBRARY) -> learned.LinearModel | None:
    path = library / RISK_MODEL_FILE
    return learned.load(path) if path.exists() else None


def assess(text: str, *, state: str | None = None, explain: bool = False, model: bool = True,
           library: Path = LIBRARY) -> RiskAssessment:
    """The tier of `text` on its own (no context). Pure; never raises on any string.

    `state` is the lexicon's reading of the text (`StateMatch.lexicon_state`), when the caller
    has it: a clear everyday state (a craving, panic, anger...) asks more of the learned layer
    before it may raise a question. A state the learned fallback guessed does not count.
    `model=False` leaves the learned layer out (training measures what the rules already catch).
    """
    rules = safety.assess(text)
    ctx = tables(library)
    canon = safety.canonical(text) if text.strip() else ""
    vague = next((name for name, pattern in ctx.vague if pattern.search(canon)), None)
    reasons = [f"rules:{r}" for r in rules.reasons]
    if vague:
        reasons.append(f"vague:{vague}")
    tier = NONE
    current = ctx.current.search(canon) is not None
    recovery = bool(ctx.past.search(canon) and ctx.recovery.search(canon)) and not current
    discounted = recovery
    if discounted:
        reasons.append("recovery:past risk, present recovery")
    elif (rules.is_crisis and not current and ctx.mention.search(canon)
          and all(r.split("~")[0] in ctx.mention_rules for r in rules.reasons)):
        discounted = True  # the same effect: no tier from the rules, no question from the model
        reasons.append("mention:a show, a class, a training")
    elif rules.is_crisis and not current and ctx.clarify.search(canon):
        discounted = True
        reasons.append("clarify:explains something said before")
    if rules.is_crisis and not discounted:
        past_only = all("~past" in r for r in rules.reasons)
        if rules.level == safety.IMMINENT and not past_only:
            tier = CRISIS
        elif past_only or set(rules.categories) <= _ASKABLE:
            tier = CHECK
        else:
            tier = CRISIS
    probability: float | None = None
    cues: tuple[str, ...] = ()
    layer = _risk_model(library) if model else None
    if layer is not None and len(canon.split()) >= MODEL_MIN_WORDS:
        # The model reads the canonical text too ("5 kms" is a distance, "kms" is not).
        prediction = layer.predict(canon, explain=5 if explain else 0)
        probability = prediction.of("risk")
        cues = prediction.cues
        needed = max(layer.threshold, ctx.gate_threshold) if state in ctx.gate_states else layer.threshold
        if recovery:  # the recovery reading may be wrong: a very sure model still asks
            needed = max(needed, ctx.recovery_threshold)
        lifts = tier == NONE and probability >= needed and (recovery or not discounted)
        if lifts and _denies(ctx, canon):
            reasons.append("denial:says plainly there is no risk")
        elif lifts:
            tier = CHECK
            reasons.append(f"model:{probability:.2f}>={needed}" + (" despite recovery" if recovery else ""))
        elif explain:
            reasons.append(f"model:{probability:.2f}")
    return RiskAssessment(tier, rules, probability, vague is not None, tuple(reasons), cues)


def _denies(ctx: ContextTables, canon: str) -> bool:
    """True when `canon` plainly denies risk ("im not going to hurt myself, just venting") and,
    the denial set aside, says nothing current and hedges nothing ("not suicidal but...")."""
    found = ctx.denial.search(canon)
    if found is None:
        return False
    rest = ctx.denial.sub(" ", canon)
    return ctx.current.search(rest) is None and ctx.no_but.search(canon, found.end()) is None


def needs_context(assessment: RiskAssessment) -> bool:
    """True when recent risk would change this text's tier (so the caller looks it up)."""
    return assessment.tier == CHECK or (assessment.tier == NONE and assessment.vague)


def escalate(assessment: RiskAssessment) -> RiskAssessment:
    """The tier given a check or crisis event within the context window."""
    if not needs_context(assessment):
        return assessment
    return replace(assessment, tier=CRISIS, reasons=assessment.reasons + ("context:recent risk",))


def answer(text: str, library: Path = LIBRARY) -> str | None:
    """"yes", "no" or None: a reply to the direct question, read as an answer to it.

    Hesitant answers ("kinda", "idk maybe", "sometimes") are yes-like; a denial that goes on
    ("no but sometimes...") is yes-like too, since what follows the "but" is the answer.
    """
    ctx = tables(library)
    words = _without_preamble(ctx, normalise(text))
    if not words:
        return None
    if ctx.no.search(words):
        return "yes" if ctx.no_but.search(words) else "no"
    if ctx.yes.search(words):
        return "yes"
    return None


def _without_preamble(ctx: ContextTables, words: str) -> str:
    """`words` without an opener that says nothing yet ("ngl", "honestly", "not gonna lie"),
    unless the opener is all there is."""
    rest = ctx.preamble.sub("", words, count=1).strip()
    return rest or words


def safety_answer(text: str, library: Path = LIBRARY) -> str:
    """"safe", "unsafe" or "unclear": a reply to "are you safe right now?", read with that
    question's polarity ("no" is unsafe).

    Only a clear "safe" counts as safe; a hedge ("yes but", "i think so", "idk") is unclear, and an
    unclear answer is handled like an unsafe one.
    """
    ctx = tables(library)
    words = _without_preamble(ctx, normalise(text))
    if not words:
        return "unclear"
    if ctx.unsafe.search(words):
        return "unsafe"
    if ctx.safe.search(words) and not ctx.no_but.search(words):
        return "safe"
    return "unclear"


def check_tables(library: Path) -> list[tuple[str, str, str]]:
    """Problems as (file, field, message): the context tables, and models older than their texts.

    A model records the names and SHA-256 of the files it was trained on; editing a training
    file without retraining (scripts/train_models.py) is an error, as is a training file no model
    was trained on.
    """
    problems = [(str(CONTEXT_FILE), field, message) for field, message in read_tables(library / CONTEXT_FILE)[1]]
    training = library / "training"
    used: set[str] = set()
    for path in sorted((library / "models").glob("*.json.gz")):
        where = f"models/{path.name}"
        try:
            model = learned.read_model(path)
        except (OSError, ValueError, KeyError) as exc:
            problems.append((where, "", f"cannot read the model: {exc}"))
            continue
        files = model.meta.get("training_files", [])
        names = [str(n) for n in files] if isinstance(files, list) else []
        used.update(names)
        is_state_model = path.name == matching.STATES_MODEL.name
        strangers = sorted(set(model.classes) - {*STATES, matching.NONE}) if is_state_model else []
        if strangers:
            problems.append((where, "classes", f"not distress states: {', '.join(strangers)} "
                             "(the state model names only the states of bot/vocabulary.py and none)"))
        missing = [n for n in names if not (training / n).is_file()]
        if missing:
            problems.append((where, "training_files", f"trained on files that are gone: {', '.join(missing)}"))
        elif learned.training_digest(training / n for n in names) != model.training_sha256:
            problems.append((where, "training_sha256", "older than its training texts: run scripts/train_models.py"))
    for path in sorted(training.glob("*.tsv")):
        if path.name not in used:
            problems.append((f"training/{path.name}", "", "no model is trained on it: run scripts/train_models.py"))
    return problems
