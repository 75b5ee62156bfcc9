"""The skills library: the shipped content is valid, and the checker reports every problem at once.

Broken cases edit a copy of the shipped library under tmp_path, never the real folder.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from bot import skills as skills_module
from bot.config import ROOT
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

VERIFIED = date(2026, 11, 27)  # a "today" for the checks that need one
# The shipped crisis files have not been checked by a person yet: each gives this one warning.
NOT_VERIFIED = "not verified: nobody has called or texted these numbers"


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


def beyond_unverified(problems: list[Problem]) -> list[Problem]:
    """Every problem except the expected "crisis file not verified" warnings."""
    return [p for p in problems if not (p.severity == "warning" and p.field == "last_verified"
                                        and p.message.startswith(NOT_VERIFIED))]


# --- the shipped library ------------------------------------------------------------------------


def test_shipped_library_has_no_problems_but_the_unverified_crisis_files() -> None:
    problems = check_library(DEFAULT_LIBRARY_PATH, today=VERIFIED)
    assert beyond_unverified(problems) == []
    # Nobody has called the numbers yet: one warning per crisis file, never an error.
    assert sorted(p.file for p in problems) == [f"crisis/{c}.yaml" for c in sorted(skills_module.REQUIRED_COUNTRIES)]


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
    assert "(S-T-O-P)" in library.skill("s-t-o-p-skill").title  # plain words first, the hyphenated name second
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
            "consent_reminder": "Reply YES to join. In a crisis: {resources}",  # a dead end names the lines
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
    assert all(p.severity == "error" for p in beyond_unverified(problems) if p.file != "skills/physical-grounding.yaml")

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
    assert beyond_unverified(check_library(copy, today=VERIFIED)) == []


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
                     "check-the-facts", "saying-no"):
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


# --- source deny-list ---------------------------------------------------------------------------


def denied_domains(root: Path = DEFAULT_LIBRARY_PATH) -> list[str]:
    data = yaml.safe_load((root / skills_module.DENIED_SOURCES_FILE).read_text(encoding="utf-8"))
    return [entry["domain"] for entry in data["domains"]]


def test_deny_list_covers_pirate_and_document_sharing_sites() -> None:
    denied = denied_domains()
    for domain in ("zlibrary.cc", "z-lib.org", "libgen.is", "uptodatefree.ir", "scribd.com", "coursehero.com",
                   "studocu.com", "vdocuments.site", "dokumen.tips", "pdfcoffee.com", "vdoc.pub", "epdf.pub",
                   "ebin.pub", "manus.space"):
        assert domain in denied, domain


def test_the_real_library_cites_no_denied_domain(library: Library) -> None:
    denied = denied_domains()
    for skill in library.skills.values():
        for source in skill.sources:
            host = (urlparse(source.url).hostname or "").lower()
            assert not any(host == d or host.endswith("." + d) for d in denied), (skill.id, source.url)
    assert not [p for p in check_library(DEFAULT_LIBRARY_PATH) if "deny-list" in p.message]


@pytest.mark.parametrize(("url", "domain"), [
    ("https://www.zlibrary.cc/dl/some-book", "zlibrary.cc"),
    ("https://pl.scribd.com/document/1/halt", "scribd.com"),  # any subdomain
    ("https://syracusepsychresources.manus.space/dbt/tipp.html", "manus.space"),
    ("HTTPS://VDOCUMENTS.SITE/anger.html", "vdocuments.site"),  # host case does not matter
    ("https://dokumen.tips:443/documents/safety-plan.html", "dokumen.tips"),  # nor a port
])
def test_a_deny_listed_source_fails_the_checker_naming_the_domain(copy: Path, url: str, domain: str) -> None:
    edit(copy / HALT, lambda d: d["sources"][1].update(url=url))
    problems = check_library(copy, today=VERIFIED)
    (problem,) = find(problems, HALT, "sources[1].url", "deny-list")
    assert problem.severity == "error"
    assert problem.message.startswith(f"{domain} is on the deny-list of source domains")
    assert "cite the primary work" in problem.message
    with pytest.raises(LibraryError, match=f"sources\\[1\\].url: error: {re.escape(domain)} is on the deny-list"):
        load_library(copy)


@pytest.mark.parametrize("url", ["https://notscribd.com/x", "https://scribd.com.example.org/x",
                                 "https://www.guilford.com/books/x"])
def test_lookalike_domains_are_not_denied(copy: Path, url: str) -> None:
    edit(copy / HALT, lambda d: d["sources"][0].update(url=url))
    assert not [p for p in check_library(copy) if "deny-list" in p.message]


def test_deny_list_file_is_itself_checked(copy: Path) -> None:
    path = copy / skills_module.DENIED_SOURCES_FILE
    path.write_text("domains:\n  - {domain: https://scribd.com/, why: sharing}\n  - {domain: ebin.pub}\n"
                    "  - {domain: ebin.pub, why: a}\n  - {domain: ebin.pub, why: b}\n", encoding="utf-8")
    problems = check_library(copy)
    assert find(problems, skills_module.DENIED_SOURCES_FILE, "domains[0].domain", "bare lower-case domain")
    assert find(problems, skills_module.DENIED_SOURCES_FILE, "domains[1]", "why")
    assert find(problems, skills_module.DENIED_SOURCES_FILE, "domains[3].domain", "twice")
    path.unlink()
    assert find(check_library(copy), skills_module.DENIED_SOURCES_FILE, "", "missing")


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
    assert not beyond_unverified(check_library(copy, today=VERIFIED))  # US violence: "text START to 88788"
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
    edit(copy / "crisis/US.yaml", mark_verified)
    problems = check_library(copy, today=date(2028, 1, 1))
    assert find(problems, "crisis/IE.yaml", "", "missing")
    stale = find(problems, "crisis/US.yaml", "last_verified", "re-verify")
    assert stale and stale[0].severity == "warning"


def test_country_must_match_file_name(copy: Path) -> None:
    edit(copy / "crisis/AU.yaml", lambda d: d.update(country="NZ"))
    assert find(check_library(copy), "crisis/AU.yaml", "country", "file name")


# --- crisis-resource verification ---------------------------------------------------------------

CHECKER = "Jane Doe, LCSW"


def mark_verified(data: dict[str, Any], when: date = VERIFIED) -> None:
    """What a person does after calling every number: drop the "not verified" notes, sign, date."""
    for resource in data["resources"]:
        if any(w in (resource.get("notes") or "").lower() for w in ("verif", "memory")):
            resource["notes"] = "Checked by phone."
    data.update(owner=CHECKER, last_verified=when, verified_by=CHECKER)


def test_shipped_crisis_files_carry_no_verification_date(library: Library) -> None:
    # Nobody on the team has called the numbers: no date, no verifier, and production is told.
    for code, entry in library.resources.items():
        assert entry.last_verified is None and entry.verified_by is None, code
        assert all(r.verified_on is None and r.verified_by is None for r in entry.resources), code
    assert sorted(library.unverified_resources()) == sorted(skills_module.REQUIRED_COUNTRIES)


def test_unverified_file_is_one_warning_not_an_error(copy: Path) -> None:
    problems = check_library(copy, today=VERIFIED)
    warned = find(problems, "crisis/GB.yaml", "last_verified", NOT_VERIFIED)
    assert len(warned) == 1 and warned[0].severity == "warning"
    assert "9 of 9" in warned[0].message
    load_library(copy)  # the bot still starts (development)


def test_a_verified_file_passes_and_leaves_the_unverified_list(copy: Path) -> None:
    edit(copy / "crisis/US.yaml", mark_verified)
    assert not find(check_library(copy, today=VERIFIED), "crisis/US.yaml", "last_verified")
    lib = load_library(copy)
    assert lib.resources["US"].unverified(VERIFIED) == []
    assert "US" not in lib.unverified_resources(VERIFIED)
    stale = lib.unverified_resources(date(2028, 1, 1))["US"]
    assert stale == ["every number: last verified 2026-11-27, over a year ago"]


@pytest.mark.parametrize("fields", [{"last_verified": VERIFIED}, {"verified_by": CHECKER}])
def test_date_and_verifier_go_together(copy: Path, fields: dict[str, Any]) -> None:
    def half_verified(data: dict[str, Any]) -> None:
        mark_verified(data)
        data.update({"last_verified": None, "verified_by": None, **fields})

    edit(copy / "crisis/US.yaml", half_verified)
    missing = "last_verified" if "verified_by" in fields else "verified_by"
    (problem,) = find(check_library(copy), "crisis/US.yaml", missing, "go together")
    assert problem.severity == "error"


def test_both_verification_fields_must_be_written(copy: Path) -> None:
    edit(copy / "crisis/CA.yaml", lambda d: d.pop("verified_by"))
    assert find(check_library(copy), "crisis/CA.yaml", "verified_by", "required field is missing")


@pytest.mark.parametrize(("file", "wording"), [
    ("crisis/GB.yaml", "Not re-verified"),  # NHS 111, then the domestic abuse lines
    ("crisis/IE.yaml", "Not verified"),  # Pieta, then "from memory" on two more lines
    ("crisis/US.yaml", "Not verified"),  # the numbers added unverified
])
def test_a_date_cannot_sit_next_to_unverified_wording(copy: Path, file: str, wording: str) -> None:
    # Signed and dated, but the notes still say the numbers were not checked.
    edit(copy / file, lambda d: d.update(owner=CHECKER, last_verified=VERIFIED, verified_by=CHECKER))
    problems = check_library(copy, today=VERIFIED)
    (problem,) = find(problems, file, "last_verified", "is set, but line")
    assert problem.severity == "error" and f"says {wording!r} (also line " in problem.message
    with pytest.raises(LibraryError, match="a date means a person checked every number"):
        load_library(copy)


def test_unverified_wording_in_a_comment_also_counts(copy: Path) -> None:
    path = copy / "crisis/XX.yaml"
    edit(path, mark_verified)
    assert not find(check_library(copy), "crisis/XX.yaml", "last_verified")
    text = path.read_text(encoding="utf-8")
    path.write_text("# 112 written from memory\n" + text, encoding="utf-8")
    assert find(check_library(copy), "crisis/XX.yaml", "last_verified", "line 1 says 'from memory'")
    unsigned = text.replace(f"owner: {CHECKER}", "owner: Unassigned, re-verify these before launch")
    path.write_text(unsigned, encoding="utf-8")
    assert find(check_library(copy), "crisis/XX.yaml", "last_verified", "'re-verify these before launch'")


def test_one_resource_can_be_verified_on_its_own(copy: Path) -> None:
    def check_988(data: dict[str, Any]) -> None:
        data["resources"][0].update(verified_on=VERIFIED, verified_by=CHECKER)  # 988: no caveat in its notes
        data["resources"][6].update(verified_on=VERIFIED, verified_by=CHECKER)  # Never Use Alone: "Not verified yet"
        data["resources"][7].update(verified_on=VERIFIED)  # Poison Control: no verifier

    edit(copy / "crisis/US.yaml", check_988)
    problems = check_library(copy, today=VERIFIED)
    assert not find(problems, "crisis/US.yaml", "resources[0].verified_on")
    assert find(problems, "crisis/US.yaml", "resources[6].verified_on", "'Not verified'")
    assert find(problems, "crisis/US.yaml", "resources[7].verified_by", "go together")
    assert find(problems, "crisis/US.yaml", "last_verified", "6 of 8 unchecked")


def test_every_resource_verified_on_its_own_counts_as_verified(copy: Path) -> None:
    def each(data: dict[str, Any]) -> None:
        mark_verified(data)
        data.update(last_verified=None, verified_by=None)
        for resource in data["resources"]:
            resource.update(verified_on=VERIFIED, verified_by=CHECKER)

    edit(copy / "crisis/XX.yaml", each)
    assert not find(check_library(copy, today=VERIFIED), "crisis/XX.yaml", "last_verified")
    assert "XX" not in load_library(copy).unverified_resources(VERIFIED)


def test_verification_dates_in_the_future_are_errors(copy: Path) -> None:
    edit(copy / "crisis/XX.yaml", lambda d: mark_verified(d, date(2030, 1, 1)))
    assert find(check_library(copy, today=VERIFIED), "crisis/XX.yaml", "last_verified", "future")


@pytest.mark.parametrize(("country", "name", "how"), [
    ("US", "Never Use Alone", "1-800-484-3731"),
    ("US", "Poison Control", "1-800-222-1222"),
    ("CA", "National Overdose Response Service", "1-888-688-6677"),
    ("GB", "Domestic Abuse and Forced Marriage Helpline (Scotland)", "0800 027 1234"),
    ("GB", "Live Fear Free (Wales)", "0808 80 10 800"),
    ("GB", "Domestic and Sexual Abuse Helpline (Northern Ireland)", "0808 802 1414"),
    ("GB", "FRANK", "0300 123 6600"),
    ("IE", "Pieta", "1800 247 247"),
    ("IE", "HSE Drugs and Alcohol Helpline", "1800 459 459"),
    ("AU", "Lifeline text", "0477 13 11 14"),
    ("AU", "National Alcohol and Other Drug Hotline", "1800 250 015"),
])
def test_added_numbers_are_listed_and_marked_unverified(library: Library, country: str, name: str, how: str) -> None:
    (resource,) = [r for r in library.crisis_resources(country).resources if r.name.startswith(name)]
    assert how in resource.how
    assert resource.verified_on is None and "not verified yet" in (resource.notes or "").lower()


def test_beyond_blue_is_not_offered_as_a_crisis_line(library: Library) -> None:
    au = library.crisis_resources("AU")
    for line in (au.summary, au.emergency, au.violence):
        assert "Beyond Blue" not in line and "1300 22 4636" not in line
    assert "13 11 14" in au.summary and "000" in au.summary
    (beyond_blue,) = [r for r in au.resources if r.name == "Beyond Blue"]
    assert "not a crisis line" in (beyond_blue.notes or "")


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
    text = " ".join(sent_steps(library, "overdose-safety", "US"))
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


# --- coverage per state and the clinician's pre-sign-off review ---------------------------------

# Medical flags common enough that every state must keep several skills for people who have them.
COMMON_MEDICAL_FLAGS = ("heart_condition", "lung_condition", "pregnancy", "eating_disorder")
NEW_SKILLS = (
    "paired-muscle-relaxation", "that-was-then", "woke-from-a-nightmare", "grieving-a-loss", "self-harm-urges",
    "problem-solving", "worry-time", "saying-no", "burning-bridges", "reasons-for-recovery", "about-moud",
    "gambling-urges",
)


def steps_text(library: Library, skill_id: str) -> str:
    return " ".join(library.skill(skill_id).steps).lower()


def sent_steps(library: Library, skill_id: str, country: str) -> list[str]:
    """The skill's steps as a participant in `country` gets them: placeholders filled."""
    skill = library.skill(skill_id)
    return [skill.step_text(i, library.crisis_resources(country)) for i in range(len(skill.steps))]


