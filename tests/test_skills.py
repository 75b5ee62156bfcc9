"""The skills library: the shipped content is valid, and the checker reports every problem at once.

Broken cases edit a copy of the shipped library under tmp_path, never the real folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import skills as skills_module
from bot.segments import is_gsm7, segments
from bot.skills import (
    CATEGORIES,
    DEFAULT_LIBRARY_PATH,
    FLAGS,
    STATES,
    Library,
    LibraryError,
    Problem,
    check_library,
    export_library,
    load_library,
)

VERIFIED = date(2026, 11, 27)  # last_verified of the shipped crisis files


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(DEFAULT_LIBRARY_PATH)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A private copy of the shipped library to break."""
    root = tmp_path / "library"
    shutil.copytree(DEFAULT_LIBRARY_PATH, root)
    return root


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


HALT = "skills/halt-check.yaml"


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def find(problems: list[Problem], file: str, field: str, text: str = "") -> list[Problem]:
    return [p for p in problems if p.file == file and p.field == field and text in p.message]


# --- the shipped library ------------------------------------------------------------------------


def test_shipped_library_has_no_problems_at_all() -> None:
    assert check_library(DEFAULT_LIBRARY_PATH, today=VERIFIED) == []


def test_shipped_library_covers_every_state_with_at_least_two_skills(library: Library) -> None:
    assert len(library.skills) >= 38
    for state in STATES:
        assert len(library.for_state(state)) >= 2, state


def test_shipped_library_uses_every_category(library: Library) -> None:
    assert {s.category for s in library.skills.values()} == set(CATEGORIES)


def test_only_psychoeducation_cards_help_with_nothing(library: Library) -> None:
    cards = {s.id for s in library.skills.values() if not s.helps_with}
    assert cards == {s.id for s in library.skills.values() if s.category == "psychoeducation"}
    assert {"about-iop", "about-cbt", "about-mindfulness", "about-relapse-prevention", "about-tms"} <= cards


def test_every_sent_skill_text_is_gsm7_and_most_steps_fit_one_segment(library: Library) -> None:
    steps = 0
    for skill in library.skills.values():
        for field, text in skill.sent_texts():
            assert is_gsm7(text), (skill.id, field)
            assert segments(text) <= 2, (skill.id, field)
        steps += len(skill.steps)
        assert 3 <= len(skill.steps) <= 8, skill.id
    long_steps = [t for s in library.skills.values() for t in s.steps if segments(t) > 1]
    assert len(long_steps) * 10 < steps


def test_the_dbt_skill_is_spelled_with_hyphens_and_no_carrier_word_is_sent(library: Library) -> None:
    assert library.skill("s-t-o-p-skill").title == "S-T-O-P skill"
    for skill in library.skills.values():
        for field, text in skill.sent_texts():
            words = {w.strip(".,:;!?()").upper() for w in text.split()}
            assert not words & set(skills_module.CARRIER_WORDS), (skill.id, field, text)
            assert "REPLY NEXT" not in text.upper()


def test_breath_holds_and_cold_water_are_gated(library: Library) -> None:
    for skill_id in ("box-breathing", "breathing-4-7-8", "tipp"):
        skill = library.skill(skill_id)
        assert "breath_hold" in skill.involves
        assert {"heart_condition", "lung_condition", "pregnancy"} <= set(skill.avoid_if)
        assert not skill.allowed_for({"heart_condition"})
    tipp = library.skill("tipp")
    assert {"cleared_cold_water", "cleared_intense_exercise"} <= set(tipp.requires)
    assert not tipp.allowed_for(set())
    assert tipp.allowed_for({"cleared_cold_water", "cleared_intense_exercise"})
    assert not tipp.allowed_for({"cleared_cold_water", "cleared_intense_exercise", "pregnancy"})
    # The no-hold alternative stays available to everyone.
    assert library.skill("relaxed-breathing").allowed_for(set(FLAGS) - {"cleared_cold_water"})


