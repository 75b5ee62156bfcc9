"""Operator commands, run the way an operator runs them (Flask's CLI runner)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.models import Counselor, CrisisEvent, Outbox, Participant


def test_counselor_create_and_enroll_sends_the_invitation_before_returning(runner: Any, db: Any,
                                                                             fake_twilio: Any) -> None:
    result = runner.invoke(args=["counselor", "create", "Robin@Clinic.example", "--name", "Robin",
                                 "--phone", "(202) 555-0122", "--password", "a long password"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["enroll", "202-555-0109", "--counselor", "robin@clinic.example", "--name", "Lee",
                                 "--timezone", "America/Chicago", "--nudge-time", "18:30"])
    assert result.exit_code == 0, result.output
    with db.session() as s:
        counselor = s.scalar(select(Counselor))
        participant = s.scalar(select(Participant))
        assert counselor.phone == "+12025550122" and counselor.password_hash.startswith("$argon2")
        assert (participant.phone, participant.status, participant.timezone, participant.nudge_time) == (
            "+12025550109", "invited", "America/Chicago", "18:30")
        assert s.scalar(select(Outbox.status)) == "sent"
    assert len(fake_twilio.bodies_to("+12025550109")) == 1


def test_enroll_rejects_bad_input_clearly(runner: Any, counselor: Any, db: Any) -> None:
    cases = [
        (["enroll", "12", "--counselor", counselor.email], "not a valid phone number"),
        (["enroll", "2025550109", "--counselor", "nobody@x.org"], "no counselor"),
        (["enroll", "2025550109", "--counselor", counselor.email, "--timezone", "Mars/Base"], "IANA"),
        (["enroll", "2025550109", "--counselor", counselor.email, "--nudge-time", "23:00"], "outside"),
        (["enroll", "2025550109", "--counselor", counselor.email, "--flag", "wobbly"], "unknown flag"),
    ]
    for args, message in cases:
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    with db.session() as s:
        assert s.scalar(select(Participant)) is None


def test_enroll_sets_days_and_program_dates(runner: Any, counselor: Any, db: Any) -> None:
    result = runner.invoke(args=["enroll", "2025550109", "--counselor", counselor.email, "--days", "mon-wed,fri",
                                 "--admission", "2026-11-01", "--discharge", "2026-12-15", "--aftercare-days", "30"])
    assert result.exit_code == 0, result.output
    with db.session() as s:
        p = s.scalar(select(Participant))
        assert (p.nudge_days, str(p.admission_date), str(p.discharge_date), p.aftercare_days) == (
            "0124", "2026-11-01", "2026-12-15", 30)
    bad = runner.invoke(args=["enroll", "2025550110", "--counselor", counselor.email, "--days", "someday"])
    assert bad.exit_code != 0 and "days" in bad.output


def test_enrolling_the_same_number_twice_is_refused(runner: Any, counselor: Any) -> None:
    assert runner.invoke(args=["enroll", "2025550109", "--counselor", counselor.email]).exit_code == 0
    result = runner.invoke(args=["enroll", "+1 202 555 0109", "--counselor", counselor.email])
    assert result.exit_code != 0 and "already enrolled" in result.output


def test_chat_talks_through_the_same_engine(runner: Any, participant: Any) -> None:
    result = runner.invoke(args=["chat", participant.phone], input="so anxious\n7\nnext\n")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("bot> ")]
    # a validating line, the skill's intro asking for a rating, then the steps
    assert "0-10" not in lines[0] and "0-10" in lines[1] and "(1/" in lines[2] and "(2/" in lines[3]


def test_crisis_list_and_ack_resume_nudges(runner: Any, db: Any, participant: Any, counselor: Any) -> None:
    runner.invoke(args=["chat", participant.phone], input="i want to die\n")
    listing = runner.invoke(args=["crisis", "list"]).output
    assert "OPEN" in listing and "i want to die" not in listing
    with db.session() as s:
        event_id = s.scalar(select(CrisisEvent.id))
    result = runner.invoke(args=["crisis", "ack", str(event_id), "--by", counselor.email])
    assert result.exit_code == 0, result.output
    with db.session() as s:
        assert s.scalar(select(Participant.crisis_hold)) is False
        assert s.scalar(select(CrisisEvent.acknowledged_by)) == counselor.email
    assert "no open crisis events" in runner.invoke(args=["crisis", "list"]).output
    assert runner.invoke(args=["crisis", "ack", "999", "--by", counselor.email]).exit_code != 0


def test_classify_prints_one_json_object_per_line(runner: Any) -> None:
    result = runner.invoke(args=["classify"], input="so nervous about court\nwhat time is group\ni want to die\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [set(r) for r in rows] == [{"text", "risk", "crisis", "state", "skill"}] * 3
    assert rows[0]["state"] == "anxiety" and rows[0]["skill"] and rows[0]["crisis"] is False
    assert rows[1] == {"text": "what time is group", "risk": "none", "crisis": False, "state": "none", "skill": None}
    assert rows[2]["risk"] == "crisis" and rows[2]["crisis"] is True


def test_classify_explain_adds_the_cues(runner: Any) -> None:
    result = runner.invoke(args=["classify", "--explain"], input="so nervous about court\n")
    row = json.loads(result.output)
    assert row["explain"]["evidence"]
    assert row["explain"]["crisis_text"] == "so nervous about court"


def test_skills_check_passes_and_export_is_json(runner: Any) -> None:
    check = runner.invoke(args=["skills", "check"])
    assert check.exit_code == 0, check.output
    exported = json.loads(runner.invoke(args=["skills", "export", "--json"]).output)
    assert len(exported) >= 36
    assert {"id", "title", "category", "helps_with", "steps", "sources"} <= set(exported[0])


def test_seed_demo_only_fills_an_empty_database(runner: Any, db: Any) -> None:
    assert "seeded" in runner.invoke(args=["seed-demo"]).output
    assert "nothing seeded" in runner.invoke(args=["seed-demo"]).output
    with db.session() as s:
        assert s.scalar(select(Participant.status)) == "active"