@pytest.mark.parametrize("state", STATES)
def test_every_state_has_six_skills_and_three_for_people_with_common_medical_flags(
    library: Library, state: str
) -> None:
    routed = library.for_state(state)
    assert skills_module.MIN_SKILLS_PER_STATE >= 6
    assert len(routed) >= skills_module.MIN_SKILLS_PER_STATE, [s.id for s in routed]
    # Someone with every common flag at once still has at least three, and so does each flag alone.
    usable = [s.id for s in routed if s.allowed_for(COMMON_MEDICAL_FLAGS)]
    assert len(usable) >= 3, usable
    for flag in COMMON_MEDICAL_FLAGS:
        assert flag in FLAGS
        assert len([s for s in routed if s.allowed_for({flag})]) >= 3, flag


def test_the_checker_requires_six_skills_per_state(copy: Path) -> None:
    minimum = skills_module.MIN_SKILLS_PER_STATE
    helpers = sorted(p for p in (copy / "skills").glob("*.yaml")
                     if "dissociation" in yaml.safe_load(p.read_text(encoding="utf-8"))["helps_with"])
    for path in helpers[: len(helpers) - minimum + 1]:
        edit(path, lambda d: d["helps_with"].remove("dissociation"))
    (problem,) = find(check_library(copy), "skills/", "helps_with", "help with 'dissociation'")
    assert problem.severity == "error"
    assert f"only {minimum - 1} skill(s)" in problem.message and f"at least {minimum}" in problem.message
    with pytest.raises(LibraryError, match="help with 'dissociation'"):
        load_library(copy)