def test_breathing_skills_for_panic_send_the_medical_screen(library: Library) -> None:
    panic_breathing = [s for s in library.for_state("panic") if s.category == "breathing"]
    assert panic_breathing
    assert all(s.medical_screen for s in panic_breathing)


def test_for_state_ranks_skills_listing_the_state_first(library: Library) -> None:
    ranked = library.for_state("panic")
    positions = [s.helps_with.index("panic") for s in ranked]
    assert positions == sorted(positions)
    assert library.for_state("none") == []
    with pytest.raises(ValueError):
        library.for_state("worry")


def test_skill_lookup_names_the_missing_id(library: Library) -> None:
    with pytest.raises(KeyError, match="no-such-skill"):
        library.skill("no-such-skill")


def test_discreet_prompts_reveal_nothing(library: Library) -> None:
    prompts = [s.practice_prompt_discreet for s in library.skills.values() if s.practice_prompt_discreet]
    assert len(prompts) == len(library.skills)
    for prompt in prompts:
        assert not skills_module._REVEALING_RE.search(prompt), prompt


# --- crisis resources ---------------------------------------------------------------------------


def test_crisis_resources_fall_back_to_the_international_file(library: Library) -> None:
    assert library.crisis_resources("US").country == "US"
    assert library.crisis_resources("us").country == "US"
    assert library.crisis_resources("FR").country == "XX"
    assert library.crisis_resources(None).country == "XX"
    assert "findahelpline.com" in library.crisis_resources("FR").summary


@pytest.mark.parametrize(
    ("country", "emergency"), [("US", "911"), ("CA", "911"), ("GB", "999"), ("IE", "112"), ("AU", "000")]
)
def test_each_country_names_its_emergency_number(library: Library, country: str, emergency: str) -> None:
    resources = library.crisis_resources(country)
    assert emergency in resources.emergency
    assert emergency in resources.summary


def test_us_lines_match_the_reference(library: Library) -> None:
    us = library.crisis_resources("US")
    assert "988" in us.summary and "HOME to 741741" in us.summary
    assert "1-800-799-7233" in us.violence and "START to 88788" in us.violence


def test_us_short_codes_appear_only_in_the_us_file(library: Library) -> None:
    for code, resources in library.resources.items():
        if code == "US":
            continue
        dumped = json.dumps(resources.model_dump(mode="json"))
        for short_code in skills_module.US_SHORT_CODES:
            assert short_code not in dumped, (code, short_code)


# --- messages -----------------------------------------------------------------------------------


def write_messages(root: Path, messages: dict[str, Any]) -> None:
    """Add (or replace) messages in the copy; the shipped ones stay, so required keys are present."""
    path = root / "messages.yaml"
    merged = {**yaml.safe_load(path.read_text(encoding="utf-8")), **messages}
    path.write_text(yaml.safe_dump(merged, sort_keys=False, width=1000), encoding="utf-8")


def test_message_fills_placeholders_and_rotates_variants(copy: Path) -> None:
    write_messages(copy, {"welcome": "Hi {name}.", "cheer": ["Nice, {name}.", "Well done, {name}."]})
    lib = load_library(copy)
    assert lib.message("welcome", name="Sam") == "Hi Sam."
    assert lib.message("cheer", name="Sam") == "Nice, Sam."
    assert lib.message("cheer", variant=1, name="Sam") == "Well done, Sam."
    assert lib.message("cheer", variant=2, name="Sam") == "Nice, Sam."
    assert lib.messages_list("cheer") == ["Nice, {name}.", "Well done, {name}."]
    assert lib.messages_list("welcome") == ["Hi {name}."]
    with pytest.raises(KeyError, match="name"):
        lib.message("welcome")
    with pytest.raises(KeyError, match="nope"):
        lib.message("nope")


