"""Crisis detection: the labelled dev set row by row, then the behaviours that matter most
(negation, obfuscation, emoji, idioms, panic, third parties, levels) one by one."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import safety
from bot.safety import CATEGORIES, IMMINENT, POSSIBLE, CrisisAssessment, assess
from bot.skills import DEFAULT_LIBRARY_PATH, Problem

DATA = Path(__file__).parent / "data"


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


DEV = _rows("crisis_cases.tsv")
HOLDOUT = _rows("crisis_holdout.tsv")


def _gold(note: str) -> tuple[str | None, str | None]:
    """The note's leading "category[/level]:" for crisis rows, e.g. "suicide/imminent: direct"."""
    head = note.split(":", 1)[0].strip()
    category, _, level = head.partition("/")
    return (category if category in CATEGORIES else None), (level or None)


def _param(row: dict[str, str]) -> object:
    marks = [pytest.mark.xfail(strict=True, reason="known_miss")] if "known_miss" in row["note"] else []
    return pytest.param(row, id=row["text"][:60], marks=marks)


# --------------------------------------------------------------------------------------------
# The data files themselves
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows, minimum", [(DEV, 220), (HOLDOUT, 60)], ids=["dev", "holdout"])
def test_labelled_sets_are_big_enough_and_well_formed(rows: list[dict[str, str]], minimum: int) -> None:
    assert len(rows) >= minimum
    assert {r["label"] for r in rows} == {"crisis", "not_crisis"}
    assert all(r["text"].strip() and r["note"].strip() for r in rows)
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts), "duplicate texts"


def test_dev_set_balance_and_category_coverage() -> None:
    crisis = [r for r in DEV if r["label"] == "crisis"]
    assert len(crisis) >= 110
    assert len(DEV) - len(crisis) >= 110
    assert {_gold(r["note"])[0] for r in crisis} == set(CATEGORIES)
    assert not [r for r in crisis if "known_miss" in r["note"]], "keep known misses of crisis rows at zero"


def test_holdout_does_not_overlap_the_dev_set() -> None:
    assert not {r["text"] for r in DEV} & {r["text"] for r in HOLDOUT}


# --------------------------------------------------------------------------------------------
# Every dev row
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", [_param(r) for r in DEV])
def test_dev_case(row: dict[str, str]) -> None:
    result = assess(row["text"])
    if row["label"] == "not_crisis":
        assert result == safety.NOT_CRISIS, result.reasons
        return
    assert result.is_crisis, row["note"]
    category, level = _gold(row["note"])
    if category:
        assert category in result.categories, (result.categories, result.reasons)
    if level:
        assert result.level == level, result.reasons


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


def _check_invariants(result: CrisisAssessment) -> None:
    assert result.is_crisis == (result.level is not None)
    assert result.level in (None, IMMINENT, POSSIBLE)
    assert set(result.categories) <= set(CATEGORIES)
    assert list(result.categories) == sorted(result.categories, key=CATEGORIES.index)
    assert bool(result.categories) == result.is_crisis == bool(result.reasons)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_assess_never_raises_and_keeps_its_invariants(text: str) -> None:
    _check_invariants(assess(text))


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "?!", "\u200b", "😀", "x" * 5000, "кто ты", "a\x00b"])
def test_odd_inputs_are_not_crisis(text: str) -> None:
    assert assess(text) == safety.NOT_CRISIS


def test_reasons_name_rules_not_the_message() -> None:
    text = "honestly i just want to kill myself tonight, bye everyone"
    result = assess(text)
    assert result.level == IMMINENT
    for reason in result.reasons:
        assert reason.split(".")[0] in CATEGORIES + ("emoji", "medical", "overdose")
        assert "honestly" not in reason and "tonight" not in reason and " " not in reason


def test_same_text_same_answer() -> None:
    assert assess("i want to die") == assess("i want to die")


# --------------------------------------------------------------------------------------------
# Negation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "im not suicidal, just exhausted",
        "id never hurt myself",
        "I would never kill myself",
        "i'm not going to hurt myself i promise",
        "no thoughts of suicide today",
        "i dont want to die",
        "not going to do anything stupid",
        "i'm not a burden",
    ],
)
def test_a_negated_weak_statement_is_not_crisis(text: str) -> None:
    assert not assess(text).is_crisis