def test_tipp_is_cold_not_icy_seated_and_hidden_for_eating_disorders(library: Library) -> None:
    tipp = library.skill("tipp")
    cleared = {"cleared_cold_water", "cleared_intense_exercise"}
    assert "eating_disorder" in tipp.avoid_if
    assert tipp.allowed_for(cleared) and not tipp.allowed_for(cleared | {"eating_disorder"})
    text = steps_text(library, "tipp")
    assert "cold, not icy" in text and "sit" in text and "cool water" not in text
    for word in ("alcohol", "withdrawal", "stimulants", "faint"):
        assert word in text, word
    cautions = " ".join(tipp.cautions).lower()
    for word in ("intoxicated", "withdrawal", "stimulant", "faint", "eating_disorder"):
        assert word in cautions, word


def test_tipps_two_ps_are_a_skill_for_everyone_without_a_breath_hold(library: Library) -> None:
    skill = library.skill("paired-muscle-relaxation")
    assert skill.allowed_for(set(FLAGS)) and skill.allowed_for(set())
    assert not skill.involves and not skill.requires and not skill.avoid_if
    text = steps_text(library, "paired-muscle-relaxation")
    assert "without holding your breath" in text and "relax" in text and "tense" in text
    assert "panic" not in skill.helps_with or skill.medical_screen