def test_message_checks(copy: Path) -> None:
    write_messages(
        copy,
        {
            "curly": "Don\u2019t worry",
            "long": "{a} {b} " + "x" * 270,  # fine raw, too long once each placeholder is 20 chars
            "carrier": "Text STOP to end this",
            "asks_yes": "Reply YES if that works",
            "help": "Reply STOP to opt out, START to rejoin.",
            "consent_reminder": "Reply YES to join.",
            "variants": ["Hi {name}", "Hello {nom}"],
            "braces": "Hi {name",
            "spec": "Hi {name!r}",
            "Bad-Key": "hello",
            "empty": [],
        },
    )
    problems = check_library(copy)
    assert find(problems, "messages.yaml", "curly", "GSM-7")
    assert find(problems, "messages.yaml", "long", "306")
    assert find(problems, "messages.yaml", "carrier", "'STOP'")
    assert find(problems, "messages.yaml", "carrier", "'end'")
    assert find(problems, "messages.yaml", "asks_yes", "YES")
    assert not find(problems, "messages.yaml", "help")
    assert not find(problems, "messages.yaml", "consent_reminder")
    assert find(problems, "messages.yaml", "variants", "same {placeholders}")
    assert find(problems, "messages.yaml", "braces", "braces")
    assert find(problems, "messages.yaml", "spec", "plain name")
    assert find(problems, "messages.yaml", "Bad-Key", "snake_case")
    assert find(problems, "messages.yaml", "empty", "non-empty list")


def test_required_message_keys_are_enforced(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skills_module, "REQUIRED_MESSAGE_KEYS", frozenset({"welcome", "goodbye"}))
    write_messages(copy, {"welcome": "Hi."})
    assert find(check_library(copy), "messages.yaml", "goodbye", "required message is missing")


def test_missing_messages_file_is_an_error(copy: Path) -> None:
    (copy / "messages.yaml").unlink()
    assert find(check_library(copy), "messages.yaml", "", "missing")


def test_step_that_fits_alone_but_not_once_wrapped_is_warned(copy: Path) -> None:
    write_messages(copy, {"step": "{text} ({n}/{total}, text NEXT)", "step_last": "{text} ({n}/{total})"})
    edit(copy / "skills/paced-breathing.yaml", lambda d: d["steps"].__setitem__(1, "In. " + "x" * 148))
    problems = check_library(copy)
    warned = find(problems, "skills/paced-breathing.yaml", "steps[1]", "once sent with the 'step' message")
    assert warned and warned[0].severity == "warning"
    assert not errors(problems)


# --- the checker reports everything at once ------------------------------------------------------


def test_checker_names_file_and_field_of_every_problem_in_one_pass(copy: Path) -> None:
    edit(copy / "skills/box-breathing.yaml", lambda d: d.update(colour="blue"))
    edit(copy / "skills/paced-breathing.yaml", lambda d: d["helps_with"].append("worry"))
    edit(copy / "skills/relaxed-breathing.yaml", lambda d: d["steps"].__setitem__(0, "Don\u2019t rush."))
    edit(copy / "skills/physical-grounding.yaml", lambda d: d["steps"].__setitem__(1, "Press. " * 58))
    edit(copy / "skills/mental-grounding.yaml", lambda d: d["steps"].__setitem__(2, "Now reply STOP."))
    edit(copy / "crisis/CA.yaml", lambda d: d.update(summary="Text HOME to 741741 or call 988."))

    problems = check_library(copy)

    assert find(problems, "skills/box-breathing.yaml", "colour", "unknown field")
    assert find(problems, "skills/paced-breathing.yaml", "helps_with[3]", "'anxiety'")
    assert find(problems, "skills/relaxed-breathing.yaml", "steps[0]", "not GSM-7")
    assert find(problems, "skills/relaxed-breathing.yaml", "steps[0]", "\u2019")
    assert find(problems, "skills/physical-grounding.yaml", "steps[1]", "the limit is 306")
    assert find(problems, "skills/mental-grounding.yaml", "steps[2]", "'STOP'")
    assert find(problems, "crisis/CA.yaml", "summary", "741741")
    assert all(p.severity == "error" for p in problems if p.file != "skills/physical-grounding.yaml")

    with pytest.raises(LibraryError) as raised:
        load_library(copy)
    reported = {(p.file, p.field) for p in raised.value.problems}
    assert {
        ("skills/box-breathing.yaml", "colour"),
        ("skills/paced-breathing.yaml", "helps_with[3]"),
        ("skills/relaxed-breathing.yaml", "steps[0]"),
        ("skills/physical-grounding.yaml", "steps[1]"),
        ("skills/mental-grounding.yaml", "steps[2]"),
        ("crisis/CA.yaml", "summary"),
    } <= reported
    assert "skills/box-breathing.yaml: colour" in str(raised.value)