@pytest.mark.parametrize(
    "text",
    [
        "im not suicidal but i dont want to wake up tomorrow",
        "i would never kill myself but i wish i was dead",
        "not suicidal. took 20 tylenol",
        "im not going to do anything but i have the pills ready",
        "i dont want to die but i dont want to live either",
    ],
)
def test_a_negation_never_cancels_a_strong_signal(text: str) -> None:
    assert assess(text).is_crisis


@pytest.mark.parametrize(
    "text",
    [
        "i cant stop thinking about killing myself",  # "cant stop" is no negation of the thought
        "no i want to die",  # "no" answering a question, not negating the phrase
        "not that i want to die or anything",  # a hedge
        "nobody would care if i killed myself",
    ],
)
def test_negation_scope_does_not_reach_past_other_words(text: str) -> None:
    assert assess(text).is_crisis


# --------------------------------------------------------------------------------------------
# Obfuscation: typos, apostrophes, leetspeak, separators, elongation, algospeak
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "i want to kil myself",
        "thinking about suicde",
        "i feel sucidal",
        "sucide",
        "i want to killmyself",
        "i want to kill myslef",
        "I don’t want to live anymore",
        "k1ll mys3lf",
        "su1c1de",
        "s.u.i.c.i.d.e",
        "s-u-i-c-i-d-e",
        "S U I C I D E",
        "i want to dieeeeee",
        "i want to d1e",
        "unalive myself",
        "sewerslide",
        "thinking about self-delete",
        "kms",
        "$uicidal",
        "k*ll myself",
        "su!c!de",
        "i think i od’d",
    ],
)
def test_obfuscated_wording_is_still_caught(text: str) -> None:
    assert assess(text).is_crisis, safety.canonical(text)


@pytest.mark.parametrize("text", ["walked 5 kms", "it's 3 kms away", "like 10 kms from here", "a few kms"])
def test_kms_as_a_distance_is_not_crisis(text: str) -> None:
    assert not assess(text).is_crisis


@pytest.mark.parametrize("text", ["kms", "i wanna kms", "kms fr", "gonna kms tonight"])
def test_kms_otherwise_means_kill_myself(text: str) -> None:
    result = assess(text)
    assert result.is_crisis and "suicide" in result.categories


def test_typo_repair_does_not_invent_key_words() -> None:
    # Near misses of key words that are real words must stay as they are.
    for word in ("skill", "will", "fill", "nose", "overdone", "overdue", "sizing", "withdraw", "shed"):
        assert safety.canonical(word) == word
    assert not assess("the steak was overdone").is_crisis
    assert not assess("i need a new skill").is_crisis


# --------------------------------------------------------------------------------------------
# Emoji (decisions in the bot.safety docstring)
# --------------------------------------------------------------------------------------------


def test_two_pill_emoji_are_imminent() -> None:
    result = assess("\U0001f48a\U0001f48a")
    assert result.level == IMMINENT and "overdose" in result.categories


@pytest.mark.parametrize("text", ["im done \U0001f48a", "goodbye \U0001f48a", "\U0001f48a"])
def test_one_pill_emoji_counts_with_distress_or_alone(text: str) -> None:
    assert assess(text).is_crisis


@pytest.mark.parametrize(
    "text",
    [
        "took my meds \U0001f48a",
        "picked up my refill \U0001f48a\U0001f48a",
        "making tacos \U0001f52a\U0001f951",
        "im dead \u26b0\ufe0f\U0001f602",
        "omg \U0001f480\U0001f480",
        "range day \U0001f52b",
    ],
)
def test_emoji_in_ordinary_contexts_are_not_crisis(text: str) -> None:
    assert not assess(text).is_crisis


@pytest.mark.parametrize(
    "text, category",
    [
        ("\U0001f52b cant do this anymore", "suicide"),
        ("ready to go \u26b0\ufe0f", "suicide"),
        ("\U0001faa6 soon", "suicide"),
        ("\U0001f52a my arm again", "self_harm"),
        ("\U0001f52b\u26b0\ufe0f", "suicide"),
    ],
)
def test_weapon_and_death_emoji_with_a_cue(text: str, category: str) -> None:
    result = assess(text)
    assert result.is_crisis and category in result.categories


