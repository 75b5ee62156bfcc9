"""Normalisation shared by the crisis check and the matcher."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.skills import DEFAULT_LIBRARY_PATH, LibraryError, Problem, check_library, load_library
from bot.tables import RULES_FOLDER, SMS_SPELLINGS_FILE, check_rules_tables, expand_placeholders, load_sms_spellings
from bot.text import fold, join_spelled_out, normalise, squeeze_elongations, tokens, unleet


def test_fold_makes_phone_typography_plain_and_keeps_emoji() -> None:
    assert fold("I’m “fine” – really…") == "i'm \"fine\" - really..."
    assert fold("Café NIÑO") == "cafe nino"
    assert fold("ok\u00a0then\u200b") == "ok then"
    assert fold("\U0001f48a") == "\U0001f48a"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Don’t", "dont"),
        ("I'm NOT ok!!!", "im not ok"),
        ("soooo tired", "soo tired"),
        ("i want to dieeee", "i want to diee"),
        ("k1ll mys3lf", "kill myself"),
        ("su1c1de", "suicide"),
        ("$uicidal", "suicidal"),
        ("k!ll", "kill"),
        ("di3", "die"),
        ("s.u.i.c.i.d.e", "suicide"),
        ("K I L L  M Y S E L F", "killmyself"),
        ("s o o o", "soo"),
        ("help!", "help"),
        ("800mg x10", "800mg x10"),
        ("walked 5 kms", "walked 5 kms"),
        ("10/10", "10 10"),
        ("at 3am", "at 3am"),
        ("covid19 and b12", "covid19 and b12"),
        ("i m a mess", "i m a mess"),
        ("  spaced\tout\n", "spaced out"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_unleet_only_touches_words_spelled_with_symbols() -> None:
    assert unleet("k1ll 5 kms 800mg x10 help!") == "kill 5 kms 800mg x10 help!"
    assert unleet("h3ll0!") == "hello!"


def test_squeeze_keeps_double_letters() -> None:
    assert squeeze_elongations("good feeel") == "good feel"
    assert squeeze_elongations("aaaa") == "aa"


def test_join_spelled_out_needs_four_letters() -> None:
    assert join_spelled_out("s u i c i d e") == "suicide"
    assert join_spelled_out("i m a") == "i m a"
    assert join_spelled_out("call me a b c d now") == "call me abcd now"


def test_tokens_are_the_words_of_normalise() -> None:
    assert tokens("I’m so done... 3am again!!") == ["im", "so", "done", "3am", "again"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_normalise_output_is_plain_and_stable(text: str) -> None:
    once = normalise(text)
    assert re.fullmatch(r"(?:[a-z0-9]+(?: [a-z0-9]+)*)?", once)
    assert normalise(once) == once


# ---- the rules tables (skills_library/rules/) -----------------------------------------------------

SHIPPED_RULES = DEFAULT_LIBRARY_PATH / RULES_FOLDER


def _rules_copy(tmp_path: Path, whole_library: bool = False) -> Path:
    """A copy of the shipped tables (or of the whole library) to break, never the real folder."""
    root = tmp_path / "library"
    if whole_library:
        shutil.copytree(DEFAULT_LIBRARY_PATH, root)
    else:
        shutil.copytree(SHIPPED_RULES, root / RULES_FOLDER)
    return root


def _edit(root: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / RULES_FOLDER / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _where(problems: list[Problem]) -> dict[tuple[str, str], str]:
    return {(p.file, p.field): p.message for p in problems}


def test_the_shipped_rules_tables_pass_the_check() -> None:
    assert check_rules_tables(DEFAULT_LIBRARY_PATH) == []
    assert {p.name for p in SHIPPED_RULES.glob("*.yaml")} >= {
        SMS_SPELLINGS_FILE, "crisis_rules.yaml", "lexicon.yaml"
    }


def test_every_problem_in_broken_crisis_rules_is_reported_at_once(tmp_path: Path) -> None:
    root = _rules_copy(tmp_path)

    def break_rules(data: dict[str, Any]) -> None:
        rules = data["rules"]
        assert [r["name"] for r in rules[:4]] == [
            "suicide.kill_self", "suicide.want_die", "suicide.end_life", "suicide.suicidal"
        ]
        rules[0]["pattern"] = r"\b(?:kill|end myself\b"  # does not compile
        rules[1]["pattern"] = [r"\bwant to {NOT_A_FRAGMENT} die\b"]  # unknown placeholder
        rules[2]["name"] = "suicide.suicidal"  # the next rule's name

    _edit(root, "crisis_rules.yaml", break_rules)
    problems = check_rules_tables(root)
    where = _where(problems)
    assert "does not compile" in where[("rules/crisis_rules.yaml", "rules[suicide.kill_self].pattern")]
    placeholder = where[("rules/crisis_rules.yaml", "rules[suicide.want_die].pattern")]
    assert "unknown placeholder {NOT_A_FRAGMENT}" in placeholder
    assert "duplicate rule name" in where[("rules/crisis_rules.yaml", "rules[suicide.suicidal].name")]
    assert len(problems) == 3, problems
    assert all(p.severity == "error" for p in problems)


def test_problems_in_all_three_files_are_reported_together(tmp_path: Path) -> None:
    root = _rules_copy(tmp_path)
    _edit(root, "crisis_rules.yaml", lambda d: d["rules"][0].update(level="urgent"))
    _edit(root, "lexicon.yaml", lambda d: d["states"].update(boredom={3.0: "bored | so bored"}))
    _edit(root, SMS_SPELLINGS_FILE, lambda d: d["matcher"].update(rn="right now"))  # also under both
    where = _where(check_rules_tables(root))
    assert "unknown level 'urgent'" in where[("rules/crisis_rules.yaml", "rules[suicide.kill_self].level")]
    assert "unknown state 'boredom'" in where[("rules/lexicon.yaml", "states.boredom")]
    assert "also listed under both" in where[("rules/sms_spellings.yaml", "matcher.rn")]
    assert len(where) == 3  # the shared spellings file is reported once, though both engines read it


def test_bad_yaml_and_missing_files_are_problems_not_crashes(tmp_path: Path) -> None:
    root = _rules_copy(tmp_path)
    (root / RULES_FOLDER / "lexicon.yaml").write_text("states: [unclosed\n", encoding="utf-8")
    (root / RULES_FOLDER / "crisis_rules.yaml").unlink()
    where = _where(check_rules_tables(root))
    assert where[("rules/lexicon.yaml", "")].startswith("not valid YAML")
    assert where[("rules/crisis_rules.yaml", "")].startswith("cannot read")


def test_duplicate_keys_are_problems(tmp_path: Path) -> None:
    root = _rules_copy(tmp_path)
    path = root / RULES_FOLDER / SMS_SPELLINGS_FILE
    path.write_text(path.read_text(encoding="utf-8").replace("  wanna: want to\n", "  wanna: want to\n  wanna: want\n"),
                    encoding="utf-8")
    (problem,) = check_rules_tables(root)
    assert problem.file == "rules/sms_spellings.yaml" and "duplicate key 'wanna'" in problem.message


def test_skills_check_reports_the_rules_tables_with_the_rest(tmp_path: Path) -> None:
    root = _rules_copy(tmp_path, whole_library=True)
    _edit(root, "lexicon.yaml", lambda d: d["states"]["anxiety"].update({5.0: "(worried sick"}))
    problems = [p for p in check_library(root) if p.file.startswith("rules/")]
    assert [(p.file, p.field) for p in problems] == [("rules/lexicon.yaml", "states.anxiety.5.0")]
    assert "unbalanced parentheses" in problems[0].message
    with pytest.raises(LibraryError, match="unbalanced parentheses"):
        load_library(root)


def test_placeholders_expand_recursively_and_lists_become_one_group() -> None:
    fragments: dict[str, str | list[str]] = {"A": ["x", "y {B}"], "B": "z", "LOOP": "{LOOP}"}
    assert expand_placeholders(r"\b{A}\b", fragments) == r"\b(?:x|y z)\b"
    assert expand_placeholders("{A}", fragments, group=("(", ")")) == "(x|y z)"
    unknown: list[str] = []
    assert expand_placeholders("{LOOP} {NOPE}", fragments, unknown=unknown) == "{LOOP} {NOPE}"
    assert unknown == ["LOOP (refers to itself)", "NOPE"]


def test_one_sms_spelling_table_feeds_both_readers() -> None:
    spellings, problems = load_sms_spellings(DEFAULT_LIBRARY_PATH)
    assert problems == []
    crisis, matcher = spellings.for_crisis_check(), spellings.for_matcher()
    for key, value in spellings.both.items():
        assert crisis[key] == matcher[key] == value
    assert not set(spellings.crisis_check) & set(spellings.matcher)
    assert crisis["kys"] == "kill yourself" and "kys" not in matcher
    assert matcher["idk"] == "i dont know" and "idk" not in crisis
