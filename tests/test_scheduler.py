"""The tick and its commands: `flask nudges tick`, the APScheduler job, the background scheduler."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bot import scheduler
from bot.models import CrisisEvent
from bot.scheduler import TICK_JOB_ID, make_blocking_scheduler, parse_now, run_tick, start_background_scheduler
from tests.nudge_fixtures import BACKUP_PHONE, COUNSELOR_PHONE, RecordingSender, add_participant, nudge_rows, utc


def _summary(result: Any) -> dict[str, int]:
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def test_tick_command_with_now_plans_and_sends(app: Any, db: Any, runner: Any, fake_twilio: Any) -> None:
    pid = add_participant(db, phone="+15559000001", nudge_time="09:30")
    result = runner.invoke(args=["nudges", "tick", "--now", "2026-06-01T13:30:00Z"])  # 09:30 in New York
    assert _summary(result) == {"planned": 1, "sent": 1, "retrying": 0, "failed": 0}
    (body,) = fake_twilio.bodies_to("+15559000001")
    assert [r.local_date.isoformat() for r in nudge_rows(db, pid)] == ["2026-06-01"]
    # The same instant again (a replay) sends nothing more.
    assert _summary(runner.invoke(args=["nudges", "tick", "--now", "2026-06-01T09:31:00-04:00"])) == {
        "planned": 0,
        "sent": 0,
        "retrying": 0,
        "failed": 0,
    }
    assert fake_twilio.bodies_to("+15559000001") == [body]


def test_tick_command_uses_the_app_clock(app: Any, db: Any, runner: Any, clock: Any, fake_twilio: Any) -> None:
    clock.set(utc(2026, 11, 27, 15, 0))  # a Friday, 10:00 in New York
    add_participant(db, phone="+15559000002")
    assert _summary(runner.invoke(args=["nudges", "tick"]))["planned"] == 1
    clock.advance(minutes=1)
    assert _summary(runner.invoke(args=["nudges", "tick"]))["planned"] == 0


def test_tick_command_reports_retries_and_failures(app: Any, db: Any, runner: Any, fake_twilio: Any) -> None:
    add_participant(db, phone="+15559000003", nudge_time="09:30")
    add_participant(db, phone="+15559000004", nudge_time="09:30")
    fake_twilio.errors_for["+15559000003"] = (500, 500)
    fake_twilio.errors_for["+15559000004"] = (400, 21211)
    summary = _summary(runner.invoke(args=["nudges", "tick", "--now", "2026-06-01T13:30:00Z"]))
    # the invalid number's counselor notice goes out in the same tick
    assert summary == {"planned": 2, "sent": 1, "retrying": 1, "failed": 1}
    assert len(fake_twilio.bodies_to(COUNSELOR_PHONE)) == 1


def test_tick_command_rejects_a_bad_instant(app: Any, runner: Any) -> None:
    result = runner.invoke(args=["nudges", "tick", "--now", "yesterday"])
    assert result.exit_code == 2
    assert "ISO 8601" in result.output


def test_parse_now() -> None:
    assert parse_now("2026-03-08T07:00Z") == utc(2026, 3, 8, 7, 0)
    assert parse_now("2026-03-08T03:00:00-04:00") == utc(2026, 3, 8, 7, 0)
    assert parse_now("2026-03-08T07:00") == utc(2026, 3, 8, 7, 0)  # naive means UTC
    assert parse_now(None) is None


def test_commands_are_registered(app: Any) -> None:
    assert "scheduler" in app.cli.commands
    assert "tick" in app.cli.commands["nudges"].commands


def test_run_tick_delivers_crisis_realerts_first_and_counts_them(app: Any, db: Any, library: Any) -> None:
    pid = add_participant(db, phone="+15559000005", nudge_time="09:30")
    created = utc(2026, 6, 1, 13, 0)
    db.run(
        lambda s: s.add(
            CrisisEvent(
                participant_id=pid,
                phone="+15559000005",
                level="high",
                categories="suicidal",
                created_at=created,
                alerts_sent=1,
                last_alert_at=created,
            )
        )
    )
    sender = RecordingSender()
    config = {**app.config, "CRISIS_REALERT_MINUTES": 15, "CRISIS_BACKUP_PHONE": BACKUP_PHONE}
    summary = run_tick(db, sender, library, utc(2026, 6, 1, 13, 30), config)
    # two re-alerts, and no nudge: the participant is in an unacknowledged crisis
    assert (summary.planned, summary.sent) == (0, 2)
    assert [to for to, _ in sender.sent] == [COUNSELOR_PHONE, BACKUP_PHONE]


def test_run_tick_needs_an_aware_instant(app: Any, db: Any, library: Any) -> None:
    with pytest.raises(ValueError):
        run_tick(db, RecordingSender(), library, utc(2026, 6, 1).replace(tzinfo=None), app.config)


@pytest.fixture
def library(app: Any) -> Any:
    return app.extensions["library"]


# --- APScheduler wiring -----------------------------------------------------------------------------


def test_blocking_scheduler_has_one_tick_job_with_safe_options(app: Any) -> None:
    (job,) = make_blocking_scheduler(app).get_jobs()
    assert job.id == TICK_JOB_ID
    assert job.trigger.interval == timedelta(minutes=1)
    assert (job.misfire_grace_time, job.coalesce, job.max_instances) == (50, True, 1)
    assert job.func is scheduler.tick_job and job.args == (app,)


def test_registering_the_tick_again_replaces_it(app: Any) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    sched = BackgroundScheduler()
    sched.start(paused=True)
    try:
        scheduler._add_tick_job(sched, app)
        scheduler._add_tick_job(sched, app)  # e.g. a restart with a persistent job store
        assert [j.id for j in sched.get_jobs()] == [TICK_JOB_ID]
    finally:
        sched.shutdown(wait=False)


def test_background_scheduler_starts_once_and_not_in_the_reloader_parent(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    assert start_background_scheduler(app, use_reloader=True) is None  # the watching parent
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    try:
        first = start_background_scheduler(app, use_reloader=True)
        assert first is not None and first.running
        assert start_background_scheduler(app) is first
        assert [j.id for j in first.get_jobs()] == [TICK_JOB_ID]
    finally:
        scheduler.stop_background_scheduler()
    assert scheduler._background is None


def test_tick_job_survives_a_failing_tick(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr(scheduler, "run_tick", boom)
    scheduler.tick_job(app)  # logs, does not raise