# --------------------------------------------------------------------------------------------
# Idioms and panic
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "this homework is killing me",
        "killing it at work",
        "dying to see you",
        "my phone died",
        "dead tired",
        "im dead lol",
        "could murder a burger",
        "kill the lights",
        "killed a spider",
        "the battery is dead",
        "drop dead gorgeous",
        "i could just die of embarrassment",
        "overdosed on coffee lol",
        "that song about suicide",
        "suicide squad was mid",
        "my mom is gonna kill me when she sees my grades",
        "he hit me up yesterday",
        "they cut my hours again",
        "i want to end things with him",
        "bought a jump rope",
        "i want to stop drinking",
    ],
)
def test_idioms_are_not_crisis(text: str) -> None:
    assert not assess(text).is_crisis, assess(text).reasons


@pytest.mark.parametrize(
    "text",
    [
        "feel like im dying",
        "i think im dying my heart is racing",
        "cant breathe",
        "i feel like im going to die",
        "feels like a heart attack but its my anxiety",
        "chest is tight and im panicking",
    ],
)
def test_panic_wording_is_not_crisis(text: str) -> None:
    assert not assess(text).is_crisis


@pytest.mark.parametrize(
    "text",
    [
        "chest pain and cant breathe",
        "chest pain and cant breathe and my arm hurts",
        "my chest hurts and i feel like im going to pass out",
    ],
)
def test_chest_pain_with_red_flags_is_medical(text: str) -> None:
    result = assess(text)
    assert result.level == IMMINENT and "medical" in result.categories


# --------------------------------------------------------------------------------------------
# Levels, past, laughter, people
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, level",
    [
        ("i want to kill myself", IMMINENT),
        ("took 20 tylenol", IMMINENT),
        ("i cut again", IMMINENT),
        ("my partner hit me", IMMINENT),
        ("going to kill him", IMMINENT),
        ("everyone would be better off without me", POSSIBLE),
        ("urge to cut is bad", POSSIBLE),
        ("i used to think about suicide", POSSIBLE),
        ("i used to cut in high school", POSSIBLE),
        ("i want to kill myself lol", POSSIBLE),
    ],
)
def test_levels(text: str, level: str) -> None:
    assert assess(text).level == level


def test_past_lowers_but_never_cancels() -> None:
    result = assess("i attempted suicide years ago")
    assert result.is_crisis and result.level == POSSIBLE
    assert any("~past" in reason for reason in result.reasons)


def test_someone_elses_thoughts_are_third_party_alone() -> None:
    for text in ("my friend wants to kill herself", "she told me she wants to die", "my son is suicidal"):
        result = assess(text)
        assert result.categories == ("third_party",), (text, result)
        assert result.level == POSSIBLE


def test_someone_elses_physical_danger_keeps_its_category_and_urgency() -> None:
    result = assess("my friend isnt breathing after she used")
    assert result.level == IMMINENT
    assert result.categories == ("medical", "third_party")


def test_the_texter_at_risk_is_not_reported_as_third_party() -> None:
    result = assess("my mom says im suicidal")
    assert result.categories == ("suicide",)


def test_threats_from_others_are_abuse_and_threats_to_others_are_harm() -> None:
    assert assess("he said he will kill me").categories == ("abuse",)
    assert assess("im going to hurt my mom").categories == ("harm_to_others",)
    assert assess("if he does it again ill do something i regret").categories == ("harm_to_others",)
    assert assess("im scared ill do something stupid").categories == ("suicide",)


def test_pill_counts_below_a_normal_dose_are_not_overdose() -> None:
    assert not assess("took 2 tylenol for my headache").is_crisis
    assert assess("took 12 tylenol").level == IMMINENT
    assert not assess("i take a lot of meds for my bipolar").is_crisis
    assert assess("i took a lot of my meds").is_crisis


# --------------------------------------------------------------------------------------------
# The tables (skills_library/rules/crisis_rules.yaml) and their checks
# --------------------------------------------------------------------------------------------