def test_abc_please_keeps_prescribed_medicines(library: Library) -> None:
    text = steps_text(library, "abc-please")
    assert "keep taking your prescribed medicines" in text and "opioid use disorder" in text
    assert "drugs not prescribed to you" in text and "mood-altering" not in text


def test_opposite_action_says_grief_fits_the_facts_and_is_not_routed_for_loss(library: Library) -> None:
    skill = library.skill("opposite-action")
    text = steps_text(library, "opposite-action")
    assert "grief after a real loss does" in text and "sadness that doesn't fit the facts" in text
    assert skill.helps_with[0] != "sadness"
    for trigger in skill.triggers:
        assert not any(word in trigger for word in ("grie", "loss", "lost", "died", "passed", "miss")), trigger
    # A grieving text is routed to the grief skill, not to opposite action.
    assert library.skill("grieving-a-loss").helps_with[0] == "sadness"


def test_radical_acceptance_is_not_self_blame(library: Library) -> None:
    assert "or that it was your fault" in steps_text(library, "radical-acceptance")


def test_stimulus_control_warns_of_falls_and_alcohol_or_cannabis_for_sleep(library: Library) -> None:
    text = steps_text(library, "stimulus-control")
    assert "medicine makes you drowsy" in text and "falls" in text
    assert "alcohol or cannabis" in text and "worse" in text