def test_text_problems_are_reported_even_when_the_schema_fails(copy: Path) -> None:
    def break_twice(d: dict[str, Any]) -> None:
        d["duration_minutes"] = 45
        d["steps"][0] = "At the end, text NEXT."

    edit(copy / "skills/box-breathing.yaml", break_twice)
    problems = check_library(copy)
    assert find(problems, "skills/box-breathing.yaml", "duration_minutes")
    assert find(problems, "skills/box-breathing.yaml", "steps[0]", "'end'")
    assert find(problems, "skills/box-breathing.yaml", "steps[0]", "reply NEXT")


@pytest.mark.parametrize("word", ["STOP", "End", *(w.lower() for w in skills_module.CARRIER_WORDS)])
def test_every_carrier_word_is_refused_in_steps(copy: Path, word: str) -> None:
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, f"Pause here, {word} a moment."))
    assert find(check_library(copy), HALT, "steps[1]", "opt-out")


@pytest.mark.parametrize("text", ["S-T-O-P helps.", "As the ending nears, pause.", "It was quite a weekend."])
def test_words_that_only_contain_a_carrier_word_are_fine(copy: Path, text: str) -> None:
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, text))
    assert check_library(copy, today=VERIFIED) == []


def test_more_than_a_third_of_long_steps_is_an_error(copy: Path) -> None:
    long = "Breathe slowly. " * 11  # 176 characters: two segments
    edit(copy / HALT, lambda d: d["steps"].__setitem__(0, long))
    problems = check_library(copy)
    assert find(problems, HALT, "steps[0]", "over one SMS segment")[0].severity == "warning"
    assert not errors(problems)
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, long))
    assert find(errors(check_library(copy)), HALT, "steps", "at most a third")


def test_id_must_match_the_file_name(copy: Path) -> None:
    edit(copy / HALT, lambda d: d.update(id="halt"))
    assert find(check_library(copy), HALT, "id", "file name")


def test_breath_hold_without_its_gates_is_an_error(copy: Path) -> None:
    edit(copy / "skills/box-breathing.yaml", lambda d: d.update(avoid_if=["heart_condition"]))
    problems = check_library(copy)
    assert find(problems, "skills/box-breathing.yaml", "avoid_if", "lung_condition, pregnancy")


def test_undeclared_breath_hold_in_the_steps_is_caught(copy: Path) -> None:
    edit(copy / "skills/paced-breathing.yaml", lambda d: d["steps"].__setitem__(1, "In, then hold for 4."))
    assert find(check_library(copy), "skills/paced-breathing.yaml", "involves", "breath hold")


def test_saying_no_holding_is_not_a_breath_hold(library: Library) -> None:
    # relaxed-breathing says "no breath holding"; it must pass without declaring a hold.
    assert "breath_hold" not in library.skill("relaxed-breathing").involves


def test_cold_face_immersion_needs_clearance(copy: Path) -> None:
    edit(copy / "skills/tipp.yaml", lambda d: d.update(requires=["cleared_intense_exercise"]))
    assert find(check_library(copy), "skills/tipp.yaml", "requires", "cleared_cold_water")