def _broken_tables(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> list[Problem]:
    """Problems of a copy of the shipped tables after `change` (never the real folder)."""
    root = tmp_path / "library"
    shutil.copytree(DEFAULT_LIBRARY_PATH / "rules", root / "rules")
    path = root / "rules" / safety.RULES_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    tables, problems = safety.load_tables(root)
    assert (tables is None) == bool(problems)
    return problems


def test_the_shipped_crisis_tables_load_once_without_problems() -> None:
    tables, problems = safety.load_tables()
    assert problems == [] and tables is not None
    assert safety._tables() is safety._tables()
    names = [rule.name for rule in tables.rules]
    assert len(names) == len(set(names)) > 80
    assert {c for rule in tables.rules for c in rule.categories} == set(CATEGORIES)


def test_every_rule_and_combo_says_why() -> None:
    data = yaml.safe_load((DEFAULT_LIBRARY_PATH / "rules" / safety.RULES_FILE).read_text(encoding="utf-8"))
    for item in data["rules"] + data["combos"]:
        assert isinstance(item.get("why"), str) and len(item["why"]) > 20, item["name"]


def _rule(rule_name: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        (rule,) = [r for r in data["rules"] if r["name"] == rule_name]
        rule.update(fields)
        for key, value in fields.items():
            if value is None:
                del rule[key]

    return change


@pytest.mark.parametrize(
    "change, field, message",
    [
        (_rule("suicide.kill_self", categories=["suicide", "sadness"]), "rules[suicide.kill_self].categories",
         "unknown category 'sadness'"),
        (_rule("suicide.kill_self", level="high"), "rules[suicide.kill_self].level", "unknown level 'high'"),
        (_rule("self_harm.cut_self", urge_level="soon"), "rules[self_harm.cut_self].urge_level",
         "unknown level 'soon'"),
        (_rule("suicide.kill_self", negatable="yes"), "rules[suicide.kill_self].negatable",
         "must be true or false"),
        (_rule("suicide.kill_self", negateable=True), "rules[suicide.kill_self].negateable", "unknown field"),
        (_rule("suicide.kill_self", why=""), "rules[suicide.kill_self].why", "says why"),
        (_rule("suicide.kill_self", pattern=None), "rules[suicide.kill_self].pattern", "missing"),
        (_rule("suicide.kill_self", pattern=42), "rules[suicide.kill_self].pattern", "must be a regular expression"),
        (_rule("suicide.kill_self", not_after="(?:unclosed"), "rules[suicide.kill_self].not_after",
         "does not compile"),
        (_rule("overdose.took_many", accept="enough_beer"), "rules[overdose.took_many].accept",
         "unknown accept check 'enough_beer'"),
        (_rule("suicide.kill_self", accept="enough_pills"), "rules[suicide.kill_self].accept",
         "needs the named groups qty, past"),
        (_rule("suicide.kill_self", name="Kill Self"), "rules[0].name", "must be category.what"),
        (lambda d: d["fragments"]["INTENT"].append("{NOPE}"), "fragments.INTENT[33]", "unknown placeholder {NOPE}"),
        (lambda d: d["fragments"].update(LOOP="a {LOOP}"), "fragments.LOOP", "LOOP (refers to itself)"),
        (lambda d: d.update(rulez=[]), "rulez", "unknown field"),
        (lambda d: d["negators"].insert(0, "Not"), "negators[0]", "must be one lower-case word"),
        (lambda d: d["phrase_patterns"][0].update(replace=r"\2 to"), "phrase_patterns[0].replace",
         "refers to group \\2"),
        (lambda d: d["combos"][0].update(second=r"\bchest (?:pain"), "combos[medical.chest_pain].second",
         "does not compile"),
        (lambda d: d["spelling_overrides"].update(noone="No Body"), "spelling_overrides.noone",
         "must be lower-case words"),
        (lambda d: d.pop("soon"), "soon", "missing"),
    ],
)
def test_mistakes_in_the_crisis_tables_are_reported_by_file_and_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str, message: str
) -> None:
    problems = _broken_tables(tmp_path, change)
    assert [(p.file, p.field) for p in problems] == [("rules/crisis_rules.yaml", field)], problems
    assert message in problems[0].message


def test_relapse_without_overdose_signs_stays_out_of_the_crisis_path() -> None:
    for text in ("i used again", "i relapsed", "i slipped last night", "i drank last night", "fell off the wagon",
                 "broke my sobriety", "went back to the casino", "picked up again after 90 days"):
        assert assess(text) == safety.NOT_CRISIS, text
    assert assess("used again and cant feel my legs").level == IMMINENT
    assert assess("i relapsed and took 20 xanax").level == IMMINENT


# --------------------------------------------------------------------------------------------
# Wording without a suicide word: safety status, plans and means, goodbyes, overdose signs,
# danger from others, harm to others, medical emergencies, two weak cues
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, category, level",
    [
        ("really dont feel safe with myself tonight", "suicide", IMMINENT),
        ("idk if i can stay safe till thursday", "suicide", IMMINENT),
        ("wont promise im gonna be ok tonight", "suicide", IMMINENT),
        ("i dont trust myself right now", "suicide", IMMINENT),
        ("honestly scared of what ill do tonight", "suicide", IMMINENT),
        ("cant be by myself tonight, can someone come", "suicide", IMMINENT),
        ("can my roommate lock up my pills so i cant get to them tonight", "suicide", IMMINENT),
        ("went through everything on my safety plan and still not ok", "suicide", IMMINENT),
        ("not sure ill still be here in the morning", "suicide", IMMINENT),
        ("scoped out the place", "suicide", IMMINENT),
        ("sitting on the window sill 8 floors up", "suicide", IMMINENT),
        ("the cord is set up in the closet", "suicide", IMMINENT),
        ("got the blade in my hand", "suicide", IMMINENT),
        ("im gonna take everything i have at once", "overdose", IMMINENT),
        ("filled my pockets with stones", "suicide", IMMINENT),
        ("last message you will ever get from me", "suicide", IMMINENT),
        ("signing off for good", "suicide", IMMINENT),
        ("please forgive me", "suicide", POSSIBLE),
        ("idk how many i swallowed", "overdose", IMMINENT),
        ("took every pill i could find", "overdose", IMMINENT),
        ("breathing is really shallow since i used", "overdose", IMMINENT),
        ("im being followed home", "abuse", IMMINENT),
        ("my ex is outside my door right now", "abuse", IMMINENT),
        ("he came at me with a hammer", "abuse", IMMINENT),
        ("there is someone trying to get in my window", "abuse", IMMINENT),
        ("my daughter came home from her dads with bruises", "abuse", IMMINENT),
        ("i think i really hurt him", "harm_to_others", IMMINENT),
        ("going to burn his truck tonight", "harm_to_others", IMMINENT),
        ("im drunk and driving to her place", "harm_to_others", IMMINENT),
        ("puking blood", "medical", IMMINENT),
        ("my stool is black like tar", "medical", IMMINENT),
        ("one side of my face went numb", "medical", IMMINENT),
        ("this chest pain is not like my panic attacks", "medical", IMMINENT),
        ("stopped drinking friday and now seeing bugs on the walls", "medical", IMMINENT),
        ("worthless. got 2 bottles of sleeping pills at the store", "suicide", IMMINENT),
        ("relapsed tonight. whole bottle next to me", "suicide", IMMINENT),
        ("after a lot of thinking ive decided to end things", "suicide", IMMINENT),
        ("its drink or die tonight honestly", "suicide", IMMINENT),
        ("sorry for the call youre going to get from the hospital", "suicide", IMMINENT),
        ("please dont narcan me this time", "suicide", IMMINENT),
        ("put aside cash for my funeral in the drawer", "suicide", IMMINENT),
        ("my pharmacist thinks these are for sleep. i have other plans for them", "overdose", IMMINENT),
        ("my lips look kind of blue", "overdose", IMMINENT),
        ("i keep forgetting to breathe after that hit", "overdose", IMMINENT),
        ("i wish i had never been born", "suicide", POSSIBLE),
        ("in the icu i get jealous of the patients who dont make it", "suicide", POSSIBLE),
        ("he keeps telling me he knows where i sleep", "abuse", IMMINENT),
        ("my roommate is pacing with a machete", "abuse", IMMINENT),
        ("someone is kicking the bedroom door in", "abuse", IMMINENT),
        ("reopened my old cuts last night", "self_harm", IMMINENT),
        ("took sandpaper to my arm again", "self_harm", IMMINENT),
        ("i carry a blade in my wallet for bad days", "self_harm", POSSIBLE),
        ("headed to his house with a crowbar", "harm_to_others", IMMINENT),
        ("people are in the walls and i havent slept in days", "medical", IMMINENT),
        ("hit my head on the ice and now im seeing double", "medical", IMMINENT),
        ("my cousin sent me a picture of a gun and wont answer", "third_party", IMMINENT),
    ],
)
def test_wording_without_a_suicide_word_is_caught(text: str, category: str, level: str) -> None:
    result = assess(text)
    assert result.is_crisis, text
    assert category in result.categories, (text, result)
    assert result.level == level, (text, result.reasons)