def test_overdose_safety_covers_tolerance_naloxone_company_mixing_and_withdrawal(library: Library) -> None:
    text = steps_text(library, "overdose-safety")
    for needed in ("tolerance", "naloxone", "use alone", "mixing", "benzos", "withdrawal", "all at once", "doctor"):
        assert needed in text, needed


def test_moud_card_names_the_three_medicines_and_sends_to_the_prescriber(library: Library) -> None:
    card = library.skill("about-moud")
    assert card.category == "psychoeducation"
    text = steps_text(library, "about-moud")
    for needed in ("buprenorphine", "methadone", "naltrexone", "safe to keep taking", "prescriber", "overdose"):
        assert needed in text, needed
    urls = " ".join(s.url for s in card.sources)
    assert "samhsa.gov" in urls and "nida.nih.gov" in urls


def test_self_harm_skill_follows_safe_messaging(library: Library) -> None:
    skill = library.skill("self-harm-urges")
    text = " ".join(sent_steps(library, "self-harm-urges", "US")).lower()
    for needed in ("wait 15 minutes", "distance", "ice", "reach out", "988"):
        assert needed in text, needed
    for method in ("cut", "blade", "razor", "burn", "pill", "elastic", "rubber band", "snap"):
        assert method not in text, method
    assert not skill.involves and not skill.avoid_if and not skill.requires