def test_undeclared_face_immersion_is_caught(copy: Path) -> None:
    edit(copy / "skills/tipp.yaml", lambda d: d.update(involves=["breath_hold", "intense_exercise"]))
    assert find(check_library(copy), "skills/tipp.yaml", "involves", "cold face immersion")


def test_breathing_for_panic_requires_the_medical_screen(copy: Path) -> None:
    edit(copy / "skills/relaxed-breathing.yaml", lambda d: d.update(medical_screen=False))
    assert find(check_library(copy), "skills/relaxed-breathing.yaml", "medical_screen")


def test_review_fields_go_together(copy: Path) -> None:
    edit(copy / HALT, lambda d: d.update(reviewed_by="Dr. A. Clinician"))
    assert find(check_library(copy), HALT, "reviewed_on", "both or neither")


def test_psychoeducation_alone_may_help_with_nothing(copy: Path) -> None:
    edit(copy / HALT, lambda d: d.update(helps_with=[]))
    assert find(check_library(copy), HALT, "helps_with", "psychoeducation")


def test_a_state_without_skills_is_an_error(copy: Path) -> None:
    for skill_id in ("dear-man", "give-skill", "fast-skill", "anger-meter", "time-out", "s-t-o-p-skill",
                     "check-the-facts"):
        (copy / f"skills/{skill_id}.yaml").unlink()
    assert find(check_library(copy), "skills/", "helps_with", "no skill helps with 'conflict'")


def test_triggers_must_be_normalised_and_shared_ones_warn(copy: Path) -> None:
    edit(copy / HALT, lambda d: d["triggers"].__setitem__(0, "Can't sleep"))
    edit(copy / "skills/four-ds.yaml", lambda d: d["triggers"].__setitem__(0, "so lonely"))
    problems = check_library(copy)
    assert find(problems, HALT, "triggers[0]", "'cant sleep'")
    shared = find(problems, "skills/four-ds.yaml", "triggers", "reach-out")
    assert shared and shared[0].severity == "warning"


def test_discreet_prompt_must_not_reveal_the_subject(copy: Path) -> None:
    edit(copy / HALT, lambda d: d.update(practice_prompt_discreet="Craving check-in time"))
    assert find(check_library(copy), HALT, "practice_prompt_discreet", "lock screen")


def test_source_urls_must_be_http(copy: Path) -> None:
    edit(copy / HALT, lambda d: d["sources"][0].update(url="ftp://example.org/halt"))
    assert find(check_library(copy), HALT, "sources[0].url", "http")


def test_yaml_quirks_are_reported_not_coerced(copy: Path) -> None:
    path = copy / HALT
    path.write_text(path.read_text(encoding="utf-8").replace("  - feeling off", "  - no"), encoding="utf-8")
    assert find(check_library(copy), HALT, "triggers[0]", "valid string")