@pytest.mark.parametrize(
    "text",
    [
        "i feel safe with myself now",
        "im not safe to drive in this snow",
        "not sure i can stay safe on these icy roads",
        "i dont trust myself with money lol",
        "scared of what ill do after graduation",
        "i cant be alone forever, i want a relationship",
        "can you take my car to the shop tomorrow",
        "took my meds this morning",
        "this is my last text before my phone dies",
        "goodbye to my old apartment, new place tomorrow",
        "see you on the other side of the holidays",
        "cutting onions for the chili",
        "bought rope to strap down the boxes for the move",
        "we tied the knot in june",
        "had some dark thoughts last week but im steady now",
        "the show had an overdose scene",
        "my wife is gonna kill me i forgot the milk",
        "self harm urge 0",
        "nurse asked the suicide questions, all no",
        "my dog keeps following me around",
        "hiding in my room from my chores",
        "my boss wont let me leave early",
        "i need to go to the hospital for my mri tomorrow",
        "the pepto made my poop black",
        "fell asleep on the couch and cant get up for work",
        "urges are bad tonight",
        "in a dark place today, sad and flat",
        "figured out how much it would take to fix my car",
        "picked the place for dinner",
    ],
)
def test_near_misses_of_the_wider_rules_are_not_crisis(text: str) -> None:
    assert not assess(text).is_crisis, (text, assess(text).reasons)