@pytest.mark.parametrize("skill_id", NEW_SKILLS)
def test_new_skills_are_short_sourced_and_await_review(library: Library, skill_id: str) -> None:
    skill = library.skill(skill_id)
    assert 3 <= len(skill.steps) <= 6
    assert skill.triggers and skill.practice_prompt and skill.practice_prompt_discreet
    assert skill.sources and skill.cautions
    assert skill.reviewed_by is None and skill.reviewed_on is None
    assert "breath_hold" not in skill.involves
    assert skill.helps_with or skill.category == "psychoeducation"



def test_every_message_the_code_names_is_required_of_the_library() -> None:
    """A clinician's edit that drops a message the code sends must fail at load, not mid-crisis."""
    import re

    from bot.skills import REQUIRED_MESSAGE_KEYS

    messages = yaml.safe_load((ROOT / "skills_library" / "messages.yaml").read_text())
    named = set()
    for path in (ROOT / "bot").rglob("*.py"):
        named |= {key for key in re.findall(r'"([a-z][a-z_0-9]+)"', path.read_text()) if key in messages}
    assert named - REQUIRED_MESSAGE_KEYS == set()


# --- numbers in steps follow the participant's country ------------------------------------------

SKILLS_WITH_NUMBERS = ("self-harm-urges", "after-a-slip", "overdose-safety", "about-moud")
# What each country's participants get in those skills, and numbers no one outside the US may get.
COUNTRY_NUMBERS = {
    "US": ("988", "911", "1-800-484-3731", "1-800-662-4357"),
    "CA": ("988", "911", "1-888-688-6677"),
    "GB": ("116 123", "999", "0300 123 6600"),
    "IE": ("116 123", "112 or 999", "1800 459 459"),
    "AU": ("13 11 14", "000", "1800 250 015"),
    "XX": ("findahelpline.com", "your local emergency number"),
}
US_ONLY = ("911", "988", "1-800", "SAMHSA", "Never Use Alone", "741741")


def test_no_sent_skill_text_writes_a_crisis_number_itself(library: Library) -> None:
    listed = {re.sub(r"\D", "", m.group(0)) for entry in library.resources.values() for r in entry.resources
              for m in skills_module._NUMBER_RE.finditer(r.how)}
    listed = {n for n in listed if len(n) >= 3}
    for skill in library.skills.values():
        for field, text in skill.sent_texts():
            found = {re.sub(r"\D", "", m.group(0)) for m in skills_module._NUMBER_RE.finditer(text)}
            assert not found & listed, (skill.id, field, text)


@pytest.mark.parametrize("country", sorted(COUNTRY_NUMBERS))
def test_steps_send_the_numbers_of_the_participants_country(library: Library, country: str) -> None:
    sent = " ".join(t for sid in SKILLS_WITH_NUMBERS for t in sent_steps(library, sid, country))
    for number in COUNTRY_NUMBERS[country]:
        assert number in sent, (country, number)
    if country not in ("US", "CA"):
        for number in US_ONLY:
            assert number not in sent, (country, number)
    assert "{" not in sent and "  " not in sent