def test_duplicate_keys_and_broken_yaml_are_reported_with_the_file(copy: Path) -> None:
    path = copy / HALT
    path.write_text(path.read_text(encoding="utf-8") + "title: Again\n", encoding="utf-8")
    (copy / "skills/four-ds.yaml").write_text("id: four-ds\nsteps: [unclosed\n", encoding="utf-8")
    (copy / "skills/urge-surfing.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    problems = check_library(copy)
    assert find(problems, HALT, "", "duplicate key 'title'")
    assert find(problems, "skills/four-ds.yaml", "", "not valid YAML")
    assert find(problems, "skills/urge-surfing.yaml", "", "mapping")


# --- crisis-file rules --------------------------------------------------------------------------


def test_start_is_exempt_only_where_documented(copy: Path) -> None:
    assert not check_library(copy, today=VERIFIED)  # US violence line says "text START to 88788"
    edit(copy / "crisis/US.yaml", lambda d: d.update(summary="Text START to 741741 now."))
    edit(copy / "crisis/GB.yaml", lambda d: d.update(violence="Text STOP to 85258."))
    problems = check_library(copy)
    assert find(problems, "crisis/US.yaml", "summary", "START")
    assert find(problems, "crisis/GB.yaml", "violence", "'STOP'")


def test_non_us_short_code_is_caught_anywhere_in_the_file(copy: Path) -> None:
    edit(copy / "crisis/GB.yaml", lambda d: d["resources"][0].update(notes="Or text 838255"))
    assert find(check_library(copy), "crisis/GB.yaml", "resources[0].notes", "838255")


def test_missing_required_country_and_stale_date(copy: Path) -> None:
    (copy / "crisis/IE.yaml").unlink()
    problems = check_library(copy, today=date(2028, 1, 1))
    assert find(problems, "crisis/IE.yaml", "", "missing")
    stale = find(problems, "crisis/US.yaml", "last_verified", "re-verify")
    assert stale and stale[0].severity == "warning"


def test_country_must_match_file_name(copy: Path) -> None:
    edit(copy / "crisis/AU.yaml", lambda d: d.update(country="NZ"))
    assert find(check_library(copy), "crisis/AU.yaml", "country", "file name")


# --- export -------------------------------------------------------------------------------------


def test_export_is_json_ready_with_every_skill_field(copy: Path) -> None:
    edit(copy / HALT, lambda d: d.update(reviewed_by="Dr. A", reviewed_on=date(2026, 1, 31)))
    lib = load_library(copy)
    exported = export_library(lib)
    decoded = json.loads(json.dumps(exported))
    assert [s["id"] for s in decoded] == sorted(lib.skills)
    halt = next(s for s in decoded if s["id"] == "halt-check")
    assert halt["reviewed_on"] == "2026-01-31"
    for skill in decoded:
        assert set(skill) == set(skills_module.Skill.model_fields)
        assert skill["title"] and skill["category"] in CATEGORIES and skill["steps"]
        assert isinstance(skill["helps_with"], list)
        assert all(src["url"].startswith(("http://", "https://")) for src in skill["sources"])


# --- lapse (has just used, drunk or gambled again) and state-specific messages -----------------


def test_lapse_is_a_state_with_at_least_four_routed_skills(library: Library) -> None:
    assert "lapse" in STATES
    lapse = [s.id for s in library.for_state("lapse")]
    assert len(lapse) >= 4, lapse
    assert {"after-a-slip", "overdose-safety", "chain-analysis-lite", "reach-out-after-slip"} <= set(lapse)
    # Skills written for lapses come before the general ones that also list it.
    assert lapse[:4] == sorted(lapse[:4])
    assert all(library.skill(sid).helps_with[0] == "lapse" for sid in lapse[:4])


def test_overdose_safety_names_naloxone_911_and_never_use_alone(library: Library) -> None:
    text = " ".join(library.skill("overdose-safety").steps)
    for needed in ("naloxone", "Narcan", "911", "1-800-484-3731", "tolerance", "fentanyl", "benzos", "doctor"):
        assert needed.lower() in text.lower(), needed


@pytest.mark.parametrize("state", STATES)
def test_every_state_has_a_list_of_short_validation_lines(library: Library, state: str) -> None:
    lines = library.messages_list(f"validate_{state}")
    assert isinstance(library.messages[f"validate_{state}"], list)
    assert len(lines) >= 4
    assert len(set(lines)) == len(lines)
    for line in lines:
        assert is_gsm7(line) and len(line) <= 80, line
        assert "?" not in line and "{" not in line, line


def test_about_program_slip_ack_and_none_invite(library: Library) -> None:
    about = library.message("about_program", program="Riverside IOP")
    assert "Riverside IOP" in about and segments(about) <= 2
    for command in ("MENU", "HELP", "PLAN"):
        assert command in about
    slip = library.message("slip_ack")
    assert "counselor" in slip and "alert" in slip and segments(slip) <= 2
    invites = library.messages_list("none_invite")
    assert len(invites) == 3 and all("MENU" in v for v in invites)
    assert "counselor_lapse_notice" not in library.messages