def test_recovery_talk_about_past_preparation_is_not_a_crisis_tier() -> None:
    from bot import risk

    text = "two years ago i had pills counted out on the table. a year clean now and doing so much better"
    assert risk.assess(text, model=False).tier == risk.NONE


def test_ambiguous_goodbyes_are_asked_about_not_acted_on() -> None:
    from bot import risk

    assert risk.assess("im so sorry for everything", model=False).tier == risk.CHECK
    assert risk.assess("please tell my kids i love them", model=False).tier == risk.CHECK


# --------------------------------------------------------------------------------------------
# Wording without the usual key words (rules added from risk_positive_3; own wording)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "im not going to take it all in at once, one class at a time",
        "my head exploded when i saw the price of eggs",
        "threw myself off the wagon and into a pizza lol",
        "the tour guide knows where i live lol shes my aunt",
        "my ex gets out next month and he knows where i live",
        "rubbed the table raw with sandpaper for the refinish",
        "im gonna stab this steak so hard lol",
        "ive decided to end my gym membership",
        "the song about wanting to die hit hard but it ends hopeful",
        "im not choosing death, im choosing my kids",
        "my grandma said she will always watch over us when she moves",
        "neighbor is feeding my cat starting tomorrow while im in ohio",
    ],
)
def test_near_misses_of_the_third_set_rules_are_not_crisis(text: str) -> None:
    from bot import risk

    assert risk.assess(text, model=False).tier == risk.NONE, (text, risk.assess(text, model=False).reasons)


@pytest.mark.parametrize("text", [
    "my 3 yr old chewed a sub strip", "toddler ate one of my methadone doses", "kid got into my pills",
    "drank someone elses methadone dose", "drank 5 days of methadone at once", "took all my take homes at once",
])
def test_a_child_swallowing_medicine_or_someone_elses_dose_is_a_crisis(text: str) -> None:
    result = safety.assess(text)
    assert result.is_crisis and "overdose" in result.categories and result.level == "imminent"


@pytest.mark.parametrize("text", [
    "my son took his meds this morning", "my daughter ate her dinner", "i drank my methadone dose at the clinic",
])
def test_ordinary_medicine_talk_about_a_child_or_a_dose_is_not(text: str) -> None:
    assert not safety.assess(text).is_crisis