def test_a_missing_optional_line_leaves_a_step_that_reads_well(library: Library) -> None:
    skill = library.skill("overdose-safety")
    (step,) = [i for i, s in enumerate(skill.steps) if "{overdose_line}" in s]
    assert skill.step_text(step, library.crisis_resources("GB")) == "Try not to use alone."
    assert "1-888-688-6677" in skill.step_text(step, library.crisis_resources("CA"))
    moud = sent_steps(library, "about-moud", "CA")[-1]
    assert moud.endswith("Ask your counselor or prescriber.")


def test_an_unknown_step_placeholder_is_refused(copy: Path) -> None:
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, "Call {hotline} or {emergency_number} now."))
    (problem,) = find(check_library(copy), HALT, "steps[1]", "unknown placeholder {hotline}")
    assert problem.severity == "error" and "{emergency_number}" in problem.message
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, "Call {emergency_number!r} or {resources"))
    assert find(check_library(copy), HALT, "steps[1]", "braces")


def test_a_step_placeholder_some_country_cannot_fill_is_refused(copy: Path) -> None:
    # Mid-sentence, an empty line would leave "Ask your prescriber or ." for Canada and XX.
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, "Ask your prescriber or {drug_helpline} today."))
    (problem,) = find(check_library(copy), HALT, "steps[1]", "{drug_helpline} cannot be filled for CA, XX")
    assert problem.severity == "error"
    # As a sentence of its own it may be left out.
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, "Ask your prescriber. {drug_helpline}"))
    assert beyond_unverified(check_library(copy, today=VERIFIED)) == []
    # Every country has an emergency number (a required field), so it may stand mid-sentence.
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, "If you are hurt, call {emergency_number} now."))
    assert beyond_unverified(check_library(copy, today=VERIFIED)) == []
    edit(copy / "crisis/GB.yaml", lambda d: d.pop("emergency_number"))
    assert find(check_library(copy), "crisis/GB.yaml", "emergency_number", "required")


def test_a_step_too_long_once_filled_for_one_country_is_an_error(copy: Path) -> None:
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, "Breathe. " * 20 + "{resources}"))
    problems = find(check_library(copy), HALT, "steps[1]", "once filled with crisis/XX.yaml")
    assert problems and problems[0].severity == "error"


def test_titles_and_prompts_take_no_placeholders(copy: Path) -> None:
    edit(copy / HALT, lambda d: d.update(practice_prompt="Save {resources} in your phone."))
    assert find(check_library(copy), HALT, "practice_prompt", "only steps")


