"""Operator commands: `flask <command>` from the repository root."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from . import crises, inbound
from .config import ROOT
from .conversation import InboundSms
from .enrollment import EnrollmentError, EnrollmentRequest, create_counselor, enroll, normalise_phone
from .models import Counselor, Outbox, Participant, SafetyPlan
from .skills import check_library, export_library
from .sms import mask_phone

DEMO_COUNSELOR = "demo.counselor@example.org"
DEMO_PARTICIPANT = "+12025550123"


def _services() -> dict[str, Any]:
    return current_app.extensions  # type: ignore[return-value]


def _fail(message: str) -> None:
    raise click.ClickException(message)


def migrate(url: str) -> None:
    """Bring the database schema to the latest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema (runs the migrations)."""
    migrate(current_app.config["DATABASE_URL"])
    click.echo("database is at the latest schema")


counselor_group = AppGroup("counselor", help="Manage counselor accounts.")


@counselor_group.command("create")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--phone", required=True, help="Where crisis alerts are texted.")
@click.option("--password", envvar="COUNSELOR_PASSWORD", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Asked for (hidden, twice) when omitted; read from COUNSELOR_PASSWORD if set. "
                   "A password on the command line stays in the shell history.")
@click.option("--admin", is_flag=True, help="May create and deactivate counselors and see every client.")
def counselor_create(email: str, name: str, phone: str, password: str, admin: bool) -> None:
    db = _services()["db"]
    try:
        counselor = db.run(lambda s: create_counselor(s, email=email, name=name, phone=phone, password=password,
                                                      region=current_app.config["DEFAULT_REGION"], is_admin=admin))
    except EnrollmentError as exc:
        _fail(str(exc))
    click.echo(f"{'admin' if counselor.is_admin else 'counselor'} {counselor.email} created")


@click.command("enroll")
@with_appcontext
@click.argument("phone")
@click.option("--counselor", "counselor_email", required=True, help="The counselor's email.")
@click.option("--name")
@click.option("--timezone", default="America/New_York", show_default=True)
@click.option("--nudge-time", default="10:00", show_default=True, help="HH:MM local time of the daily nudge.")
@click.option("--quiet-start", default="08:00", show_default=True, help="Automated texts allowed from (local).")
@click.option("--quiet-end", default="21:00", show_default=True, help="Automated texts allowed until (local).")
@click.option("--flag", "flags", multiple=True, help="Medical/clearance flag, e.g. heart_condition (repeatable).")
@click.option("--discreet", is_flag=True, help="Nudges in wording that reveals nothing on a lock screen.")
@click.option("--days", "nudge_days", default="daily", show_default=True,
              help="Nudge days: daily, weekdays, mon-fri, mon,wed,fri.")
@click.option("--admission", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--discharge", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--aftercare-days", default=0, show_default=True, type=click.IntRange(0, 365),
              help="Days of nudges after discharge.")
def enroll_command(phone: str, counselor_email: str, name: str | None, timezone: str, nudge_time: str,
                   quiet_start: str, quiet_end: str, flags: tuple[str, ...], discreet: bool,
                   nudge_days: str, admission: Any, discharge: Any, aftercare_days: int) -> None:
    """Enroll a participant and text them the consent invitation."""
    services = _services()
    library = services["library"]
    from .skills import FLAGS

    unknown = sorted(set(flags) - set(FLAGS))
    if unknown:
        _fail(f"unknown flag(s) {', '.join(unknown)}; known: {', '.join(FLAGS)}")
    request = EnrollmentRequest(
        phone=phone, counselor_email=counselor_email, name=name, timezone=timezone, nudge_time=nudge_time,
        quiet_start=quiet_start, quiet_end=quiet_end, flags=flags, discreet=discreet,
        admission_date=admission.date() if admission else None,
        discharge_date=discharge.date() if discharge else None, aftercare_days=aftercare_days,
        nudge_days=nudge_days,
    )
    now = services["clock"]()
    try:
        participant, outbox_id = services["db"].run(
            lambda s: enroll(s, library, request, now=now, region=current_app.config["DEFAULT_REGION"],
                             program_name=current_app.config["PROGRAM_NAME"])
        )
    except EnrollmentError as exc:
        _fail(str(exc))
    inbound.deliver_now(current_app, [outbox_id])
    click.echo(f"enrolled {participant.phone} (invited); consent invitation sent")


@click.command("chat")
@with_appcontext
@click.argument("phone")
def chat(phone: str) -> None:
    """Talk to the bot from the terminal as PHONE, through the same engine as the webhook."""
    services = _services()
    try:
        phone = normalise_phone(phone, current_app.config["DEFAULT_REGION"])
    except EnrollmentError as exc:
        _fail(str(exc))
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo(f"Texting the bot as {phone}. Ctrl-D to finish.")
    for line in sys.stdin:
        text = line.rstrip("\n")
        if not text.strip():
            continue
        now = services["clock"]()
        received = inbound.receive(services["db"], services["make_context"], InboundSms(
            phone=phone, body=text, sid="CLI" + uuid.uuid4().hex), now)
        for reply in received.replies:
            click.echo(f"bot> {reply}")
        inbound.deliver_now(current_app, received.outbox_ids)


crisis_group = AppGroup("crisis", help="Crisis events (until the dashboard exists).")


@crisis_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include acknowledged events.")
def crisis_list(show_all: bool) -> None:
    db = _services()["db"]
    with db.session() as session:
        events = crises.open_events(session)
        names = {p.id: p.name for p in session.scalars(select(Participant))}
        shown = 0
        for event in events:
            if event.acknowledged_at is not None and not show_all:
                continue
            shown += 1
            who = names.get(event.participant_id or -1) or "unknown number"
            state = f"acknowledged by {event.acknowledged_by}" if event.acknowledged_at else "OPEN"
            answer = f" answered {event.answer}" if event.answer else (" unanswered" if event.kind == "check" else "")
            click.echo(f"#{event.id} {event.created_at:%Y-%m-%d %H:%M}Z {event.kind}{answer} {who} "
                       f"{mask_phone(event.phone)} {event.level} [{event.categories}] {state}")
        if not shown:
            click.echo("no open crisis events")


@crisis_group.command("ack")
@click.argument("event_id", type=int)
@click.option("--by", "by_email", required=True, help="The acknowledging counselor's email.")
@click.option("--outcome", type=click.Choice(crises.OUTCOMES), default=None, help="What happened.")
@click.option("--note", default=None, help=f"What was done (at most {crises.NOTE_MAX} characters).")
def crisis_ack(event_id: int, by_email: str, outcome: str | None, note: str | None) -> None:
    """Acknowledge EVENT_ID as the counselor --by (their own clients' events; an admin: any)."""
    services = _services()
    now = services["clock"]()
    try:
        ack = services["db"].run(lambda s: crises.acknowledge(s, event_id, by_email, now, outcome=outcome, note=note,
                                                              channel="cli"))
    except crises.CrisisError as exc:
        _fail(str(exc))
    if not ack.new:
        click.echo(f"crisis event #{ack.event.id} was already acknowledged by {ack.event.acknowledged_by}; unchanged")
        return
    click.echo(f"crisis event #{ack.event.id} acknowledged by {ack.event.acknowledged_by}")


@click.command("classify")
@with_appcontext
@click.option("--explain", is_flag=True, help="Add the cues behind each decision, by layer.")
def classify(explain: bool) -> None:
    """One text per input line; one JSON object per output line.

    `risk` is "crisis", "check" or "none" for the text on its own (no conversation context);
    `crisis` is exactly `risk == "crisis"`. State and skill are given when the risk is "none".
    """
    from . import risk, safety

    services = _services()
    matcher = services["matcher"]
    library = Path(current_app.config["SKILLS_LIBRARY"])
    for line in sys.stdin:
        text = line.rstrip("\n")
        match = matcher.classify(text)
        assessment = risk.assess(text, state=match.lexicon_state, explain=explain, library=library)
        if assessment.tier != risk.NONE:
            state, skill, evidence = "none", None, ()
        else:
            state, evidence = match.state, match.evidence
            ranked = matcher.rank_skills(state, text=text) if state != "none" else []
            skill = ranked[0] if ranked else None
        record: dict[str, Any] = {"text": text, "risk": assessment.tier, "crisis": assessment.tier == risk.CRISIS,
                                  "state": state, "skill": skill}
        if explain:
            rules = assessment.rules
            record["explain"] = {
                "risk_reasons": list(assessment.reasons),  # "rules:...", "model:...", "recovery:...", "vague:..."
                "crisis_level": rules.level,
                "crisis_categories": list(rules.categories),
                "crisis_reasons": list(rules.reasons),
                "crisis_text": safety.canonical(text),  # the text as the crisis rules read it
                "model_probability": None if assessment.model_probability is None
                else round(assessment.model_probability, 3),
                "model_cues": list(assessment.model_cues),  # the n-grams that pushed the model most
                "vague": assessment.vague,  # would be crisis within the context window of recent risk
                "evidence": list(evidence),
            }
        click.echo(json.dumps(record, ensure_ascii=False))


participant_group = AppGroup("participant", help="A participant's data: export it, erase it.")


def _participant_by_phone(session: Any, phone: str) -> Participant:
    try:
        number = normalise_phone(phone, current_app.config["DEFAULT_REGION"])
    except EnrollmentError as exc:
        raise click.ClickException(str(exc)) from None
    participant = session.scalar(select(Participant).where(Participant.phone == number))
    if participant is None:
        raise click.ClickException(f"no participant with number {mask_phone(number)}")
    return participant  # type: ignore[no-any-return]


@participant_group.command("export")
@click.argument("phone")
def participant_export(phone: str) -> None:
    """Print everything stored about the participant with PHONE as JSON."""
    from . import privacy

    with _services()["db"].session() as session:
        data = privacy.export(session, _participant_by_phone(session, phone))
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@participant_group.command("erase")
@click.argument("phone")
@click.option("--by", "by_email", required=True, help="The email of the counselor who erases (audited).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
def participant_erase(phone: str, by_email: str, yes: bool) -> None:
    """Erase the participant with PHONE: messages and texts removed, aggregates kept, audited."""
    from . import privacy

    services = _services()
    now = services["clock"]()

    def work(session: Any) -> dict[str, int]:
        if session.scalar(select(Counselor.id).where(Counselor.email == by_email.strip().lower())) is None:
            raise click.ClickException(f"no counselor with email {by_email}")
        participant = _participant_by_phone(session, phone)
        return privacy.erase(session, participant, by_email, now)

    with services["db"].session() as session:
        _participant_by_phone(session, phone)  # a clear error before asking
    if not yes:
        click.confirm(f"Erase everything {mask_phone(phone)} wrote (messages, exercise and safety-plan texts)? "
                      "This cannot be undone", abort=True)
    counts = services["db"].run(work)
    click.echo("erased: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items())
               + "; aggregates kept")


skills_group = AppGroup("skills", help="The skills library.")


@skills_group.command("check")
def skills_check() -> None:
    """Validate every skill and message file; list every problem at once."""
    problems = check_library(Path(current_app.config["SKILLS_LIBRARY"]), today=_services()["clock"]().date())
    errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
    for problem in problems:
        click.echo(str(problem))
    if errors:
        raise click.ClickException(f"{len(errors)} problem(s) in the skills library")
    library = _services()["library"]
    signed = len(library.skills) - len(library.unreviewed())
    click.echo(f"skills library OK ({len(library.skills)} skills; {signed} of {len(library.skills)} signed off "
               "by a clinician)")


@skills_group.command("export")
@click.option("--json", "as_json", is_flag=True, required=True, help="Print the library as JSON.")
def skills_export(as_json: bool) -> None:
    click.echo(json.dumps(export_library(_services()["library"]), indent=2, ensure_ascii=False))


plan_group = AppGroup("plan", help="Participants' safety plans (until the dashboard exists).")


@plan_group.command("set")
@click.argument("phone")
@click.option("--by", "by_email", required=True, help="The counselor's email.")
@click.option("--warning-signs", default=None)
@click.option("--coping", "coping_strategies", default=None)
@click.option("--distractions", default=None, help="People and places that help.")
@click.option("--contacts", default=None, help="People to ask for help, with numbers.")
@click.option("--professionals", default=None)
@click.option("--safe-environment", default=None)
@click.option("--reasons-for-living", default=None, help="What they live for, in their words.")
def plan_set(phone: str, by_email: str, **fields: str | None) -> None:
    services = _services()
    try:
        phone = normalise_phone(phone, current_app.config["DEFAULT_REGION"])
    except EnrollmentError as exc:
        _fail(str(exc))
    now = services["clock"]()

    def work(session: Any) -> None:
        participant = session.scalar(select(Participant).where(Participant.phone == phone))
        if participant is None:
            raise EnrollmentError(f"{mask_phone(phone)} is not enrolled")
        if session.scalar(select(Counselor).where(Counselor.email == by_email.strip().lower())) is None:
            raise EnrollmentError(f"no counselor with email {by_email}")
        plan = session.scalar(select(SafetyPlan).where(SafetyPlan.participant_id == participant.id))
        if plan is None:
            plan = SafetyPlan(participant_id=participant.id)
            session.add(plan)
        for key, value in fields.items():
            if value is not None:
                setattr(plan, key, value.strip())
        plan.updated_at = now
        plan.updated_by = by_email.strip().lower()

    try:
        services["db"].run(work)
    except EnrollmentError as exc:
        _fail(str(exc))
    click.echo("safety plan saved")


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Add a demo counselor and an active demo participant when the database has no counselor."""
    if current_app.config["BOT_ENV"] == "production":
        _fail("seed-demo adds a counselor with a published password: never with BOT_ENV=production")
    click.echo(seed_demo_data(current_app) or "database already has data; nothing seeded")


def seed_demo_data(app: Flask) -> str | None:
    services = app.extensions
    now = services["clock"]()
    library = services["library"]

    def work(session: Any) -> str | None:
        if session.scalar(select(func.count(Counselor.id))):
            return None
        counselor = create_counselor(session, email=DEMO_COUNSELOR, name="Demo Counselor", phone="+12025550100",
                                     password="demo-password-123", region="US", is_admin=True)
        participant, invitation_id = enroll(session, library, EnrollmentRequest(
            phone=DEMO_PARTICIPANT, counselor_email=counselor.email, name="Demo Participant",
            timezone="America/New_York", nudge_time="10:00"), now=now, region="US",
            program_name=app.config["PROGRAM_NAME"], actor="seed")
        # The demo participant starts consented, so the invitation is not sent.
        session.get(Outbox, invitation_id).status = "cancelled"
        participant.status = "active"
        participant.consent_at = now
        participant.consent_method = "demo seed"
        session.add(SafetyPlan(participant_id=participant.id, warning_signs="Skipping meals, staying in bed",
                               coping_strategies="Box breathing, a walk round the block",
                               contacts="Sam (sponsor) 555-0142", professionals="Demo Counselor 555-0100",
                               reasons_for_living="My daughter, finishing my course",
                               updated_at=now, updated_by=counselor.email))
        return (f"seeded demo admin counselor {DEMO_COUNSELOR} (password demo-password-123) and demo participant "
                f"{DEMO_PARTICIPANT}")

    return services["db"].run(work)  # type: ignore[no-any-return]


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True, envvar="HOST", show_envvar=True)
@click.option("--port", default=5000, show_default=True, type=int, envvar="PORT", show_envvar=True)
@click.option("--no-scheduler", is_flag=True, help="Web only (the scheduler runs elsewhere).")
def serve(host: str, port: int, no_scheduler: bool) -> None:
    """The local all-in-one process: migrate, seed an empty database, web + simulator + scheduler."""
    from werkzeug.serving import run_simple

    from .scheduler import start_background_scheduler, stop_background_scheduler

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    migrate(app.config["DATABASE_URL"])
    seeded = None if app.config["BOT_ENV"] == "production" else seed_demo_data(app)
    if seeded:
        click.echo(seeded)
    if not no_scheduler:
        start_background_scheduler(app)
    if app.config.get("SIMULATOR_ENABLED"):
        click.echo(f"simulator: http://{host}:{port}/simulator")
    try:
        run_simple(host, port, app, use_reloader=False, threaded=True)
    finally:
        if not no_scheduler:
            stop_background_scheduler()  # let a running tick finish its sends and records


def init_app(app: Flask) -> None:
    for command in (init_db, counselor_group, enroll_command, chat, crisis_group, classify, skills_group,
                    plan_group, seed_demo, serve, participant_group):
        app.cli.add_command(command)