def test_wanting_to_join_someone_who_died_is_current_even_on_an_anniversary() -> None:
    from bot import risk

    assert risk.assess("today is a year since he died. i want to join him").tier != risk.NONE
    assert risk.assess("a year since my overdose, i want to join the alumni group").tier == risk.NONE


@pytest.mark.parametrize("text", [
    "swallowed 30 advil a couple hours ago, feel ok so i guess im fine",
    "smoked fent for the first time after 4 months sober and im feeling real heavy",
])
def test_a_recent_overdose_told_calmly_is_not_read_as_recovery_talk(text: str) -> None:
    from bot import risk

    result = risk.assess(text, model=False)
    assert result.tier == risk.CRISIS, (text, result.reasons)
    assert not any(r.startswith("recovery:") for r in result.reasons)


def test_i_mean_that_is_emphasis_not_a_clarification() -> None:
    from bot import risk

    result = risk.assess("theres no reason to keep going and i mean that", model=False)
    assert result.tier != risk.NONE, result.reasons
    assert risk.assess("yesterday when i said i wanted to end it i mean the group chat",
                       model=False).tier == risk.NONE


@pytest.mark.parametrize("text", [
    "day 2 without drinking and my hands are shaking so much i spilled my coffee",
    "stopped drinking two days ago, sweating through my sheets",
    "coming off benzos at home and my heart is racing",
])
def test_the_first_days_off_alcohol_or_benzos_with_body_signs_reach_a_person(text: str) -> None:
    from bot import risk

    result = risk.assess(text, model=False)
    assert result.tier == risk.CRISIS and "medical" in result.categories, (text, result.reasons)


@pytest.mark.parametrize("text", [
    "day 3 no alcohol, feeling great honestly",
    "quit drinking a year ago, shaking hands at my interview lol",
])
def test_sober_days_without_withdrawal_signs_are_not_a_medical_crisis(text: str) -> None:
    from bot import risk

    assert risk.assess(text, model=False).tier == risk.NONE


@pytest.mark.parametrize("text", [
    "no im not going to hurt myself, i just need to vent",
    "lol no im not gonna kms, its a meme my friend sent",
    "id never hurt myself, dont worry",
])
def test_a_plain_denial_gets_no_question_from_the_learned_layer(text: str, eager_model_library: Path) -> None:
    from bot import risk

    assert risk.assess(text).tier == risk.NONE
    # Even a learned layer that would ask about anything does not ask about a denial.
    result = risk.assess(text, library=eager_model_library)
    assert result.tier == risk.NONE, result.reasons
    assert "denial:says plainly there is no risk" in result.reasons
    assert risk.assess("i just need to vent tonight", library=eager_model_library).tier == risk.CHECK