def test_sent_crisis_lines_name_only_listed_numbers_and_the_same_emergency_number(copy: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data.update(drug_helpline="FRANK gives drugs advice on 0300 123 9999.", emergency_number="112",
                    overdose_line="call the line")

    edit(copy / "crisis/GB.yaml", change)
    problems = check_library(copy)
    assert find(problems, "crisis/GB.yaml", "drug_helpline", "0300 123 9999")
    assert find(problems, "crisis/GB.yaml", "emergency_number", "not in summary")
    assert find(problems, "crisis/GB.yaml", "overdose_line", "whole sentence")


# --- crisis replies and dead ends ----------------------------------------------------------------


def crisis_reply_keys(library: Library) -> list[str]:
    return sorted(k for k in library.messages if (k.startswith(("crisis_", "check_")) or k in
                                                  skills_module.CRISIS_REPLY_KEYS)
                  and k not in skills_module.CRISIS_REPLY_EXEMPT_KEYS)


def test_every_crisis_reply_says_automated_and_alerted_replies_say_so(library: Library) -> None:
    keys = crisis_reply_keys(library)
    assert {"crisis_reply", "crisis_third_party", "help_crisis", "check_question", "check_reask", "check_no",
            "checkin_low"} <= set(keys)
    for key in keys:
        text = " ".join(library.messages_list(key))
        assert "automated" in text and "24/7" in text, key
    for key in skills_module.ALERTED_REPLY_KEYS & library.messages.keys():
        assert "counselor has been alerted" in " ".join(library.messages_list(key)), key
    third = library.message("crisis_third_party", resources="Call 988.", program="IOP")
    assert "automated, not monitored 24/7" in third and "may not see it right away" in third


@pytest.mark.parametrize(("key", "text", "missing"), [
    ("crisis_third_party", "Thanks for looking out for them: {resources} These texts are automated, not "
                           "monitored 24/7.", "alerted"),
    ("crisis_reply", "Help is there right now: {resources} Your counselor has been alerted.", "automated"),
    ("help_crisis", "In a crisis, reach a person now: {resources}", "automated"),
    ("check_no", "Thanks. If that changes: {resources}", "automated"),
    ("crisis_new_reply", "Please call {resources}", "automated"),  # any future crisis_ key
])
def test_a_crisis_reply_without_the_wording_fails_the_check(copy: Path, key: str, text: str, missing: str) -> None:
    write_messages(copy, {key: text})
    (problem,) = find(check_library(copy), "messages.yaml", key, missing)
    assert problem.severity == "error"


def test_lines_sent_only_alongside_a_crisis_reply_are_exempt(copy: Path) -> None:
    write_messages(copy, {"crisis_emergency": "{emergency}", "crisis_plan_hint": "Text PLAN for your plan."})
    assert beyond_unverified(check_library(copy, today=VERIFIED)) == []


@pytest.mark.parametrize("key", sorted(skills_module.DEAD_END_KEYS))
def test_a_dead_end_without_the_crisis_lines_fails_the_check(library: Library, copy: Path, key: str) -> None:
    assert "{resources}" in " ".join(library.messages_list(key))  # as shipped
    shipped = library.messages[key]
    write_messages(copy, {key: "Nothing more here." if isinstance(shipped, str) else ["Nothing more here."]})
    problems = find(check_library(copy), "messages.yaml", key if isinstance(shipped, str) else f"{key}[0]",
                    "{resources}")
    assert problems and problems[0].severity == "error"
    with pytest.raises(LibraryError, match="dead end"):
        load_library(copy)


def test_the_fixed_dead_ends_are_listed() -> None:
    assert {"plan_none", "opted_out_confirmation", "more_exhausted", "menu_invalid", "paused_indefinitely",
            "paused_until"} <= skills_module.DEAD_END_KEYS


# --- sources and spelling -----------------------------------------------------------------------


def test_no_source_is_cited_from_memory(library: Library) -> None:
    for skill in library.skills.values():
        for source in skill.sources:
            assert not skills_module._UNVERIFIED_RE.search(source.citation), (skill.id, source.citation)
    for skill_id in ("about-cbt", "about-mindfulness"):
        urls = [s.url for s in library.skill(skill_id).sources]
        assert any(u.startswith("https://doi.org/10.") for u in urls), skill_id


def test_content_is_spelled_practice() -> None:
    for path in [DEFAULT_LIBRARY_PATH / "messages.yaml", DEFAULT_LIBRARY_PATH / "diary_card.yaml",
                 *(DEFAULT_LIBRARY_PATH / "skills").glob("*.yaml"), *(DEFAULT_LIBRARY_PATH / "crisis").glob("*.yaml")]:
        assert "practis" not in path.read_text(encoding="utf-8").lower(), path.name


def test_practise_in_a_sent_text_is_warned(copy: Path) -> None:
    edit(copy / HALT, lambda d: d["steps"].__setitem__(1, "Practise this once a day."))
    write_messages(copy, {"none_menu": "Text MENU to practise a skill."})
    problems = check_library(copy)
    for file, field in ((HALT, "steps[1]"), ("messages.yaml", "none_menu")):
        (problem,) = find(problems, file, field, "'practice'")
        assert problem.severity == "warning"
