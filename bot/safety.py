"""Crisis detection: does an inbound text need the crisis path instead of a coping skill?

Rules over normalised text, tuned for recall (CLINICAL.md section 2.6: "recall first for T2/T3").
The rules are data tables below; every entry carries a comment on why it is there. A rule that
matches names itself in `CrisisAssessment.reasons` (never the matched words, so reasons can be
logged and shown with --explain without leaking the message).

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

Levels (CLINICAL 2.6): "imminent" (T3) = intent, plan, means, time, an act in progress, overdose,
medical emergency, current abuse, harm to others; "possible" (T2) = passive ideation, urges
without an act, past ideation, ambiguous violence, someone else at risk.

Categories: suicide, self_harm, overdose, medical, harm_to_others, abuse, third_party.
`third_party` means the person at risk is someone else. It stands alone when the texter reports
another person's thoughts of suicide or self-harm (they need help for helping); it comes with
`medical` or `overdose` when that other person is in physical danger now (911 first).

Decisions documented here (clinician review wanted):
- Media and education mentions ("that song about suicide", "suicide prevention training",
  "suicide squad") are not crisis (CLINICAL 2.5 rates them low).
- Panic wording ("feel like im dying", "i think im going to die", "feels like a heart attack")
  and "cant breathe" alone are not crisis: the breathing skill opens with a 911 screen line.
  Chest pain together with breathlessness, arm or jaw pain, fainting is medical.
- "i could kill him" is an anger idiom (not crisis); "im going to kill him" is harm to others.
- Relapse ("i used again") and cravings go to the craving skill, not the crisis path, unless
  they come with an overdose or medical sign.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.text import fold, normalise

IMMINENT = "imminent"
POSSIBLE = "possible"
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
# Vocabulary shared by the rules (regex fragments over canonical text: a-z, 0-9, single spaces,
# " | " between clauses).
# ============================================================================================

_GAP = r"(?: [a-z0-9]+){0,%d}"  # up to N filler words; use as _GAP % n


def _gap(n: int) -> str:
    return _GAP % n


# Verbs and phrases that express wanting, intending or planning ("want to kill myself").
_INTENT = (
    r"(?:want to|wanted to|wanting to|going to|about to|ready to|plan to|planning to|planning on|"
    r"need to|gotta|got to|have to|should|should just|will|ill|im|might|could|can|gonna|"
    r"trying to|try to|tried to|tempted to|feel like|thinking about|thinking of|think about|"
    r"thought about|considering|contemplating)"
)
# Urge wording: for self-harm an urge without an act is "possible" (CLINICAL 2.6 T2).
_URGE = (
    r"(?:want to|wanted to|wanting to|wanna|urge to|urges to|urge|urges|tempted to|need to|"
    r"feel like|thinking about|thinking of|think about|cant stop thinking about|craving|"
    r"trying not to|try not to|so close to|about to|going to|might|could)"
)
_PILL_NAMES = (
    r"pills?|tablets?|caps|capsules?|meds|medications?|medicine|tylenol|acetaminophen|"
    r"paracetamol|ibuprofen|advil|motrin|aleve|excedrin|aspirin|xanax|bars|benzos?|klonopin|"
    r"valium|ativan|ambien|seroquel|trazodone|lithium|oxy|oxys|oxycodone|percs?|percocet|"
    r"vicodin|hydros?|opioids?|opiates|fentanyl|fent|heroin|methadone|suboxone|gabapentin|"
    r"benadryl|sleeping pills|sleep aids?|insulin|lexapro|zoloft|prozac|wellbutrin|adderall|"
    r"lamictal|tramadol|morphine|codeine|muscle relaxers|sertraline|fluoxetine|citalopram|escitalopram|"
    r"quetiapine|clonazepam|lorazepam|diazepam|alprazolam|zolpidem|amitriptyline|venlafaxine|effexor|"
    r"cymbalta|duloxetine|bupropion|mirtazapine|remeron|abilify|risperdal|lamotrigine|depakote|topamax|"
    r"naltrexone|buprenorphine|subs|norco|dilaudid|kpins|hydrocodone|propranolol|clonidine|hydroxyzine|"
    r"vistaril|melatonin|nyquil|antidepressants|painkillers|pain pills|sleeping meds"
)
_PILL_WORDS = rf"(?:{_PILL_NAMES})"
_POISON = r"(?:bleach|antifreeze|drain cleaner|rat poison|poison|pesticide|weed killer)"
# Quantities that turn "took pills" into an overdose. Bare numbers are checked against
# _MIN_PILLS by the rule's accept function ("took 2 tylenol for my headache" is a normal dose).
_QUANTITY = (
    r"(?P<qty>\d{1,4}|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|"
    r"fifty|hundred|a hundred|a dozen|dozens|a bunch|a handful|handfuls|a whole bottle|"
    r"the whole bottle|whole bottle|a whole pack|the whole pack|a bottle|a box|all|all of|"
    r"everything|too many|way too many|so many|a lot|lots|loads|tons|half the bottle|"
    r"a fistful|a ton)"
)
_NUMBER_WORDS = {
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100,
    "a hundred": 100,
}
_MIN_PILLS = 5
_VAGUE = frozenset({"a lot", "lots", "loads", "tons", "so many", "a ton"})
# People who can hurt the texter (abuse) or be hurt by them (harm to others).
_RELATION = (
    r"(?:partner|boyfriend|girlfriend|husband|wife|ex|ex husband|ex wife|ex boyfriend|"
    r"ex girlfriend|baby daddy|babys dad|babys father|fiance|fiancee|dad|father|stepdad|step dad|"
    r"mom|mother|stepmom|step mom|brother|sister|uncle|aunt|cousin|grandpa|grandfather|grandma|"
    r"grandmother|roommate|landlord|boss|manager|coach|teacher|pastor|son|daughter|caregiver|"
    r"foster dad|foster mom|foster parent|parents?|family|man|guy|girl|kids?|baby|coworker|"
    r"co worker|neighbou?r|friend|sponsor|counselor|therapist)"
)
_AGGRESSOR = (
    rf"(?:he|she|they|hes|shes|theyre|my {_RELATION}|someone|somebody|a guy|this guy|some guy|that guy)"
)
_TARGET = (
    rf"(?:him|her|them|someone|somebody|anyone|everyone|everybody|people|"
    rf"(?:that|this) (?:man|woman|guy|girl|dude|bitch|bastard|kid|person)|"
    rf"my (?:[a-z]+ )?{_RELATION}|[a-z]+s (?:mom|dad|boyfriend|girlfriend|husband|wife))"
)
_LAUGHTER = re.compile(r"\b(?:lol|lmao|lmfao|rofl|jk|haha[a-z]*|hehe[a-z]*)\b")
_LAUGH_EMOJI = ("\U0001f602", "\U0001f923", "\U0001f480")  # crying-laughing, rolling, skull

# ============================================================================================
# Canonical tokens
# ============================================================================================

# SMS spellings and algospeak, one token to its plain form (may be several words).
_TOKEN_MAP: dict[str, str] = {
    # contractions without apostrophes and SMS verbs, so rules need one spelling
    "wanna": "want to", "wana": "want to", "wan": "want", "wnt": "want", "want2": "want to",
    "gonna": "going to", "gona": "going to", "gunna": "going to", "finna": "going to",
    "bouta": "about to", "boutta": "about to", "tryna": "trying to", "gotta": "got to",
    "hafta": "have to", "needa": "need to", "imma": "im going to", "ima": "im going to",
    "iam": "im", "cannot": "cant", "cnt": "cant", "dnt": "dont", "wudnt": "wouldnt",
    "u": "you", "ur": "your", "urself": "yourself", "r": "are",
    "rn": "right now", "tn": "tonight", "tonite": "tonight", "2nite": "tonight", "2night": "tonight",
    "2day": "today", "tmrw": "tomorrow", "tmr": "tomorrow", "2morrow": "tomorrow",
    "ppl": "people", "every1": "everyone", "evry1": "everyone", "sum1": "someone", "some1": "someone",
    "no1": "nobody", "noone": "nobody", "bf": "boyfriend", "gf": "girlfriend", "hubby": "husband",
    "mum": "mom", "mommy": "mom", "momma": "mom", "mama": "mom", "daddy": "dad",
    "ded": "dead", "dyin": "dying", "killin": "killing", "cuttin": "cutting", "goin": "going",
    "thinkin": "thinking", "livin": "living", "tryin": "trying", "plz": "please", "pls": "please",
    "mylife": "my life", "todie": "to die", "myslf": "myself", "meself": "myself",
    # overdose shorthand: "od" is not otherwise a word in texts ("od'd" is handled before
    # apostrophes are dropped, because "odd" is a word)
    "od": "overdose", "oded": "overdosed", "oding": "overdosing", "odin": "overdosing",
    # algospeak for suicide (CLINICAL 2.5; "all language around death converges on unalive")
    "sewerslide": "suicide", "sooicide": "suicide", "suwuicide": "suicide", "suicid": "suicide",
    "selfdelete": "suicide", "selfdeleting": "suicide", "unalived": "unalive",
    "unaliving": "unalive", "selfharm": "self harm", "selfharming": "self harming",
    "selfharmed": "self harmed", "selfinjury": "self injury",
    # "kys" = "kill yourself", aimed at the texter by others or misused for oneself
    "kys": "kill yourself",
    "xans": "xanax", "pils": "pills",
}

# Key words whose repeated-letter typos are repaired ("kil" -> "kill", "diee" -> "die",
# "suicidee" -> "suicide"): the token's letters with repeats collapsed equal the key word's.
# Only words whose collapsed form is not itself an English word are here ("noose" collapses to
# "nose", "bleed" to "bled": both left out). Checked against a word list when written.
_COLLAPSE_KEYS = (
    "kill", "kills", "killed", "killing", "die", "dies", "died", "dying", "dead", "death",
    "myself", "suicide", "suicidal", "cutting", "hurt", "hurting", "pills", "overdose",
    "overdosed", "overdosing", "alive", "living", "goodbye", "goodbyes", "sleep", "forever",
    "unalive", "burden", "existing", "disappear", "wanna", "gonna", "yourself", "himself",
    "herself", "sh", "kms", "kys",
)


def _collapse(word: str) -> str:
    out: list[str] = []
    for ch in word:
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)


_COLLAPSED: dict[str, str] = {_collapse(k): k for k in _COLLAPSE_KEYS}

# Long key words whose typos are repaired by edit distance 1 (OSA: a swap counts as one edit),
# e.g. "suicde", "sucidal", "myslef", "siezure", "withdrawls". Checked against an English word
# list (wamerican, 88k words): at distance 1 the only real words that would change meaning are
# the ones in _FUZZY_PROTECT. Distance 2 was tried and rejected: "struggling" became "strangling",
# "resisting" became "existing".
_FUZZY_TARGETS = (
    "suicide", "suicidal", "suicides", "myself", "yourself", "himself", "herself", "themselves",
    "overdose", "overdosed", "overdosing", "goodbye", "goodbyes", "unalive", "tylenol",
    "acetaminophen", "ibuprofen", "fentanyl", "xanax", "klonopin", "seroquel", "seizure",
    "seizures", "withdrawal", "withdrawals", "hallucinating", "committing", "stockpiling",
)
_FUZZY_PROTECT = frozenset({"overdoes", "overdoing", "overdone"})
# Joined words: a head and a tail that each canonicalise to these ("killmyself", "selfharm").
_JOIN_HEADS = frozenset({"kill", "hurt", "cut", "burn", "hang", "shoot", "end", "self", "want", "unalive"})
_JOIN_TAILS = frozenset({"myself", "harm", "delete", "die", "me", "it", "life", "yourself"})


@lru_cache(maxsize=16384)
def _canon_word(token: str) -> str:
    """A token with SMS spellings expanded and typos of key words repaired (no splitting)."""
    mapped = _TOKEN_MAP.get(token)
    if mapped is not None:
        return mapped
    if len(token) <= 2 or token.isdigit():
        return token
    collapsed = _COLLAPSED.get(_collapse(token))
    if collapsed is not None:
        return _TOKEN_MAP.get(collapsed, collapsed)
    if len(token) < 5 or token in _FUZZY_PROTECT or not token.isalpha():
        return token
    found = process.extractOne(token, _FUZZY_TARGETS, scorer=OSA.distance, score_cutoff=1)
    if found is not None:
        return str(found[0])
    return token


@lru_cache(maxsize=16384)
def _canon_token(token: str) -> str:
    """`_canon_word`, then joined pairs of key words split ("killmyself" -> "kill myself")."""
    word = _canon_word(token)
    if word != token or len(token) < 6 or not token.isalpha():
        return word
    for cut in range(2, len(token) - 1):
        head, tail = _canon_word(token[:cut]), _canon_word(token[cut:])
        if head in _JOIN_HEADS and tail in _JOIN_TAILS:
            return f"{head} {tail}"
    return token


# Phrase-level rewrites on canonical text, so rules need one spelling: contractions written
# out ("do not" -> "dont"), split or joined words ("my self", "kil myself") and algospeak that
# spans words ("self delete", "sewer slide" -> "suicide").
_PHRASE_MAP = {
    "i m": "im", "i am": "im", "i will": "ill", "i would": "id", "do not": "dont", "did not": "didnt",
    "can not": "cant", "will not": "wont", "would not": "wouldnt", "is not": "isnt", "are not": "arent",
    "have not": "havent", "my self": "myself", "your self": "yourself", "him self": "himself",
    "her self": "herself", "them selves": "themselves", "them self": "themself",
    "self delete": "suicide", "self deleting": "suicide", "self deletion": "suicide",
    "self deleted": "suicide", "delete myself": "suicide", "sewer slide": "suicide",
    "commit sudoku": "commit suicide", "commit toaster bath": "commit suicide",
    "sui cide": "suicide", "sui cidal": "suicidal", "su icide": "suicide", "suici de": "suicide",
    "self harming": "self harm", "self harmed": "self harm", "self injury": "self harm",
    "self injuring": "self harm", "self injure": "self harm",
}
_PHRASE_RE = re.compile(
    r"\b(?:" + "|".join(sorted(map(re.escape, _PHRASE_MAP), key=len, reverse=True)) + r")\b"
)
_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(want|going|about|need|have|plan|planning|ready|trying) 2\b"), r"\1 to"),
    (re.compile(r"\bkil+ myself\b"), "kill myself"),
)


def _rewrite_phrases(clause: str) -> str:
    clause = _PHRASE_RE.sub(lambda m: _PHRASE_MAP[m.group(0)], clause)
    for pattern, repl in _PHRASES:
        clause = pattern.sub(repl, clause)
    return clause


# "kms" is "kill myself" unless it is a distance: a number or quantity word before it, or a
# direction or measure word after it ("5 kms", "a few kms", "kms away", "kms from here").
_KMS = re.compile(r"\bkms\b")
_KMS_DISTANCE_BEFORE = re.compile(
    r"(?:\d[\d.,]*|one|two|three|four|five|six|seven|eight|nine|ten|twenty|fifty|hundred|"
    r"hundreds|thousands|few|couple|several|some|many|more|less|of|the|those|extra|per|"
    r"few more|like \d+|about \d+|around \d+|\d+ or \d+) $"
)
_KMS_DISTANCE_AFTER = re.compile(
    r"^ (?:away|from|to|of|per|an hour|a day|a week|long|left|drive|walk|run|ride|north|south|"
    r"east|west|out|into|down|up|along|across|behind|ahead|in|on|each|every|round|today|"
    r"yesterday|this morning|uphill|hike|trail|race|loop)\b"
)


def _expand_kms(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        before = text[max(0, match.start() - 16) : match.start()]
        after = text[match.end() : match.end() + 16]
        if _KMS_DISTANCE_BEFORE.search(before) or _KMS_DISTANCE_AFTER.search(after):
            return "kilometres"
        return "kill myself"

    return _KMS.sub(repl, text)


# Before apostrophes vanish: "od'd", "o.d.'d", "od'ed" mean overdosed ("odd" is a word).
_OD_APOSTROPHE = re.compile(r"\bo\.?d\.?'(?:e?d)\b")
# Censored words ("k*ll", "s**cide"): each asterisk stands for one letter.
_CENSORED = re.compile(r"(?<![a-z*])[a-z]*\*+[a-z][a-z*]*(?![a-z*])|(?<![a-z*])[a-z]+\*+(?![a-z*])")
_CENSOR_TARGETS = (
    "kill", "killing", "myself", "suicide", "suicidal", "die", "dead", "death", "cut", "cutting",
)
_CLAUSE_BREAK = re.compile(r"[.!?;:]+(?=\s|$)|[\n\r]+|\s[-|/]\s")


def _uncensor(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        word = match.group(0)
        pattern = re.compile(word.replace("*", "[a-z]"))
        for target in _CENSOR_TARGETS:
            if pattern.fullmatch(target):
                return target
        return word

    return _CENSORED.sub(repl, text) if "*" in text else text


def canonical(text: str) -> str:
    """The text as the rules see it: canonical words, clauses joined by " | ".

    Exposed for tests and for --explain tooling; deterministic and side-effect free.
    """
    return _canonical_folded(fold(text))


def _canonical_folded(folded: str) -> str:
    folded = _uncensor(_OD_APOSTROPHE.sub("overdosed", folded))
    clauses = []
    for part in _CLAUSE_BREAK.split(folded):
        words = normalise(part).split()
        if not words:
            continue
        clause = _rewrite_phrases(" ".join(_canon_token(w) for w in words))
        if "kms" in clause:
            clause = _expand_kms(clause)
        clauses.append(clause)
    return " | ".join(clauses)


# ============================================================================================
# Rules
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
    accept: Callable[[re.Match[str]], bool] | None = None


def _rule(
    name: str,
    categories: str,
    level: str,
    pattern: str,
    *,
    negatable: bool = False,
    subject: bool = False,
    past: bool = True,
    laugh: bool = False,
    laugh_cancels: bool = False,
    urge_level: str | None = None,
    soon_level: str | None = None,
    not_before: str | None = None,
    not_after: str | None = None,
    accept: Callable[[re.Match[str]], bool] | None = None,
) -> _Rule:
    return _Rule(
        name=name,
        categories=tuple(categories.split()),
        level=level,
        pattern=re.compile(pattern),
        negatable=negatable,
        subject=subject,
        past=past,
        laugh=laugh,
        laugh_cancels=laugh_cancels,
        urge_level=urge_level,
        soon_level=soon_level,
        not_before=re.compile(not_before + r"$") if not_before else None,
        not_after=re.compile(r"^" + not_after) if not_after else None,
        accept=accept,
    )


def _enough_pills(match: re.Match[str]) -> bool:
    """A bare number must reach _MIN_PILLS; words like "a handful" or "all" always do, except
    that vague amounts ("a lot of meds") need a past-tense act ("took a lot of"), since people on
    several medications say "i take a lot of meds"."""
    qty = match.group("qty")
    if qty in _VAGUE and match.group("past") in (None, "taking"):
        return False
    if qty.isdigit():
        return int(qty) >= _MIN_PILLS
    return _NUMBER_WORDS.get(qty, _MIN_PILLS) >= _MIN_PILLS


# Words after "die" that make it an idiom or another word: "die of embarrassment", "dying to see
# you", "die my hair" (dye).
_DIE_IDIOM = (
    r" (?:of (?:embarrassment|laughter|laughing|boredom|cringe|shame|cuteness|happiness|"
    r"excitement|jealousy|envy)|laughing|my hair|her hair|his hair|my clothes|for (?:you|that|this|it)|"
    r"to (?:see|meet|know|try|go|get|hear|watch|eat|find out))\b"
)
# Media, education and titles around "suicide" (CLINICAL 2.5: quoted/media -> low).
_MEDIA_BEFORE = (
    r"\b(?:song|songs|movie|movies|film|show|series|book|article|video|documentary|podcast|"
    r"episode|lyrics|tiktok|meme|character|news|novel|poem|essay|class|lecture|training|"
    r"paper|report|research|study|play|album|story|webinar|course|presentation)"
    r"(?: [a-z]+){0,2} (?:about|on|called|named|with|where|that mentions|mentioning)(?: [a-z]+){0,2} "
)
_MEDIA_AFTER = (
    r" (?:squad|prevention|awareness|rate|rates|statistics|stats|bomber|bombers|bombing|forest|"
    r"doors|boys|research|training|month|walk|ribbon)\b"
)

_OVERDOSE_IDIOM = (
    r" (?:on (?:coffee|caffeine|sugar|candy|chocolate|cake|netflix|tv|memes|cuteness|love|feelings|drama|"
    r"sunshine|vitamin [a-z]|vitamins|pizza|cookies|carbs|anime|kdramas?|tiktok|work|studying|homework|"
    r"food|cat videos|music|christmas)|awareness|prevention|reversal|kit|kits|training|naloxone|narcan|"
    r"deaths? in|statistics|rates?|of (?:feelings|cuteness|drama|information|info))\b"
)

_RULES: tuple[_Rule, ...] = (
    # ---- suicide: direct and active (CLINICAL 2.5 MUST ESCALATE high) --------------------
    # "kill myself", "killing myself", "off myself", "end myself", "shoot myself", "hang myself".
    _rule("suicide.kill_self", "suicide", IMMINENT,
          r"\b(?:kill|kills|killing|killed|off|offing|end|ending|shoot|shooting|hang|hanging|"
          r"unalive|unaliving|drown|drowning|poison|poisoning|suffocate|gas) myself\b",
          negatable=True, laugh=True),
    # "want to die", "ready to die", "wish i could die", "should just die". Not "going to die":
    # that is how panic sounds ("i feel like im going to die").
    _rule("suicide.want_die", "suicide", IMMINENT,
          r"\b(?:want|wants|wanted|wanting|ready|i need|i just need|just want) to (?:just )?die\b"
          r"|\b(?:want|wants|wanted|ready) to (?:just )?be dead\b"
          r"|\bi should (?:just )?(?:die|be dead)\b",
          negatable=True, subject=True, laugh=True, not_after=_DIE_IDIOM),
    # "end my life", "take my own life", "end it all", "end it tonight", "thinking about ending it".
    _rule("suicide.end_life", "suicide", IMMINENT,
          r"\b(?:end|ending|ended|take|taking) (?:my|my own) life\b"
          r"|\bend(?:ing)? it all\b"
          r"|\bend(?:ing)? (?:it|everything|things) (?:tonight|today|now|right now|soon|for good|"
          r"once and for all|this time|already|forever)\b"
          r"|\b(?:want to|wanted to|going to|about to|ready to|plan to|planning to|planning on|"
          r"thinking about|thinking of|think about|thought about|should|could|just|gonna|im|"
          r"considering) (?:just )?end(?:ing)? (?:it|everything|things)\b"
          r"(?! (?:with|between|off|for (?:him|her|them|us)|early|at|on|after|before|here|there))",
          negatable=True, subject=True),
    # "suicidal", typos repaired to it ("sucidal", "$uicidal", "s u i c i d a l").
    _rule("suicide.suicidal", "suicide", IMMINENT, r"\bsuicidal\b",
          negatable=True, subject=True,
          not_before=_MEDIA_BEFORE, not_after=r" (?:character|characters|person in the|people in the)\b"),
    # Ideation about suicide: "thinking about suicide", "suicide is on my mind", "commit suicide".
    _rule("suicide.ideation", "suicide", IMMINENT,
          r"\b(?:thinking|think|thought|thoughts|considering|contemplating|talking|talks|talked|"
          r"talk|planning|plan|plans|attempt|attempted|attempting|commit|committing|committed|"
          r"want|wanted|wants|researching|googling|looking up|ready|going|need)"
          r"(?: (?:about|of|on|to|up))?" + _gap(2) + r" suicide\b"
          r"|\bsuicide (?:is|has been|keeps|kept|been)" + _gap(2) + r" (?:on my mind|in my head|"
          r"crossing my mind|sounds good|looking good|feels like)\b"
          r"|\bsuicide (?:plan|attempt|thoughts|note)\b",
          negatable=True, subject=True, not_before=_MEDIA_BEFORE,
          not_after=r" (?:prevention|awareness|squad|rates?|statistics|training|research)\b"),
    # "suicide" on its own (e.g. the whole text is "su1c1de"): possible, unless media/education.
    _rule("suicide.word", "suicide", POSSIBLE, r"\bsuicides?\b",
          negatable=True, subject=True, not_before=_MEDIA_BEFORE, not_after=_MEDIA_AFTER),
    # Algospeak "unalive" (CLINICAL 2.5): with intent it is imminent, alone it is possible.
    _rule("suicide.unalive", "suicide", IMMINENT,
          rf"\b{_INTENT}(?: just)? unalive\b|\bunalive (?:myself|me)\b",
          negatable=True, subject=True, laugh=True),
    _rule("suicide.unalive_word", "suicide", POSSIBLE, r"\bunalive\b", negatable=True, subject=True),
    # Being told to kill yourself ("kys"), or the texter using it: harassment or ideation.
    _rule("suicide.told_to", "suicide", POSSIBLE,
          r"\bkill yourself\b|\bgo die\b|\b(?:told|tell|tells|telling) me to (?:go )?die\b"),
    # ---- suicide: passive ideation (C-SSRS Q1 territory -> possible) -------------------------
    _rule("suicide.better_off", "suicide", POSSIBLE,
          r"\b(?:better|happier|easier|fine|okay|ok) (?:off )?(?:without me|if i (?:was|were|wasnt|"
          r"werent|wasnt|was not|were not|died|disappeared|never existed|killed myself)|with me gone|"
          r"dead|if im gone|when im gone|once im gone)\b"),
    _rule("suicide.not_wake", "suicide", POSSIBLE,
          r"\b(?:dont|never) want to wake up\b(?! (?:to (?!another|this life|reality|life|tomorrow|"
          r"the same)|next to|early|at \d|before))"
          r"|\b(?:hope|wish|pray|praying|hoping) (?:that )?i (?:dont|never|wont|wouldnt|didnt"
          r"|do not) wake up\b"
          r"|\b(?:sleep|bed) and (?:not|never) wake up\b"
          r"|\b(?:could|would|just|to) (?:just )?(?:not|never) wake up\b"
          r"|\bnever wake up again\b|\bnot wake up (?:tomorrow|again|ever)\b"),
    _rule("suicide.sleep_forever", "suicide", POSSIBLE,
          r"\bsleep forever\b|\beternal sleep\b|\bsleep and never\b|\bnever wake up\b"),
    _rule("suicide.no_reason", "suicide", POSSIBLE,
          r"\bno (?:reason|point|purpose) (?:to|in|of|for) (?:live|living|life|being alive|being here|"
          r"go on|going on|carry on|carrying on|keep going|keep living|existing|exist|staying alive|"
          r"being around|me)\b"
          r"|\bnothing (?:left )?to live for\b|\bnot worth living\b"
          r"|\blife (?:isnt|is not|aint|is no longer|not) worth (?:living|it)\b"
          r"|\b(?:whats|what is|whats even|wats) the point (?:of|in) (?:living|life|being alive|"
          r"going on|existing|me being here|being here|staying alive|me|anything anymore)\b"
          r"|\b(?:dont|cant) see (?:the|a|any) (?:point|reason) (?:of|in|to) (?:living|life|"
          r"being alive|going on|existing|staying|live)\b"
          r"|\blife is (?:pointless|meaningless)\b"),
    _rule("suicide.burden", "suicide", POSSIBLE,
          r"\b(?:im|i feel|feel|feel like|feeling like|being|just|always|only|am)(?! not| never)"
          r"(?: (?!not\b|never\b)[a-z]+){0,3} burden\b"
          r"|\bburden (?:to|on|for) (?:everyone|everybody|my [a-z]+|them|people|you all|the world|all)\b",
          negatable=True),
    _rule("suicide.tired_living", "suicide", POSSIBLE,
          r"\b(?:tired|sick|exhausted|done|over|finished) (?:of|with) (?:existing|living|being alive|life|"
          r"being here|breathing|this life|my life|it all|waking up|being me|fighting to stay alive"
          r"|trying to "
          r"stay alive|fighting to live|staying alive|surviving)\b"
          r"|\bdone (?:living|existing)\b|\bhate (?:being alive|existing|living|waking up)\b",
          not_after=r" (?:at|in|with) (?:home|my parents|work|school|this place)\b"),
    # "dont want to live / exist / be alive / be here anymore". "be here" needs "anymore" so
    # "i dont want to be here at this party" stays ordinary; "live" is not "live with my parents".
    _rule("suicide.not_be_here", "suicide", POSSIBLE,
          r"\b(?:dont|do not|didnt|never|not) (?:want to|wanna|wish to|feel like) (?:be alive|"
          r"exist|stay alive|keep living|keep going|be on this earth|be in this world|be born|"
          r"be me)\b"
          r"|\b(?:dont|not) want to live\b(?! (?:with|in|at|there|here|near|alone|together|on|by|"
          r"like that|somewhere|far))"
          r"|\b(?:dont|not) want to (?:be here|be around|go on)(?: [a-z]+){0,2} (?:anymore|any more|"
          r"no more|on this earth|in this world|at all|living)\b"
          r"|\b(?:dont|not) want to (?:be here|be around|go on)(?: anymore| any more)?$"
          # "i dont think i want to be alive anymore": "anymore" carries the negation itself.
          r"|\bwant to (?:be alive|live|exist|be here|be around|go on|keep going|keep living|wake up) "
          r"(?:anymore|any more)\b"),
    _rule("suicide.wish_dead", "suicide", POSSIBLE,
          r"\bwish (?:i|that i) (?:was|were|could be|would be|had been|was just|were just) (?:dead|gone|"
          r"never born)\b"
          r"|\bwish (?:i|that i) (?:was|were|had been) never born\b"
          r"|\bwish (?:i|that i) (?:wasnt|werent|was not) (?:alive|here|born|around)\b"
          r"|\bwish (?:i|that i) (?:could|would)(?: just)? (?:die|not exist|stop existing|cease to exist|"
          r"fall asleep forever)\b"),
    # "I want to disappear" is passive ideation (CLINICAL 2.5) unless it is "for a bit".
    _rule("suicide.disappear", "suicide", POSSIBLE,
          r"\b(?:want|wanted|wanna|wish i could|wish i would|going|need|just want|should"
          r"|could) (?:to )?(?:just )?"
          r"disappear\b|\bdisappear (?:forever|for good|for ever|permanently)\b",
          not_after=r" (?:for (?:a|an|the|like|some|few|couple|one|\d+)|from (?:social|the internet|"
          r"instagram|facebook|here|this (?:party|group chat|conversation))|into my (?:room|bed|book))\b"),
    _rule("suicide.if_i_died", "suicide", POSSIBLE,
          r"\bif i (?:died|was gone|were gone|was dead|were dead|wasnt here|wasnt around|werent here|"
          r"werent around|wasnt alive|disappeared forever|killed myself|ended it|was not here|"
          r"was not around)\b|\bwhen im (?:dead|gone)(?! (?:for|on|to|at|from)\b)\b"
          r"|\bafter im (?:dead|gone)(?! (?:for|on|to|at|from)\b)\b"),
    _rule("suicide.rather_dead", "suicide", POSSIBLE,
          r"\b(?:rather be dead|better off dead|rather (?:just )?die|should have died|shouldve died|"
          r"deserve to die|deserve to be dead)\b(?! than)"),
    _rule("suicide.want_it_over", "suicide", POSSIBLE,
          r"\bwant (?:it all|everything|this all|all of this|all this|my life|life|it) to (?:end|be over)\b"
          r"(?! (?:already|soon) (?:so|lol)|(?: [a-z]+)? (?:so i can|and then))"
          r"|\bwant (?:it all|everything|my life|life|all of this) to stop\b"
          r"|\bwant out of (?:this life|life|this world|here for good)\b"),
    _rule("suicide.thinking_death", "suicide", POSSIBLE,
          r"\b(?:thinking|think|thought|thoughts|dreaming|fantasi[sz]ing) (?:about|of) (?:dying|death|"
          r"being dead|not being here|not existing|not waking up|my funeral|my own funeral|"
          r"how to die|ways to die)\b", negatable=True),
    _rule("suicide.cant_go_on", "suicide", POSSIBLE,
          r"\bcant go on (?:living|anymore|any more|like this anymore|much longer)\b"
          r"|\bcant keep living\b|\bcant do life\b|\bcant live like this\b|\bcant keep going on\b"),
    # Death as the only way out: "no way out except dying", "suicide is the only answer".
    _rule("suicide.only_way_out", "suicide", POSSIBLE,
          r"\b(?:way out|escape|answer|solution|option|choice|exit)(?: [a-z]+){0,2} (?:is|except|but"
          r"|other than|"
          r"besides|left is) (?:dying|death|to die|suicide|killing myself|ending it|to end it|being dead)\b"
          r"|\b(?:dying|death|suicide|ending it) (?:is|seems like|feels like) (?:the|my) (?:only |best "
          r"|last )?"
          r"(?:answer|way out|solution|option|choice|escape)\b"),
    _rule("suicide.why_alive", "suicide", POSSIBLE,
          r"\bwhy am i (?:still )?(?:alive|here|breathing|living)\b|\bwhy (?:do|should) i (?:even )?(?:exist|"
          r"keep living|stay alive|bother living)\b|\bwhy was i (?:even )?born\b"
          r"|\b(?:made|making) (?:my )?peace with (?:it|dying|death|everything|my decision|leaving|going)\b"
          r"|\b(?:picturing|imagining|planning|planned|thinking about|dreaming about|fantasi[sz]ing about) "
          r"my (?:own )?funeral\b"),
    # "kill me" is usually hyperbole; insisting it is meant is not.
    _rule("suicide.kill_me_serious", "suicide", POSSIBLE,
          r"\bkill me\b(?: [a-z]+){0,2} (?:i mean it|im serious|im not joking|not joking|for real|seriously|"
          r"im begging)\b"),
    # Wishing a fatal accident: "wish a car would hit me", "hope the plane crashes".
    _rule("suicide.death_wish", "suicide", POSSIBLE,
          r"\b(?:wish|hope|hoping|praying|pray)(?: that)? (?:a|some|the) (?:car|bus|truck|train|plane)"
          + _gap(3) + r" (?:hit|hits|crash|crashes|kill|kills|run me|runs me|runs over me)\b"
          r"|\b(?:wish|hope|hoping)(?: that)? (?:someone|somebody|something) (?:would |will )?(?:just )?"
          r"(?:kill|shoot|hit|run over|end) me\b"
          r"|\bhope i (?:get hit|crash|die|get killed|dont make it)\b"),
    # "im scared ill do something stupid": ambiguous intent; see _categorise_regret.
    _rule("suicide.do_something", "suicide", POSSIBLE,
          r"\b(?:going to|about to|might|will|ill|id|gonna|scared|afraid|worried|want to|tempted to|"
          r"could|feel like|close to|dont trust myself not to)" + _gap(3)
          + r" do (?:something|anything) (?:stupid|dumb|drastic|crazy|permanent|i (?:will |would )?regret|"
          r"ill regret|id regret|i cant take back|bad to myself)\b",
          negatable=True),
    _rule("suicide.drink_to_death", "suicide", POSSIBLE,
          r"\b(?:drink|drinking|use|using) (?:myself|till i|until i) (?:to death|die|pass out and die)\b"),
    # A past attempt ("i attempted last month") is history: possible.
    _rule("suicide.attempt_history", "suicide", POSSIBLE,
          r"\b(?:i|ive|i have|i just|i almost|i nearly|i already) attempted\b"
          r"|\b(?:my|last|previous|first|second|third) (?:suicide )?attempts?\b(?! (?:at|to (?:bake|cook"
          r"|make|fix|get|be)))",
          negatable=True, subject=True),
    # Ambivalence about living: "idk if i want to live".
    _rule("suicide.ambivalent", "suicide", POSSIBLE,
          r"\b(?:dont know|idk|not sure|unsure|no idea) (?:if|whether|why) i (?:want to|should"
          r"|can) (?:live|keep living|"
          r"be alive|stay alive|go on living|exist|keep existing|still be here)\b"),
    # Researching a method is planning (CLINICAL 2.4 Q5: "worked out the details").
    _rule("suicide.method_research", "suicide", IMMINENT,
          r"\b(?:best|easiest|painless|quickest|fastest|quick|easy|least painful|surest|sure) (?:way|ways"
          r"|method|"
          r"methods) to (?:die|kill myself|kill yourself|end it|end my life|commit suicide|suicide"
          r"|overdose|go)\b"
          r"|\bhow (?:to|do i|can i|do you|would i) (?:kill myself|die|end my life|commit suicide"
          r"|hang myself|"
          r"overdose|end it)\b(?! (?:in (?:the game|minecraft|fortnite|roblox))|ing)"
          r"|\bhow long (?:does it|would it|will it) take to (?:die|bleed out|overdose)\b",
          negatable=True, subject=True),
    _rule("overdose.method_research", "overdose", IMMINENT,
          r"\bhow (?:many|much)(?: of)?(?: my| the"
          r"| these)? " + _PILL_WORDS + r"(?: [a-z]+){0,5} (?:to die|to overdose|"
          r"to kill|it takes|does it take|would it take|would kill|is lethal|is fatal|to od|will kill"
          r"|is too much|"
          r"to not wake up)\b"
          r"|\b(?:lethal|fatal|deadly|overdose) (?:dose|amount)\b",
          subject=True),
    # Command hallucinations: voices telling the texter to die or to hurt someone.
    _rule("suicide.voices", "suicide", IMMINENT,
          r"\bvoices? (?:are |is |keep |keeps |in my head )?(?:telling|tell|told|saying|say|says|want|wants|"
          r"command|commanding) me to (?:kill myself|die|jump|cut|end it|hurt myself|do it)\b"),
    _rule("harm_to_others.voices", "harm_to_others", IMMINENT,
          r"\bvoices? (?:are |is |keep |keeps |in my head )?(?:telling|tell|told|saying|say|says|want|wants|"
          r"command|commanding) me to (?:hurt|kill|attack|stab|shoot) (?:people|someone|somebody|him|her"
          r"|them|"
          r"everyone|my [a-z]+)\b"),
    # ---- suicide: plans, means, methods, locations (imminent) ---------------------------------
    _rule("suicide.jump", "suicide", IMMINENT,
          r"\bjump(?:ing|ed)? (?:off|from|in front of|into|onto|out of|out)(?: of)?(?: a| the| this| that"
          r"| my|"
          r" our| some)?(?: [a-z]+)? (?:bridge|building|roof|rooftop|cliff|ledge|overpass|balcony|window|"
          r"train|car|bus|truck|traffic|tracks|parking garage|garage|tower|highway|freeway)\b",
          negatable=True, subject=True),
    _rule("suicide.location", "suicide", POSSIBLE,
          r"\b(?:going|goin|go|heading|walking|driving|on my way|standing|sitting|parked|up|climbing|"
          r"climbed|at|here at|im at|im on)(?: (?:to|on|at|by|up|over))?(?: the| that| a)? (?:bridge|ledge|"
          r"train tracks|railroad tracks|tracks|cliff|cliffs|overpass|top of (?:the|a|my) (?:building|"
          r"parking garage|garage|bridge))\b",
          not_after=r" (?:club|game|party|card|cards|loan|program|course|tournament|night|of my nose|"
          r"street|road|apartments|restaurant|bar|cafe|park)\b", soon_level=IMMINENT),
    _rule("suicide.drive_into", "suicide", IMMINENT,
          r"\b(?:drive|driving|drove|crash|crashing|steer|swerve|swerving|wreck)(?: my| the)?(?: car| truck)?"
          r" (?:into|off)(?: a| the| oncoming)? (?:tree|wall|pole|traffic|bridge|cliff|river|lake|median|"
          r"truck|semi|barrier|road)\b"
          r"|\b(?:crash|wreck) (?:my|the) (?:car|truck) on purpose\b",
          negatable=True, subject=True),
    _rule("suicide.noose", "suicide", IMMINENT, r"\bnoose\b|\bhang(?:ing)? myself\b|\btie a rope\b"),
    _rule("suicide.rope", "suicide", IMMINENT,
          r"\b(?:bought|buy|buying|got|have|tied|tying|found|hid|hidden|ordered|bring|brought)"
          + _gap(2) + r" (?<!jump )rope\b",
          not_after=r" (?:for|to) (?:climbing|camping|the tent|the boat|my dog|the swing|a swing|the tire|"
          r"a hammock|the hammock|moving|towing|the gym|crossfit|work|the yard|my class)\b"
          r"|(?: [a-z]+)? (?:ladder|light|lights|toy|bracelet|course|access|swing)\b"),
    _rule("suicide.gun_loaded", "suicide", IMMINENT,
          r"\bload(?:ed|ing)? (?:a |the |my |his |her |dads |my dads )?(?:gun|pistol|rifle|revolver|shotgun|"
          r"glock|handgun)\b"
          r"|\b(?:gun|pistol|barrel|glock|revolver) (?:to|in|against|under) my (?:head|mouth|temple|chin"
          r"|chest)\b"
          r"|\bblow my (?:brains|head) out\b|\b(?:eat|put) a bullet\b|\bbullet (?:in|through) my (?:head"
          r"|brain)\b"),
    _rule("suicide.gun_access", "suicide", POSSIBLE,
          r"\b(?:bought|buy|buying|got|get|getting|have|holding|grabbed|took out|pulled out|found|"
          r"borrowed)(?: a| the| my| dads| my dads| a loaded| a real| his| her)? (?:gun|pistol|rifle"
          r"|revolver|"
          r"shotgun|handgun|glock)\b",
          negatable=True,
          not_after=r" (?:for (?:the range|hunting|hunting season|work|my job)|license|permit|control|laws?|"
          r"rights|show|range|safety|violence|cleaned|locked up|in the safe|to (?:your|their|his|her"
          r"|our) heads?)\b",
          soon_level=IMMINENT),
    # ---- farewells (CLINICAL 2.5: "Just sent goodbyes to my children") ----------------------------
    _rule("suicide.farewell", "suicide", IMMINENT,
          r"\b(?:sent|send|sending|said|saying|wrote|writing|written|texted|texting|left|leaving|posted"
          r"|posting|"
          r"finished)(?: out)?(?: my| all my| the| a| some| his| her| their)? (?:goodbyes|good byes"
          r"|goodbye (?:letters?|"
          r"notes?|texts?|messages?|videos?)|last (?:letters?|messages?|texts?|words)|final (?:letters?|"
          r"messages?|texts?|words)|suicide note|note for my)\b"
          r"|\bsuicide note\b"
          r"|\bthis is (?:my )?(?:goodbye|good bye|the end for me|my last (?:text|message))\b"
          r"|\bmy (?:last|final) (?:text|message|goodbye|words)\b"
          r"|\b(?:goodbye|good bye|bye) (?:everyone|everybody|forever|world|for good|cruel world|"
          r"for real this time|for the last time)\b"
          r"|\b(?:goodnight|good night) forever\b|\bfinal goodbye\b|\blast goodbye\b"
          r"|\b(?:you|yall|you all|everyone) (?:wont|will not|will never|never) (?:hear from|see|have to "
          r"deal with|have to worry about) me again\b"
          r"|\b(?:wont|will not|not going to|never going to) be (?:around|here|alive) (?:much longer|anymore|"
          r"any more|after tonight|for long|for much longer)\b"
          r"|\bby the time (?:you|someone|anyone) (?:read|reads|see|sees|get|gets) this\b"
          r"|\b(?:it was|its been) nice knowing (?:you|yall|everyone|you all)\b"
          r"|\bpeace out (?:yall|everyone|world|forever|for good)\b|\bsee you on the other side\b"
          r"|\b(?:wrote|written|left|finished|writing) my (?:last |final )?(?:note|letter)\b(?! (?:to|for) "
          r"(?:my |the )?(?:teacher|boss|landlord|doctor|professor|counselor|therapist|lawyer|judge|court))"
          r"|\b(?:wrote|written|left|writing) (?:letters|notes) (?:for|to) (?:everyone|everybody"
          r"|my family|my kids|"
          r"all of you|each of)\b"
          r"|\b(?:saying|said|say|going to say) (?:my )?goodbyes? to (?:everyone|everybody|my (?:kids"
          r"|family|mom|dad|"
          r"friends|children|son|daughter)|you all|yall|the world|this world|you guys)\b",
          subject=True,
          not_after=r"(?: [a-z]+){0,4} (?:see you|see ya|talk soon|ttyl|next week|next time|have a good|"
          r"have a great|happy holidays|back soon|after the break)\b"),
    _rule("suicide.farewell_care", "suicide", IMMINENT,
          r"\b(?:take care of|look after|feed|watch) (?:my|the) (?:dogs?|cats?|kids?|children|babies|baby|"
          r"son|daughter|pets?|puppy|kitten|boys|girls|family|mom|bird|fish|plants) (?:for me|when im gone|"
          r"after im gone|once im gone|forever)\b"),
    _rule("suicide.give_away", "suicide", POSSIBLE,
          r"\b(?:gave|giving|give|given) away (?:all )?(?:of )?my (?:stuff|things|belongings|possessions|cat|"
          r"dog|pets?|clothes|favorite [a-z]+|guitar|games|jewelry|plants)\b"
          r"|\bgave (?:my|all my) (?:stuff|things|belongings|possessions|cat|dog|pets?|clothes) away\b"
          r"|\b(?:gave|giving|given) away (?:everything|all my stuff|all my things)\b",
          negatable=True),
    # ---- self-harm -----------------------------------------------------------------------------
    # "cut myself", "slit my wrists", "carve my arm": an act unless an urge word comes first.
    _rule("self_harm.cut_self", "self_harm", IMMINENT,
          r"\b(?:cut|cuts|cutting|slit|slitting|slice|slicing|carve|carving|carved|sliced)(?: up| into)? "
          r"(?:myself|my (?:wrists?|arms?|thighs?|legs?|skin|stomach|belly|hips?|forearms?|body|self"
          r"|veins?))\b",
          negatable=True, subject=True, urge_level=POSSIBLE),
    # "i cut again", "been cutting again", "started cutting", "relapsed and cut".
    _rule("self_harm.cut_again", "self_harm", IMMINENT,
          r"\b(?:i|ive|i have|i just|just|been|started|start|starting|keep|kept|back to|went back to|"
          r"relapsed and|relapsed|im)(?: (?!got |get |was |getting |were |had )[a-z]+)? (?:cut|cutting"
          r"|cutted)"
          r" (?:again|tonight|today|last night|this morning|so deep|too deep|deep|bad|myself)\b"
          r"|\bcutting again\b|\bcut too deep\b|(?:^|\| )(?:i|ive|i just) cut(?= \||$)",
          negatable=True, subject=True, urge_level=POSSIBLE),
    # Urges: "urge to cut", "want to cut", "cant stop thinking about cutting", "sh urges".
    _rule("self_harm.urge", "self_harm", POSSIBLE,
          rf"\b{_URGE} (?:cut|cutting|sh|self harm|self harming|relapse on sh|relapse on self harm)\b"
          r"(?! (?:my|the|your|his|her|their|our|its|a|an|some|back|down|off|out|up|ties|class|carbs"
          r"|sugar|him|"
          r"them|corners|loose|school|work|hair|in|into|on|it|this|that|these|those|through|across|short|"
          r"people|contact|costs?|in line|coupons)\b)",
          negatable=True, subject=True),
    # History of self-harm ("i used to cut"): the past adjustment makes it possible, not imminent.
    _rule("self_harm.history", "self_harm", IMMINENT,
          r"\b(?:used to|use to|would always|started|kept)(?: [a-z]+)? (?:cut|cutting|self harm|sh"
          r"|burn myself|"
          r"hurt myself)\b(?! (?:my|the|your|his|her|a|some|back|down|off|out|up|ties|class|carbs|sugar|him|"
          r"them|corners|loose|school|work|hair|into|it|this|that|people|contact|costs?|coupons)\b)",
          negatable=True, subject=True),
    _rule("self_harm.hurt_self", "self_harm", POSSIBLE,
          r"\b(?:hurt|hurts|hurting|harm|harming|harmed|burn|burning|burned|burnt|hit|hitting|punch|punching|"
          r"scratch|scratching|scratched|bite|biting|starve|starving|choke|choking|strangle|strangling|"
          r"bruise|bruising|punish|punishing|beat|beating|injure|injuring|injured|bang|banging|mutilate|"
          r"mutilating) myself\b",
          negatable=True, subject=True, laugh=True,
          not_after=r" (?:at (?:the |work|the gym|practice)|lifting|playing|working out|skating|running|"
          r"skiing|falling|on the stove|on the oven|on the pan|with the iron|cooking|making|at work|"
          r"in the gym|by accident|accidentally|laughing|out|up|over it|in the kitchen)\b"),
    _rule("self_harm.act_again", "self_harm", IMMINENT,
          r"\b(?:hurt|harmed|burned|burnt|cut|hit|punched|scratched|bit|starved|choked|injured|punished|"
          r"mutilated) myself (?:again|tonight|last night|today|this morning|on purpose|so bad|badly|deep)\b"
          r"|\bon purpose\b(?= .*\b(?:hurt|burn|cut|bleed|bled)\b)",
          negatable=True, subject=True, urge_level=POSSIBLE),
    _rule("self_harm.self_harm", "self_harm", POSSIBLE,
          r"\bself harm(?:ing|ed)?\b|\bself injury\b|\bnssi\b|\bsh (?:urges?|again|tonight|last night|"
          r"relapse|relapsed|thoughts|cravings?|is bad|is back|so bad)\b|\bshd\b",
          negatable=True, subject=True),
    _rule("self_harm.relapse", "self_harm", IMMINENT,
          r"\b(?:relapsed|relapse|did|done|been|started|went back to|back to|resorted to)(?: on| with)?"
          r"(?: [a-z]+){0,1} (?:self harm(?:ing)?|sh|cutting)\b(?! (?:urges?|thoughts|my|the|back|down|"
          r"out|it|class|carbs|ties|hair|coupons|costs?|corners|him|her|them|people|off|up|in|into)\b)"
          r"|\bsh (?:relapse|relapsed|again|last night|tonight)\b",
          negatable=True, subject=True),
    _rule("self_harm.bleed", "self_harm", POSSIBLE,
          r"\b(?:till|until|til|so) (?:it|they|i|my [a-z]+) (?:bleeds?|bled|bleeding|bleed out)\b"
          r"|\bbang(?:ing)? my head (?:against|on|into) (?:the |a )?wall\b"
          r"|\b(?:razor|razors|blade|blades|box cutter|scissors|knife|glass)(?: [a-z]+){0,2} "
          r"(?:on|to|against|into|across) my (?:arms?|wrists?|skin|thighs?|legs?|stomach)\b"
          r"|\buse (?:it|them|that|this|the knife|the razor|the blade) on myself\b"
          r"|\b(?:covered in|full of) (?:cuts|fresh cuts|burns|scratches)\b"
          r"|\b(?:fresh |new |deep )?cuts (?:on|all over) my (?:arms?|wrists?|thighs?|legs?|stomach|hips?"
          r"|body)\b",
          negatable=True),
    # ---- overdose and poisoning ---------------------------------------------------------------
    # "took 20 tylenol", "swallowed a whole bottle of my meds", "gonna take all my pills".
    _rule("overdose.took_many", "overdose", IMMINENT,
          r"\b(?:(?P<past>took|taken|swallowed|popped|downed|ate|chugged|snorted|injected|shot up|"
          r"overdosed on|taking)|(?:going to|about to|want to|ready to|plan to|planning to|will|ill|"
          r"thinking about|thinking of|tempted to|should|could)(?: just)? (?:take|taking|swallow|"
          r"swallowing|pop|popping|down|eat|overdose on))"
          r"(?: like| about| around| over| maybe| almost| nearly| at least| like maybe| just)? " + _QUANTITY
          + r"(?: of)?(?: my| the| his| her| these| those| their| moms| dads)?(?: [a-z]+)? " + _PILL_WORDS
          + r"\b",
          negatable=True, subject=True, accept=_enough_pills,
          not_after=r" (?:this morning|today|on time|like (?:usual|normal|i should|im supposed to)|"
          r"for the day|already|a day|every|each|per|daily|as prescribed|with food|at night"
          r"|in the morning)\b"),
    _rule("overdose.cabinet", "overdose", IMMINENT,
          r"\btook (?:everything|all the (?:pills|meds)|all|what was) (?:in|from) (?:the|my|our) "
          r"(?:medicine |bathroom )?(?:cabinet|drawer|bottle)\b"
          r"|\b(?:took|swallowed|taken) (?:my|the|a|his|her) (?:whole|entire|full) (?:prescription|bottle"
          r"|pack|"
          r"supply|script|months supply|blister pack)\b",
          subject=True),
    _rule("overdose.stockpile", "overdose", IMMINENT,
          r"\b(?:saved|saving|stockpil[a-z]*|hoard[a-z]*|stash(?:ed|ing)?|counted|counting|collecting|"
          r"collected)(?: up)?(?: [a-z]+){0,3} " + _PILL_WORDS + r"\b"
          r"|\b" + _PILL_WORDS + r"(?: [a-z]+){0,2} (?:saved|saved up|stashed|ready|counted|lined up"
                                 r"|next to me|"
          r"in front of me|in my hand|right here|on the table|on my nightstand|in my pocket|hidden)\b"
          r"|\b(?:have|got|bought|collected) enough " + _PILL_WORDS + r"\b",
          negatable=True, subject=True,
          not_after=r" (?:for (?:the trip|vacation|the week|the month|travel)|in (?:my|the) (?:bag"
                    r"|purse))\b"),
    # CTL: "800mg" with a count ("800mg x10") is among the terms riskier than "suicide".
    _rule("overdose.dose_count", "overdose", IMMINENT,
          r"\b\d{2,4} ?mg ?x ?\d{1,3}\b|\b\d{1,3} ?x ?\d{2,4} ?mg\b|\bx ?\d{1,3} \d{2,4} ?mg\b"),
    _rule("overdose.too_much", "overdose", IMMINENT,
          r"\b(?:took|taken|swallowed|snorted|injected|shot up|popped|used)(?: way)? "
          r"too (?:much|many)\b(?! (?:time|on|of a|off|risk|damage|sun|coffee|caffeine|sugar|credit|shifts?|"
          r"classes|hours|work|vacation|days|breaks?|naps?|tums|vitamin|fiber|laxative|selfies?|"
          r"pictures|photos)\b)",
          subject=True,
          not_before=r"\b(?:i|you|we|they|he|she) (?:always|usually) "),
    # "i overdosed", "i think im overdosing", "want to overdose", "he just overdosed": imminent.
    _rule("overdose.overdose", "overdose", IMMINENT,
          r"\b(?:i|im|ive|i just|i think i|think i|i might have|might have|i probably|about to|going to|"
          r"want to|ready to|trying to|plan to|planning to|just|hes|shes|theyre|is|currently|"
          r"think (?:he|she|they)|(?:he|she|they) (?:just|might have))(?: [a-z]+){0,2} "
          r"(?:overdose|overdosed|overdosing)\b"
          # "overdosing" opening a clause or with "right now" is an overdose in progress.
          r"|(?:^|\| )overdosing\b|\boverdosing (?:right now|now)\b",
          negatable=True, subject=True, laugh=True, not_after=_OVERDOSE_IDIOM),
    # "overdose" otherwise (someone else's, or the noun): possible.
    _rule("overdose.word", "overdose", POSSIBLE, r"\b(?:overdose|overdosed|overdosing|overdoses)\b",
          negatable=True, subject=True, not_after=_OVERDOSE_IDIOM,
          not_before=r"(?:\b(?:narcan|naloxone|awareness|prevention|training|musical|sugar|caffeine|cuteness)"
          r"(?: [a-z]+){0,3} |" + _MEDIA_BEFORE + ")"),
    _rule("overdose.poison", "overdose", IMMINENT,
          r"\b(?:drink|drinking|drank|swallow|swallowed|chug|chugged|ate|eat|eating|take|took|mix|mixing|"
          r"inject|injected)(?: some| the| a| a bottle of| a cup of| a glass of"
          r"| all the)? " + _POISON + r"\b",
          negatable=True, subject=True),
    # Benzodiazepines or opioids with alcohol: a lethal mix; on its own a possible overdose.
    _rule("overdose.mixing", "overdose", POSSIBLE,
          r"\b(?:xanax|bars|benzos?|klonopin|valium|ativan|oxy|oxys|percs?|opioids?|opiates|fentanyl|fent|"
          r"heroin|methadone|sleeping pills|ambien|lean)(?: [a-z]+){0,5} (?:and|with|plus|on top of) "
          r"(?:[a-z]+ ){0,3}(?:alcohol|drinking|drank|vodka|wine|beer|liquor|booze|whiskey|tequila|shots|"
          r"a bottle|a fifth|a handle)\b"
          r"|\b(?:drinking|drank|drunk|alcohol|vodka|wine|liquor|booze|whiskey)(?: [a-z]+){0,5} (?:and|with|"
          r"plus|on top of) (?:[a-z]+ ){0,3}(?:xanax|bars|benzos?|klonopin|valium|ativan|oxy|percs?|"
          r"fentanyl|fent|heroin|sleeping pills|ambien)\b"
          r"|\b(?:drank|drunk|wasted|drinking)(?: [a-z]+){0,6} (?:and|then|plus|now) (?:i )?(?:took|popped|"
          r"swallowed) (?:my|all my|some|the|a bunch of|a few|extra) " + _PILL_WORDS + r"\b",
          subject=True),
    # ---- someone else at risk (CLINICAL 2.5: "my friend says she wants to kill herself") ------
    _rule("third_party.reflexive", "third_party", POSSIBLE,
          r"\b(?:kill|kills|killing|killed|hurt|hurts|hurting|cut|cuts|cutting|harm|harming|hang|hanging|"
          r"hanged|hung|shoot|shot|shooting|off|offed|unalive|unalived|end|ending|drown|drowned|overdose|"
          r"overdosed|poison|poisoned|starve|starving|burn|burning|burned) (?:himself|herself|themselves|"
          r"themself|theirself|theirselves)\b"
          r"|\b(?:end|ending|ended|take|taking|took) (?:his|her|their) (?:own )?life\b",
          negatable=True,
          not_after=r" (?:at (?:the |work|the gym|practice)|lifting|playing|working out|skating|running|"
          r"skiing|falling|on the stove|cooking|at work|in the gym|by accident|accidentally|laughing|out|"
          r"up|over it|in the kitchen|at football|at soccer|at basketball)\b"),
    # ---- medical emergencies (IOP-specific, CLINICAL 2.5) ------------------------------------
    _rule("medical.cant_feel", "medical", IMMINENT,
          r"\bcant (?:feel|move) my (?:legs?|arms?|feet|hands?|face|body|left side|right side|left|right|"
          r"fingers|toes|lips|tongue)\b"
          r"|\b(?:face is|face) drooping\b|\bslurr(?:ing|ed) (?:my )?(?:words|speech)\b",
          subject=True),
    _rule("medical.seizure", "medical", IMMINENT,
          r"\b(?:seizure|seizures|seizing|convuls[a-z]*|having a fit|having fits)\b",
          subject=True,
          not_after=r" (?:meds|medication|medicine|disorder|med|pills|free|history|threshold|"
          r"precautions|risk|dog|alert)\b",
          not_before=r"\b(?:history of|no|hasnt had a|havent had a|epilepsy and|prone to)(?: [a-z]+)? "),
    _rule("medical.not_breathing", "medical", IMMINENT,
          r"\b(?:isnt|is not|not|stopped|wont|barely|hardly) breathing\b(?! (?:right|properly|well|normally|"
          r"slow|deep|through|in|into|out))"
          r"|\b(?:cant|wont|couldnt) wake (?:him|her|them|my [a-z]+)(?: up)?\b|\b(?:cant"
          r"|couldnt) wake [a-z]+ up\b"
          r"|\b(?:is|hes|shes|theyre|are|was|found (?:him|her|them|my [a-z]+)) unconscious\b"
          r"|\b(?:call|calling|called|need|needs) (?:911|an ambulance|the ambulance|ems|paramedics)\b"
          r"|\bunresponsive\b"
          r"|\b(?:isnt|is not|hes not|shes not|theyre not|arent|and not|still not|completely not) "
          r"(?:responding|moving)\b(?! (?:to|than|lately|as|well|much|on|at|in))"
          r"|\b(?:lips|face|skin|fingers|nails|fingertips) (?:are |is |look |looks )?(?:turning |going "
          r"|gone |"
          r"went |getting )?(?:blue|purple|grey|gray)\b"
          r"|\bthroat (?:is )?(?:closing|swelling|closing up)\b",
          subject=True),
    _rule("medical.wont_wake", "medical", IMMINENT,
          r"\b(?!(?:i|you|we|u) )[a-z]+ (?:wont|will not|doesnt|isnt) (?:wake up|waking up)\b"
          r"(?! (?:for|in|on|early|until|till|before|when|at|lol|me|him|her|them|the))",
          subject=True),
    _rule("medical.bleeding", "medical", IMMINENT,
          r"\b(?:cant|wont|cannot|couldnt) stop (?:the |it from )?bleeding\b|\bwont stop bleeding\b"
          r"|\bbleeding (?:a lot|so much|heavily|badly|everywhere|really bad|so bad|through)\b"
          r"|\blost (?:a lot of|so much) blood\b|\bbleeding out\b|\bblood (?:everywhere|wont stop)\b",
          subject=True, negatable=True,
          not_after=r" (?:gums|nose|from my nose|period|on my period)\b"),
    _rule("medical.heart_attack", "medical", IMMINENT,
          r"\b(?:having|think (?:its|it is|im having|im|i am having)|this is) "
          r"(?:a )?(?:heart attack|stroke)\b",
          subject=True,
          not_before=r"\b(?:feel|feels|felt|feeling) like(?: [a-z]+){0,3} |\blike im "),
    _rule("medical.delirium_tremens", "medical", IMMINENT, r"\b(?:dts|delirium tremens|the dts)\b"),
)

_PLAN = re.compile(r"\b(?:have|made|got|making|working on|figured out|came up with|ive got) (?:a |the "
                   r"|my )?plan\b")

# Two cues that only count together ("chest pain" + "cant breathe"), anywhere in the text.
_COMBOS: tuple[tuple[str, tuple[str, ...], str, re.Pattern[str], re.Pattern[str]], ...] = (
    # Chest pain with breathlessness, arm/jaw pain or fainting: call 911, not a breathing skill.
    ("medical.chest_pain", ("medical",), IMMINENT,
     re.compile(r"\bchest (?:pain|pains|hurts|is hurting|hurting|pressure|is tight|feels tight|tightness|"
                r"feels heavy|is heavy|is crushing|crushing|is killing me)\b|\bheart attack\b"),
     re.compile(r"\b(?:cant|can barely|cannot) breathe\b|\bcant catch my breath\b|\bshort of breath\b|"
                r"\b(?:left )?arm (?:hurts|is numb|numb|tingling|pain|is tingling|is killing me|aches)\b|"
                r"\bjaw (?:hurts|pain|aches)\b|\bpass(?:ing)? out\b|\bpassed out\b|\bfaint(?:ed|ing)?\b|"
                r"\bthrowing up\b|\bvomit[a-z]*\b|\bcold sweat\b")),
    # Withdrawal with hallucinations, seizures, confusion: alcohol/benzo withdrawal can kill.
    ("medical.withdrawal", ("medical",), IMMINENT,
     re.compile(r"\b(?:withdrawals?|withdrawing|detox|detoxing|coming off|kicking|dope sick|dopesick|"
                r"sick from not drinking)\b"),
     re.compile(r"\b(?:seeing things|hearing things|hallucinat[a-z]*|seizures?|seizing|confused|"
                r"dont know where i am|bugs crawling|cant stop shaking|shaking so bad|tremors so bad|"
                r"heart (?:is )?(?:racing|pounding) so)\b")),
    ("medical.withdrawal_bad", ("medical",), POSSIBLE,
     re.compile(r"\b(?:withdrawals?|withdrawing|detox|detoxing|dope sick|dopesick)\b"),
     re.compile(r"\b(?:shaking|shakes|tremors?|sweating|throwing up|vomiting|really bad|so bad|super bad|"
                r"worst|unbearable|cant handle)\b(?! (?:but|lol))")),
    # A plan together with means is imminent (CTL: desire, plan, means, timeframe).
    ("suicide.plan_means", ("suicide", "overdose"), IMMINENT, _PLAN,
     re.compile(r"\b(?:pills|meds|overdose|bleach|poison|tylenol|xanax|sleeping pills)\b")),
    ("suicide.plan_means", ("suicide",), IMMINENT, _PLAN,
     re.compile(r"\b(?:rope|noose|gun|bridge|knife|razor|blade|ledge|tracks|building|roof|car)\b")),
    # Pills (or "something") taken and a body warning sign: a possible overdose.
    ("overdose.took_with_symptoms", ("overdose",), POSSIBLE,
     re.compile(r"\b(?:took|taking|taken|after|swallowed|popped|snorted|used)\b(?: [a-z]+){0,4} "
                r"(?:" + _PILL_NAMES + r"|something|some stuff|too much)\b"),
     re.compile(r"\b(?:throwing up|vomiting|puking|cant stop shaking|heart (?:is )?(?:racing|pounding"
                r"|beating "
                r"(?:really |so )?(?:weird|fast|slow|funny))|chest hurts|chest pain|cant breathe"
                r"|passing out|pass out|"
                r"dizzy|cant stay awake|cant see straight|seizure|numb|cant feel|drank too much"
                r"|drinking)\b")),
    ("suicide.farewell_love_sorry", ("suicide",), IMMINENT,
     re.compile(r"\btell (?:my )?(?:[a-z]+ ){0,2}i (?:love|loved) (?:her|him|them|you|yall|everyone|all)\b"),
     re.compile(r"\b(?:sorry|goodbye|bye|forgive me|gone|for me|when im|after im|last)\b")),
    # Safeguarding: a minor reporting sexual contact (the BBC Woebot test case, CLINICAL 2.3).
    ("abuse.minor", ("abuse",), IMMINENT,
     re.compile(r"\bim (?:1[0-7]|[5-9]|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen)\b"),
     re.compile(r"\b(?:sex|sexual|touch(?:es|ed|ing)? me|nudes|naked|pics of me|undress|his room at night|"
                r"(?:makes|made) me do (?:stuff|things)|forces me|forced me)\b")),
)

# Abuse and harm to others: subjects and targets matter more than words, so they get their own
# table with the same _Rule machinery.
_PEOPLE_RULES: tuple[_Rule, ...] = (
    # "my partner hit me", "he choked me", "my dad hits me". Not "hit me up", "beat me at uno".
    _rule("abuse.violence", "abuse", IMMINENT,
          rf"\b{_AGGRESSOR}(?: [a-z]+){{0,5}} (?:hit|hits|hitting|beat|beats|beating|beat up|punched|punches|"
          r"punching|slapped|slaps|slapping|kicked|kicks|kicking|choked|chokes|choking|strangled|"
          r"strangles|strangling|shoved|shoves|pushed|pushes|threw|throws|dragged|drags|grabbed|grabs|"
          r"pinned|burned|bit|stabbed|raped|rapes|molested|molests|assaulted|assaults|attacked|attacks|"
          r"abused|abuses|abusing|smacked|smacks|hurts|hurting|tied up|locked|locks|suffocated) me\b",
          not_after=r" (?:up|back|off|with (?:the|a|this|that) (?:news|question|text|truth|bill)|"
          r"with (?:a|the|her|his) (?:pillow|ball|snowball|water balloon|toy|nerf|joke|towel)|at|in (?:a|the)"
          r" (?:game|race)|to|out|away|into (?:doing|applying|going)|over the edge|a little|emotionally|"
          r"by accident|accidentally|when (?:he|she) said|with (?:his|her) words|feelings)\b"),
    _rule("abuse.strangled", "abuse", IMMINENT,
          r"\b(?:hands?|arms?|belt|rope|cord|fingers) (?:around|on|round|against) my (?:neck|throat)\b"
          r"|\b(?:choked|strangled) (?:me )?(?:out|until|till)\b"),
    _rule("abuse.violence_passive", "abuse", IMMINENT,
          r"(?:\b(?:i got|i was|i been|ive been|im being|i keep getting|i just got|been getting)|(?:^"
          r"|\| )got) "
          r"(?:hit|beat|beaten|beat up|"
          r"punched|slapped|choked|strangled|raped|assaulted|molested|jumped|stabbed|attacked|abused|"
          r"sexually assaulted|sexually abused|trafficked)\b",
          not_after=r" (?:by (?:a|the) (?:car|bus|truck|ball|bike|wave|door|bug|flu|cold|virus)|with (?:a"
                    r"|the) "
          r"(?:flu|cold|virus|bill)|at (?:work|cards|chess)|up on)\b"),
    _rule("abuse.sexual", "abuse", IMMINENT,
          r"\b(?:raped|sexually assaulted|molested|sexually abused)\b|\bforced (?:me )?to have sex\b"
          r"|\b(?:makes|made|forces|forced|pressures|pressured|keeps making|tries to make) me "
          r"(?:have sex|touch (?:him|her|them)|send (?:pics|nudes|photos)|undress|sleep with|perform|"
          r"watch porn)\b"
          rf"|\b{_AGGRESSOR}(?: [a-z]+)? (?:makes|made|forces|forced) me do (?:stuff|things|it)"
          r" (?:i dont|i didnt|i do not)\b"
          rf"|\b{_AGGRESSOR}(?: [a-z]+)? (?:touches|touched|keeps touching|is touching|tries to touch|"
          r"tried to touch|touching) me\b(?! (?:on (?:the|my) (?:shoulder|arm|back|hand|head)|gently|"
          r"deeply|emotionally))",
          negatable=True),
    # Threats: "he said he will kill me", "she threatened to hurt me".
    _rule("abuse.threat", "abuse", IMMINENT,
          rf"\b{_AGGRESSOR}(?: [a-z]+){{0,2}} (?:said|says|told me|tells me|threatened|threatens|threatening|"
          r"swore|swears|keeps saying|texted|texts|tried to|trying to|is trying to|wants to)"
          r"(?: [a-z]+){0,4} (?:kill|hurt|shoot|stab|strangle|choke|beat|murder|end|rape) me\b",
          not_after=r" (?:lol|haha|lmao|with (?:kindness|boredom|his jokes|her jokes))\b"),
    # "he is going to kill me". Family "is gonna kill me when she sees" is an idiom.
    _rule("abuse.threat_future", "abuse", IMMINENT,
          rf"\b{_AGGRESSOR}(?: is| s| will| would| might|ll)?(?: [a-z]+)? (?:going to|gonna|will|might|"
          r"could|would|is going to|is gonna) (?:really |actually |literally )?(?:kill|hurt|shoot|stab|"
          r"strangle|choke|beat|murder|rape) me\b|\b(?:hell|shell|theyll) (?:kill|hurt|shoot|stab|choke"
          r"|beat) me\b",
          not_after=r" (?:when (?:he|she|they) (?:sees|see|finds out|find out|hears|hear|gets|get|notices)|"
          r"if (?:he|she|they) (?:sees|see|finds out|find out|hears|hear|notices)|"
          r"if (?:im|i am|i dont|i forget|i miss|i fail|i lose|i break|i spend|i eat|i get (?:a|another)|"
          r"i come home late|i wake)|lol|haha|lmao|for (?:this|"
          r"that|being late|eating|forgetting|not)|with (?:kindness|jokes))\b", laugh_cancels=True),
    # Fear of a person: "im scared he will hurt me", "afraid to go home", "not safe at home".
    _rule("abuse.fear", "abuse", IMMINENT,
          r"\b(?:scared|afraid|terrified|frightened|fear|worried)(?: that)?(?: [a-z]+){0,3} (?:will"
          r"|is going to|"
          r"gonna|going to|might|would|is gonna|ll|hell|shell|theyll|s going to)(?: [a-z]+){0,2} "
          r"(?:hurt|kill|hit|beat|rape|shoot|stab|choke|strangle|attack) me\b"
          r"|\b(?:scared|afraid|terrified|frightened)(?: [a-z]+){0,3} (?:hurt|kill|hit|beat|rape|shoot|stab|"
          r"choke|strangle|attack) me\b"),
    _rule("abuse.afraid_of", "abuse", POSSIBLE,
          r"\b(?:afraid|scared|terrified|frightened) of (?:my )?(?:partner|boyfriend|husband|wife"
          r"|girlfriend|ex|"
          r"ex husband|ex boyfriend|stepdad|step dad|dad|father|stepmom|mom|mother|him|her|them)\b"
          r"(?! (?:judg[a-z]+|reaction|opinion|leaving|dying|losing|getting|being|finding|knowing|noticing))",
          negatable=True),
    # Violence against someone at home ("my dad beats my mom"): the texter lives with it.
    _rule("abuse.household", "abuse", IMMINENT,
          rf"\b{_AGGRESSOR}(?: [a-z]+){{0,2}} (?:beats|beat|hits|hit|is hitting|is beating|punched|chokes"
          rf"|choked|"
          r"strangled|abuses|abused|attacked|hurts|is hurting|stabbed|threatened) (?:my (?:mom|mother|sister|"
          r"brother|kids?|son|daughter|baby|siblings|little [a-z]+)|her|them)\b(?! (?:at|in|up|to|back)\b)"),
    _rule("abuse.unsafe_home", "abuse", POSSIBLE,
          r"\b(?:scared|afraid|terrified|too scared|dont want) (?:to go|going|of going) (?:back )?home\b"
          r"|\b(?:not safe|unsafe|dont feel safe|never safe|cant be safe) (?:at home|in my home|in my house|"
          r"here|with (?:him|her|them|my [a-z]+)|around (?:him|her|them|my [a-z]+))\b"
          r"|\b(?:locked me in|wont let me leave|took my phone and|hiding from (?:him|her|my [a-z]+))\b"),
    # Harm to others with intent ("im going to hurt my mom", "going to kill him") is imminent;
    # wishes and maybes ("i want to stab my roommate", "i might hurt someone") are possible.
    # "i could kill him" is left out on purpose: an anger idiom (module docstring).
    _rule("harm_to_others.intent", "harm_to_others", IMMINENT,
          r"\b(?:ill|im going to|going to|about to|planning to|plan to|planning on|ready to|gonna|"
          r"swear ill|im finna|will|im gonna)(?: really| just| fucking| literally| actually| seriously| "
          r"honestly| probably| definitely| go| snap and| lose it and| lose control and| end up)? (?:kill"
          r"|hurt|stab|shoot|strangle|choke|murder|beat up|"
          r"beat the shit out of|beat the crap out of|attack|run over|poison|punch|slit|bash)"
          rf" {_TARGET}\b",
          negatable=True, subject=True, laugh=True,
          not_after=r" (?:in (?:the game|fortnite|cod|chess|an argument)|at (?:chess|cards|uno|pool"
                    r"|the game)|"
          r"with kindness|with (?:my )?(?:jokes|kindness)|when (?:he|she|they) (?:sees|finds out)|feelings|"
          r"chances|career|business|reputation|ego|pride)\b"),
    _rule("harm_to_others.wish", "harm_to_others", POSSIBLE,
          r"\b(?:want to|wanted to|wanting to|might|feel like|thinking about|thinking of|tempted to|"
          r"wish i could|urge to|urges to|fantasi[sz]ing about|scared ill|afraid ill|scared i will|"
          r"afraid i will|scared im going to|afraid im going to)(?: really| just| fucking| literally"
          r"| actually)? "
          r"(?:kill|killing|hurt|hurting|stab|stabbing|shoot|shooting|strangle|strangling|choke|choking|"
          r"murder|murdering|beat up|attack|attacking|poison|poisoning)"
          rf" {_TARGET}\b",
          negatable=True, subject=True, laugh=True,
          not_after=r" (?:in (?:the game|fortnite|cod|chess)|at (?:chess|cards|uno|pool))\b"),
    _rule("harm_to_others.weapon", "harm_to_others", IMMINENT,
          r"\b(?:bringing|bring|taking|take|got|grabbed|loaded)(?: [a-z]+)? (?:a |my |the )?(?:gun|knife"
          r"|pistol|"
          r"rifle|bat) (?:to (?:school|work|his|her|their|the party|my [a-z]+)|for (?:him|her|them))\b"),
)

_ALL_RULES: tuple[_Rule, ...] = _RULES + _PEOPLE_RULES

# ============================================================================================
# Adjustments: negation, subject, past, laughter
# ============================================================================================

_NEGATORS = frozenset(
    {"not", "never", "no", "dont", "doesnt", "didnt", "wont", "wouldnt", "isnt", "aint", "arent",
     "wasnt", "havent", "hasnt", "nor", "hardly", "shouldnt", "neither"}
)
# Words that may stand between a negator and the negated phrase ("im not going to kill myself",
# "no thoughts of suicide"). Anything else ("i cant stop thinking about ...", "not like i ...")
# breaks the scope, so hedges and double negatives do not cancel anything.
_NEGATION_FILLERS = frozenset(
    {"am", "was", "be", "being", "been", "really", "even", "ever",
     "actually", "currently", "going", "to", "want", "plan", "planning", "trying", "try", "thinking",
     "think", "thought", "thoughts", "about", "of", "have", "had", "feel", "feeling", "a", "any",
     "at", "all", "do", "would", "will", "seriously", "literally", "intend", "intending",
     "intention", "so", "the", "get", "getting", "gonna", "gon", "on", "wanna",
     "that", "therefore", "having", "these", "those", "honestly"}
)
_FIRST_PERSON = frozenset({"i", "im", "ive", "id", "ill", "me", "my", "myself", "mine"})
_THIRD_PERSON = frozenset(
    {"he", "she", "they", "hes", "shes", "theyre", "him", "her", "them", "his", "hers", "their",
     "himself", "herself", "themselves", "someone", "somebody", "friend", "friends", "sister",
     "brother", "mom", "mother", "dad", "father", "son", "daughter", "kid", "kids", "child",
     "boyfriend", "girlfriend", "husband", "wife", "partner", "roommate", "cousin", "bestie",
     "coworker", "client", "student", "uncle", "aunt", "grandma", "grandpa", "niece", "nephew",
     "neighbor", "neighbour", "stepdad", "stepmom", "teen", "classmate", "sibling", "patient",
     "wants", "says", "thinks", "keeps"}
)
# "wants", "says" are third-person verbs: in "she wants to die" the verb itself names the
# subject; in "he makes me want to die" the nearest person is "me".
_PAST_BEFORE = re.compile(
    r"\b(?:used to|use to|back when|when i was (?:a kid|little|younger|young|a teen|a teenager|in "
    r"(?:high school|middle school|college|school)|\d+)|years ago|as a (?:kid|teen|teenager)|"
    r"in the past|a long time ago|long ago|in high school|in middle school|back in)\b"
)
_PAST_AFTER = re.compile(
    r"\b(?:years ago|when i was|back then|as a (?:kid|teen|teenager)|in (?:high school|middle school|"
    r"college)|last year|a long time ago|long ago|in the past|\d+ years|months ago|when i was younger|"
    r"but not anymore|but im (?:better|ok|okay|clean|sober)|but not now)\b"
)
# A timeframe turns access to means into imminent risk (CTL: "an imminent timeframe").
_SOON = re.compile(
    r"\b(?:tonight|right now|now|today|this morning|this afternoon|in an hour|soon|"
    r"this weekend|after work|when everyone is asleep)\b"
)


def _clause_bounds(text: str, start: int, end: int) -> tuple[str, str]:
    """The clause text before and after a match (clauses are separated by "|")."""
    left = text.rfind("|", 0, start) + 1
    right = text.find("|", end)
    if right == -1:
        right = len(text)
    return text[left:start], text[end:right]


def _is_negated(before: str) -> bool:
    """True when a negator precedes the match with only filler words between."""
    for word in reversed(before.split()[-6:]):
        if word in _NEGATORS:
            return True
        if word not in _NEGATION_FILLERS:
            return False
    return False


def _someone_else(before: str, matched: str) -> bool:
    """True when the nearest person before the match (or inside it) is another person."""
    words = before.split()[-8:] + matched.split()[:2]
    for word in reversed(words):
        if word in _FIRST_PERSON:
            return False
        if word in _THIRD_PERSON:
            return True
    return False


_URGED = re.compile(rf" {_URGE}(?: [a-z]+)?$")


def _urged(before: str) -> bool:
    """True when an urge word ends the text before a match ("want to" + "cut myself")."""
    return _URGED.search(" " + " ".join(before.split()[-5:])) is not None


@dataclass
class _Hit:
    name: str
    categories: tuple[str, ...]
    level: str


def _apply_rule(rule: _Rule, text: str, laughing: bool) -> _Hit | None:
    """The first match of `rule` that survives its guards, adjusted; None if none does."""
    if rule.laugh_cancels and laughing:
        return None
    for match in rule.pattern.finditer(text):
        if rule.accept is not None and not rule.accept(match):
            continue
        before, after = _clause_bounds(text, match.start(), match.end())
        if rule.not_before is not None and rule.not_before.search(before):
            continue
        if rule.not_after is not None and rule.not_after.search(after):
            continue
        if rule.negatable and _is_negated(before):
            continue
        level, categories, tags = rule.level, rule.categories, []
        if rule.soon_level and _SOON.search(before + match.group(0) + after):
            level = rule.soon_level
            tags.append("soon")
        if rule.urge_level and _urged(before):
            level = rule.urge_level
            tags.append("urge")
        if rule.subject and _someone_else(before, match.group(0)):
            categories, level = _third_party(categories, level)
            tags.append("third_party")
        if level == IMMINENT and rule.past and (_PAST_BEFORE.search(before) or _PAST_AFTER.search(after)):
            level = POSSIBLE
            tags.append("past")
        if level == IMMINENT and rule.laugh and laughing:
            level = POSSIBLE
            tags.append("laughing")
        name = rule.name + "".join("~" + t for t in tags)
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

_PILL = "\U0001f48a"
_WEAPON_EMOJI = ("\U0001f52a", "\U0001f52b", "\U0001fa92")  # knife, gun, razor
_HARM_EMOJI = ("\U0001fa78",)  # drop of blood
_DEATH_EMOJI = ("\u26b0", "\U0001faa6")  # coffin, headstone
_DEATH_CUE = re.compile(
    r"\b(?:die|dying|dead|death|done|over it|end it|ending it|bye|goodbye|gone|ready|soon|tonight|"
    r"forever|cant do this|cant take|cant anymore|tired of|want out|no more|im out|sorry|rip|myself|"
    r"anymore|enough|finally|last|whole bottle|all of them|night night|sleep forever|kill|suicide|"
    r"suicidal|hopeless|worthless|hate my life|pointless)\b"
)
_BODY_PART = re.compile(r"\b(?:arms?|wrists?|thighs?|legs?|skin|stomach|hips?|veins?|throat|head)\b")
_EMOJI_LOGISTICS = re.compile(
    r"\b(?:refill|refills|pharmacy|prescription|vitamins?|pick up|picked up|reminder|remember to|"
    r"took my meds|take my meds|taking my meds|dinner|cooking|recipe|chopping|range|hunting|movie|"
    r"game|halloween|costume)\b"
)


def _emoji_hits(folded: str, text: str, laughing: bool) -> list[_Hit]:
    """Emoji signals (read from the folded raw text; `text` is the canonical form)."""
    pills = folded.count(_PILL)
    weapons = sum(folded.count(e) for e in _WEAPON_EMOJI)
    harm = sum(folded.count(e) for e in _HARM_EMOJI)
    death = sum(folded.count(e) for e in _DEATH_EMOJI)
    if not (pills or weapons or harm or death):
        return []
    hits: list[_Hit] = []
    logistics = _EMOJI_LOGISTICS.search(text) is not None
    cue = _DEATH_CUE.search(text) is not None
    words = bool(text.strip(" |"))
    if pills >= 2 and not logistics:
        hits.append(_Hit("emoji.pills", ("overdose",), IMMINENT))
    elif pills == 1 and not logistics and not laughing and (cue or death or weapons or not words):
        hits.append(_Hit("emoji.pill_distress", ("overdose",), POSSIBLE))
    if (weapons or harm or death) and not laughing and not logistics:
        several = (weapons + harm + death) >= 2
        if _BODY_PART.search(text) and (weapons or harm):
            hits.append(_Hit("emoji.blade_body", ("self_harm",), POSSIBLE))
        elif cue or several or not words:
            hits.append(_Hit("emoji.death", ("suicide",), POSSIBLE))
    return hits


# ============================================================================================
# Entry point
# ============================================================================================

# A third person anywhere makes "ill do something i regret" about them (harm to others);
# otherwise it is read as about the texter (suicide).
_OTHER_PERSON = re.compile(rf"\b(?:he|she|they|him|her|them|hes|shes|my {_RELATION})\b")


def _categorise_regret(hit: _Hit, text: str) -> _Hit:
    """"ill do something i regret" is harm to others when another person is in the text."""
    if hit.name.startswith("suicide.do_something") and _OTHER_PERSON.search(text):
        return _Hit(hit.name + "~other", ("harm_to_others",), hit.level)
    return hit


def assess(text: str) -> CrisisAssessment:
    """Decide whether `text` needs the crisis path. Pure; never raises on any string.

    Recall first: a strong signal is never cancelled by a negation or an idiom elsewhere in the
    text. `reasons` name the rules that fired, suffixed with adjustments (~past, ~third_party).
    """
    if not text or not text.strip():
        return NOT_CRISIS
    folded = fold(text)
    canon = _canonical_folded(folded)
    laughing = _LAUGHTER.search(canon) is not None or any(e in folded for e in _LAUGH_EMOJI)
    hits: list[_Hit] = []
    if canon:
        for rule in _ALL_RULES:
            if rule.pattern.search(canon) is None:  # most rules, most texts: skip the guards
                continue
            hit = _apply_rule(rule, canon, laughing)
            if hit is not None:
                hits.append(_categorise_regret(hit, canon))
        for name, categories, level, first, second in _COMBOS:
            if first.search(canon) and second.search(canon):
                hits.append(_Hit(name, categories, level))
    if not folded.isascii():
        hits.extend(_emoji_hits(folded, canon, laughing))
    return _combine(hits)


def _combine(hits: Sequence[_Hit]) -> CrisisAssessment:
    """The most urgent level wins; categories and reasons are the union, in a stable order."""
    if not hits:
        return NOT_CRISIS
    level = IMMINENT if any(h.level == IMMINENT for h in hits) else POSSIBLE
    categories = sorted({c for h in hits for c in h.categories}, key=_CATEGORY_ORDER.__getitem__)
    reasons = tuple(dict.fromkeys(h.name for h in hits))
    return CrisisAssessment(True, level, tuple(categories), reasons)