@pytest.fixture(scope="module")
def eager_model_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the library whose risk model asks at any probability (threshold 0.0001)."""
    import gzip
    import json

    from bot import risk

    library = tmp_path_factory.mktemp("eager") / "lib"
    shutil.copytree(risk.LIBRARY, library)
    path = library / risk.RISK_MODEL_FILE
    with gzip.open(path, "rb") as raw:
        document = json.loads(raw.read())
    document["meta"]["threshold"] = 0.0001
    with gzip.open(path, "wb") as raw:
        raw.write(json.dumps(document).encode("utf-8"))
    return library


@pytest.mark.parametrize("text", [
    "im not going to hurt myself but i cant stop thinking about it",  # a hedge after the denial
    "im not going to hurt myself tonight, i just want out",  # something current besides it
])
def test_a_denial_that_goes_on_is_still_read(text: str) -> None:
    from bot import risk

    assert risk.assess(text).tier != risk.NONE, risk.assess(text).reasons


def test_a_denial_never_cancels_a_rule() -> None:
    from bot import risk

    assert risk.assess("not suicidal but i bought a rope").tier == risk.CRISIS


@pytest.mark.parametrize("text", [
    "2 years sober and i drank a whole handle",
    "used after a year clean, did my usual amount",
    "the anniversary of his death is tomorrow and i dont know if ill be safe",
    "my wife passed in march and i dont see why im still here",
])
def test_a_relapse_or_ideation_told_with_a_milestone_is_not_recovery_talk(text: str) -> None:
    from bot import risk

    result = risk.assess(text)
    assert not any(r.startswith("recovery:") for r in result.reasons), result.reasons
    if "handle" not in text:  # no rule for how much is too much alcohol; the others are read
        assert result.tier != risk.NONE, result.reasons


@pytest.mark.parametrize("text", [
    "the suicidal thoughts i had in the spring are gone, still sad sometimes but its different",
    "was in a really dark place in march, suicidal and everything, but the new meds have helped so much",
    "when i first started iop i wanted to die every day. now its rare and i know what to do",
])
def test_recovery_talk_placed_by_a_season_or_a_beginning_is_not_risk(text: str) -> None:
    from bot import risk

    assert risk.assess(text).tier == risk.NONE, risk.assess(text).reasons


def test_a_sure_learned_layer_still_asks_when_the_recovery_reading_may_be_wrong(tmp_path: Path) -> None:
    from bot import risk

    text = "i have a stash of my old prescriptions, checked today, i know its enough now"
    assert any(r.startswith("recovery:") for r in risk.assess(text).reasons)

    def with_threshold(value: str) -> Path:
        library = tmp_path / value
        shutil.copytree(risk.LIBRARY, library)
        tables = library / risk.CONTEXT_FILE
        tables.write_text(tables.read_text(encoding="utf-8").replace(
            "recovery_model_threshold: 0.9", f"recovery_model_threshold: {value}"), encoding="utf-8")
        return library

    assert risk.assess(text, library=with_threshold("0.01")).tier == risk.CHECK
    assert risk.assess(text, library=with_threshold("1.0")).tier == risk.NONE


@pytest.mark.parametrize(("text", "rule"), [
    ("searched the highest parking garages in town", "suicide.height_search"),
    ("walked out to the train tracks after dinner and stood there a while", "suicide.drove_to_place"),
    ("in case someone needs my passwords theyre in the blue notebook", "suicide.affairs"),
    ("wrote out instructions for my cats and taped them to the door", "suicide.affairs"),
    ("the voices keep saying to jump", "suicide.command_voice"),
    ("my safety plan is not helping tonight", "suicide.plan_not_working"),
    ("banged my head against the wall on purpose until it bled", "self_harm.on_purpose"),
    ("chest pain for an hour and it doesnt feel like my anxiety", "medical.not_panic"),
    ("one side of my face went numb and i cant talk right", "medical.numb_cant_walk"),
    ("gonna run that guys truck off the road when he leaves", "harm_to_others.off_the_road"),
])
def test_preparation_commands_and_medical_signs_in_everyday_words(text: str, rule: str) -> None:
    result = assess(text)
    assert result.is_crisis and any(r.split("~")[0] == rule for r in result.reasons), (text, result.reasons)


@pytest.mark.parametrize("text", [
    "googled the tallest buildings in the world for my kids project lol",
    "drove to the bridge club with my aunt",
    "left instructions for the dog walker on the counter",
    "finally made a will now that the baby is here",
    "hit my hand on the door by accident, ouch",
    "my foot went numb from sitting on it lol",
    "the movie where they run the car off the road was wild",
])
def test_everyday_lookalikes_of_those_rules_are_not_crisis(text: str) -> None:
    assert not assess(text).is_crisis, (text, assess(text).reasons)


def test_a_denial_also_holds_against_a_sure_model_on_recovery_talk(eager_model_library: Path, tmp_path: Path) -> None:
    from bot import risk

    library = tmp_path / "lib"
    shutil.copytree(eager_model_library, library)
    tables = library / risk.CONTEXT_FILE
    tables.write_text(tables.read_text(encoding="utf-8").replace(
        "recovery_model_threshold: 0.9", "recovery_model_threshold: 0.0001"), encoding="utf-8")
    asked = risk.assess("i used to cut, two years free of it now, proud of that", library=library)
    assert asked.tier == risk.CHECK and any(r.endswith("despite recovery") for r in asked.reasons), asked.reasons
    denied = risk.assess("i used to cut, havent hurt myself in years, proud of that", library=library)
    assert denied.tier == risk.NONE and "denial:says plainly there is no risk" in denied.reasons, denied.reasons
