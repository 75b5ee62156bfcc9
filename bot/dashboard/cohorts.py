"""Therapy groups (cohorts): the list, creating and editing a group, its members, and a text to
the whole group (a broadcast, previewed with its segments and estimated cost before it is sent).

Groups belong to the program: every counselor sees every group, but adds, removes and texts only
their own clients (an admin: anyone). Editing a group's settings is for its owner and admins. The
checks and the sending live in `bot.broadcast` and `bot.cohorts` (no Flask).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import ColumnElement, case, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, HiddenField, IntegerField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange

from .. import broadcast, inbound, roster
from .. import cohorts as groups
from ..models import SENT, Cohort, Counselor, Outbox, Participant
from ..nudges import zone_for
from ..records import DAY_NAMES, days_text
from ..sms import mask_phone
from . import bp
from .access import audit, client_or_404, db, now

# --- helpers -----------------------------------------------------------------------------------------


def _library() -> Any:
    return current_app.extensions["library"]


def _program() -> str:
    return str(current_app.config.get("PROGRAM_NAME") or "IOP Coping Skills")


def _price() -> Any:
    return broadcast.segment_price(current_app.config.get("SMS_SEGMENT_PRICE", broadcast.DEFAULT_SEGMENT_PRICE))


def _client_url(participant_id: int) -> str:
    if "dashboard.client" in current_app.view_functions:
        try:
            return url_for("dashboard.client", participant_id=participant_id)
        except BuildError:
            pass
    return f"{url_for('dashboard.clients')}/{participant_id}"


def _require_form() -> None:
    """Every change is a form post carrying the page's CSRF token."""
    if not FlaskForm().validate_on_submit():
        abort(400)


def cohort_or_404(session: Session, cohort_id: int) -> Cohort:
    cohort = session.get(Cohort, cohort_id)
    if cohort is None:
        abort(404)
    return cohort


def can_edit(cohort: Cohort) -> bool:
    return bool(current_user.is_admin or cohort.counselor_id == current_user.id)


def days_label(digits: str) -> str:
    return ", ".join(DAY_NAMES[int(d)].title() for d in digits if d.isdigit() and int(d) < 7)


def until(moment: datetime, current: datetime) -> str:
    """ "in 45 min", "in 3 h", "in 2 d"."""
    minutes = max(int((moment - current).total_seconds() // 60), 0)
    if minutes < 60:
        return f"in {minutes} min"
    if minutes < 48 * 60:
        return f"in {minutes // 60} h"
    return f"in {minutes // (24 * 60)} d"


@dataclass(frozen=True)
class NextMeeting:
    local: datetime  # in the group's zone
    relative: str


def _next_meeting(cohort: Cohort, current: datetime) -> NextMeeting | None:
    meeting = broadcast.next_meeting(cohort.timezone, cohort.meeting_days, cohort.meeting_time, current, cohort.id)
    if meeting is None:
        return None
    return NextMeeting(meeting.starts_at.astimezone(zone_for(cohort.timezone)), until(meeting.starts_at, current))


@dataclass(frozen=True)
class CohortOption:
    id: int
    name: str


def cohort_options() -> list[CohortOption]:
    """Every group, by name (inactive ones marked): the choices of the client page's group form."""
    with db().session() as s:
        return [CohortOption(c.id, c.name if c.active else f"{c.name} (inactive)")
                for c in s.scalars(select(Cohort).order_by(Cohort.active.desc(), Cohort.name))]


bp.add_app_template_global(cohort_options, "cohort_options")


# --- the list ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRow:
    id: int
    name: str
    days: str
    meeting_time: str
    timezone: str
    reminder_minutes_before: int
    active: bool
    owner: str
    members: int
    mine: int
    next_meeting: NextMeeting | None


@bp.get("/cohorts")
@login_required
def cohorts() -> str:
    moment = now()
    with db().session() as s:
        counts = {row.cohort_id: (int(row.members), int(row.mine or 0)) for row in s.execute(
            select(Participant.cohort_id, func.count(Participant.id).label("members"),
                   func.sum(case((Participant.counselor_id == current_user.id, 1), else_=0)).label("mine"))
            .where(Participant.cohort_id.is_not(None)).group_by(Participant.cohort_id))}
        owners = {cid: name for cid, name in s.execute(select(Counselor.id, Counselor.name))}
        rows = [
            GroupRow(c.id, c.name, days_label(c.meeting_days), c.meeting_time, c.timezone, c.reminder_minutes_before,
                     c.active, owners.get(c.counselor_id or 0, "—"), *counts.get(c.id, (0, 0)),
                     next_meeting=_next_meeting(c, moment) if c.active else None)
            for c in s.scalars(select(Cohort).order_by(Cohort.active.desc(), Cohort.name))
        ]
    return render_template("dashboard/cohorts.html", rows=rows)


# --- creating and editing ------------------------------------------------------------------------------


class CohortForm(FlaskForm):
    name = StringField("Group name", validators=[InputRequired(message="Enter a name for the group."),
                                                 Length(max=120)],
                       render_kw={"autocomplete": "off"},
                       description="Members see it in every reminder, so keep it neutral (e.g. Tuesday group).")
    meeting_days = StringField("Meeting days", validators=[InputRequired(message="Enter at least one meeting day."),
                                                           Length(max=60)],
                               render_kw={"autocomplete": "off"},
                               description="e.g. mon,wed,thu or mon-fri or weekdays.")
    meeting_time = StringField("Meeting time", validators=[InputRequired(message="Enter the meeting time."),
                                                           Length(max=16)],
                               render_kw={"type": "time"}, description="In the group's time zone, e.g. 18:00.")
    timezone = StringField("Group time zone", default="America/New_York",
                           validators=[InputRequired(message="Enter a time zone."), Length(max=64)],
                           render_kw={"list": "zones", "autocomplete": "off"},
                           description="An IANA zone name, e.g. America/Chicago. Members far away are reminded "
                                       "at the right time in their own zone.")
    reminder_text = TextAreaField("Reminder text", validators=[Length(max=500)],
                                  description="Added after “<program>: reminder, <group> meets <day time zone>.” "
                                              "e.g. Room 4, bring your diary card.")
    reminder_minutes_before = IntegerField(
        "Remind this many minutes before", default=60,
        validators=[InputRequired(message="Enter a number of minutes."),
                    NumberRange(0, groups.MAX_MINUTES_BEFORE,
                                f"Between 0 and {groups.MAX_MINUTES_BEFORE} minutes (two days).")],
        description="A reminder that would fall in a member's quiet hours moves to the edge of their allowed hours.")
    active = BooleanField("Active: members get reminders")


def _check(form: CohortForm, s: Session, cohort_id: int | None) -> broadcast.SettingsCheck:
    """The form's own rules, then the domain's; each message next to its field (one per field)."""
    form.validate()
    check = broadcast.check_settings(
        s, _library(), _program(), name=form.name.data or "", meeting_days=form.meeting_days.data or "",
        meeting_time=form.meeting_time.data or "", timezone=form.timezone.data or "",
        reminder_text=form.reminder_text.data or "", reminder_minutes_before=form.reminder_minutes_before.data,
        now=now(), cohort_id=cohort_id)
    for name, message in check.errors.items():
        target = form[name]
        if not target.errors:
            target.errors = [message]
    return check


def _saved_message(name: str, stats: broadcast.TextStats | None, verb: str) -> tuple[str, str]:
    if stats is None:
        return f"Group “{name}” {verb}.", "success"
    size = f"{stats.segments} SMS segment{'s' if stats.segments != 1 else ''} ({stats.encoding})"
    if stats.segments > 1:
        return (f"Group “{name}” {verb}. Note: each reminder is {size}, so it costs {stats.segments} texts per "
                "member; a shorter reminder text fits one.", "info")
    return f"Group “{name}” {verb}. Each reminder is {size}.", "success"


@bp.route("/cohorts/new", methods=["GET", "POST"])
@login_required
def cohort_new() -> Any:
    form = CohortForm()
    del form.active
    if form.is_submitted():
        with db().session() as s:
            check = _check(form, s, None)
        settings = check.settings
        if not form.errors and settings is not None:
            def create(s: Session) -> int:
                cohort = Cohort(name=settings.name, meeting_days=settings.meeting_days,
                                meeting_time=settings.meeting_time, timezone=settings.timezone,
                                reminder_text=settings.reminder_text,
                                reminder_minutes_before=settings.reminder_minutes_before,
                                counselor_id=current_user.id, active=True, created_at=now())
                s.add(cohort)
                s.flush()
                audit(s, "cohort_create", None, cohort=cohort.id)
                return int(cohort.id)

            try:
                cohort_id = db().run(create)
            except IntegrityError:  # the same name created at the same moment by someone else
                form.name.errors = [f"A group named “{settings.name}” already exists; choose another name."]
            else:
                flash(*_saved_message(settings.name, check.reminder, "created"))
                return redirect(url_for("dashboard.cohort", cohort_id=cohort_id))
    status = 422 if form.is_submitted() else 200
    return render_template("dashboard/cohort_new.html", form=form, cohort=None, zones=roster.COMMON_ZONES), status


@bp.route("/cohorts/<int:cohort_id>/edit", methods=["GET", "POST"])
@login_required
def cohort_edit(cohort_id: int) -> Any:
    with db().session() as s:
        cohort = cohort_or_404(s, cohort_id)
    if not can_edit(cohort):
        abort(403)
    form = CohortForm(data={"name": cohort.name, "meeting_days": days_text(cohort.meeting_days),
                            "meeting_time": cohort.meeting_time, "timezone": cohort.timezone,
                            "reminder_text": cohort.reminder_text,
                            "reminder_minutes_before": cohort.reminder_minutes_before, "active": cohort.active})
    if form.is_submitted():
        with db().session() as s:
            check = _check(form, s, cohort_id)
        settings = check.settings
        if not form.errors and settings is not None:
            active = bool(form.active.data)

            def save(s: Session) -> list[str]:
                row = cohort_or_404(s, cohort_id)
                values = {"name": settings.name, "meeting_days": settings.meeting_days,
                          "meeting_time": settings.meeting_time, "timezone": settings.timezone,
                          "reminder_text": settings.reminder_text,
                          "reminder_minutes_before": settings.reminder_minutes_before, "active": active}
                changed = [key for key, value in values.items() if getattr(row, key) != value]
                for key in changed:
                    setattr(row, key, values[key])
                if changed:
                    audit(s, "cohort_update", None, cohort=row.id, changed=changed)
                return changed

            try:
                changed = db().run(save)
            except IntegrityError:
                form.name.errors = [f"A group named “{settings.name}” already exists; choose another name."]
            else:
                if changed:
                    flash(*_saved_message(settings.name, check.reminder, "saved"))
                else:
                    flash("Nothing changed.", "info")
                return redirect(url_for("dashboard.cohort", cohort_id=cohort_id))
    status = 422 if form.is_submitted() else 200
    return render_template("dashboard/cohort_new.html", form=form, cohort=cohort, zones=roster.COMMON_ZONES), status


# --- one group and its members -------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    id: int
    label: str
    masked_phone: str
    status_label: str
    counselor: str
    texts: str | None  # why they get no texts now (None: they do)


@dataclass(frozen=True)
class GroupView:
    cohort: Cohort
    owner: str
    members: list[MemberRow]
    others: int  # members who are other counselors' clients
    candidates: list[tuple[int, str]]  # my clients in no group
    reminder: broadcast.TextStats | None


def _mine() -> ColumnElement[bool]:
    """The clients the signed-in counselor may see and change (an admin: all), as in `access`."""
    return true() if current_user.is_admin else Participant.counselor_id == current_user.id


def _status(participant: Participant, moment: datetime) -> str:
    status = roster.status_of(participant, moment)
    return roster.STATUS_LABELS.get(status, status)


@bp.get("/cohorts/<int:cohort_id>")
@login_required
def cohort(cohort_id: int) -> str:
    moment = now()

    def read(s: Session) -> GroupView:
        group = cohort_or_404(s, cohort_id)
        names = {cid: name for cid, name in s.execute(select(Counselor.id, Counselor.name))}
        members = list(s.scalars(select(Participant).where(Participant.cohort_id == group.id, _mine())
                                 .order_by(Participant.name, Participant.id)))
        total = int(s.scalar(select(func.count(Participant.id)).where(Participant.cohort_id == group.id)) or 0)
        candidates = [(p.id, f"{broadcast.member_label(p)} ({_status(p, moment)})")
                      for p in s.scalars(select(Participant).where(Participant.cohort_id.is_(None), _mine())
                                         .order_by(Participant.name, Participant.id))]
        rows = [MemberRow(p.id, broadcast.member_label(p), mask_phone(p.phone),
                          _status(p, moment),
                          names.get(p.counselor_id, "—"), broadcast.skip_reason(p, moment)) for p in members]
        settings = broadcast.GroupSettings(group.name, group.meeting_days, group.meeting_time, group.timezone,
                                           group.reminder_text, group.reminder_minutes_before)
        return GroupView(group, names.get(group.counselor_id or 0, "—"), rows, total - len(rows), candidates,
                         broadcast.reminder_stats(_library(), _program(), settings, moment))

    view = db().run(read)
    return render_template("dashboard/cohort.html", view=view, c=view.cohort, days=days_label(view.cohort.meeting_days),
                           next_meeting=_next_meeting(view.cohort, moment) if view.cohort.active else None,
                           editable=can_edit(view.cohort), client_url=_client_url)


def _assign(s: Session, participant: Participant, target: Cohort | None) -> tuple[str, str]:
    """Put a client in `target` (None: in no group), audited; the message for the counselor."""
    label = broadcast.member_label(participant)
    before = s.get(Cohort, participant.cohort_id) if participant.cohort_id is not None else None
    if (before.id if before else None) == (target.id if target else None):
        return (f"{label} is already in {target.name}." if target else f"{label} is in no group."), "info"
    participant.cohort_id = target.id if target else None
    if target is None:
        audit(s, "cohort_remove", participant.id, cohort=before.id if before else None)
        return f"{label} is no longer in {before.name if before else 'a group'}.", "success"
    audit(s, "cohort_assign", participant.id, cohort=target.id, previous=before.id if before else None)
    moved = f" (moved from {before.name})" if before else ""
    return f"{label} is now in {target.name}{moved}.", "success"


def _participant_id() -> int:
    raw = (request.form.get("participant_id") or "").strip()
    if not raw.isdigit():
        abort(400)
    return int(raw)


@bp.post("/cohorts/<int:cohort_id>/members")
@login_required
def cohort_add_member(cohort_id: int) -> BaseResponse:
    _require_form()
    if not (request.form.get("participant_id") or "").strip():
        flash("Choose a client to add.", "error")
        return redirect(url_for("dashboard.cohort", cohort_id=cohort_id))
    participant_id = _participant_id()
    message, category = db().run(
        lambda s: _assign(s, client_or_404(s, participant_id), cohort_or_404(s, cohort_id)))
    flash(message, category)
    return redirect(url_for("dashboard.cohort", cohort_id=cohort_id))


@bp.post("/cohorts/<int:cohort_id>/members/<int:participant_id>/remove")
@login_required
def cohort_remove_member(cohort_id: int, participant_id: int) -> BaseResponse:
    _require_form()

    def remove(s: Session) -> tuple[str, str]:
        cohort_or_404(s, cohort_id)
        participant = client_or_404(s, participant_id)
        if participant.cohort_id != cohort_id:
            abort(404)
        return _assign(s, participant, None)

    flash(*db().run(remove))
    return redirect(url_for("dashboard.cohort", cohort_id=cohort_id))


@bp.post("/clients/<int:participant_id>/cohort")
@login_required
def client_cohort(participant_id: int) -> BaseResponse:
    """The client page's group form: `cohort_id`, empty for no group."""
    _require_form()
    raw = (request.form.get("cohort_id") or "").strip()
    if raw and not raw.isdigit():
        abort(400)

    def change(s: Session) -> tuple[str, str]:
        participant = client_or_404(s, participant_id)
        return _assign(s, participant, cohort_or_404(s, int(raw)) if raw else None)

    flash(*db().run(change))
    return redirect(_client_url(participant_id))


# --- a text to the group -------------------------------------------------------------------------------


class BroadcastForm(FlaskForm):
    body = TextAreaField("Text to send", validators=[Length(max=broadcast.MAX_BODY_CHARS)],
                         description="Plain words: no STOP, END, QUIT, CANCEL or UNSUBSCRIBE (carriers unsubscribe "
                                     "anyone who texts those back). Emoji and curly quotes make the text cost more.")
    broadcast_id = HiddenField()
    preview = SubmitField("Preview")
    send = SubmitField("Send now")


def _counselor_scope() -> int | None:
    return None if current_user.is_admin else int(current_user.id)


@bp.route("/cohorts/<int:cohort_id>/broadcast", methods=["GET", "POST"])
@login_required
def cohort_broadcast(cohort_id: int) -> Any:
    form = BroadcastForm()
    with db().session() as s:
        group = cohort_or_404(s, cohort_id)
    plan: broadcast.BroadcastPlan | None = None
    broadcast_id = ""
    if form.is_submitted():
        form.validate()
        problems = broadcast.body_problems(_library(), _program(), form.body.data or "")
        if problems and not form.body.errors:
            form.body.errors = problems
        if not form.errors and form.send.data:
            if not broadcast.valid_broadcast_id(form.broadcast_id.data):
                form.body.errors = ["Preview the text before sending it."]
            else:
                return _send(cohort_id, form.body.data or "", str(form.broadcast_id.data))
        if not form.errors:
            with db().session() as s:
                plan = broadcast.plan_broadcast(s, _library(), _program(), cohort_or_404(s, cohort_id),
                                                form.body.data or "", now=now(), counselor_id=_counselor_scope(),
                                                price=_price())
            broadcast_id = uuid.uuid4().hex
            form.body.data = broadcast.clean_text(form.body.data)
    status = 422 if form.errors else 200
    return render_template("dashboard/cohort_broadcast.html", form=form, c=group, plan=plan,
                           broadcast_id=broadcast_id, now=now(), max_segments=broadcast.MAX_SEGMENTS,
                           default_price=broadcast.DEFAULT_SEGMENT_PRICE,
                           price_configured="SMS_SEGMENT_PRICE" in current_app.config), status


def _send(cohort_id: int, body: str, broadcast_id: str) -> BaseResponse:
    """Recompute who gets it (never trusting the preview), queue once per member, send at once."""
    moment = now()

    def work(s: Session) -> tuple[broadcast.BroadcastPlan, list[int]]:
        group = cohort_or_404(s, cohort_id)
        plan = broadcast.plan_broadcast(s, _library(), _program(), group, body, now=moment,
                                        counselor_id=_counselor_scope(), price=_price())
        ids = broadcast.queue_broadcast(s, plan, broadcast_id, moment)
        if ids:
            audit(s, "cohort_broadcast", None, cohort=group.id, count=len(ids), broadcast=broadcast_id,
                  segments=plan.stats.segments, skipped=len(plan.skipped))
        return plan, ids

    plan, ids = db().run(work)
    back = redirect(url_for("dashboard.cohort", cohort_id=cohort_id))
    if not ids:
        if plan.recipients:
            flash("This text was already sent to the group; it was not sent again.", "info")
        else:
            flash("Nobody in the group can get a text from you now; nothing was sent.", "error")
        return back
    inbound.deliver_now(current_app._get_current_object(), ids)  # type: ignore[attr-defined]
    with db().session() as s:
        rows = s.execute(select(Outbox.status, Outbox.next_attempt_at).where(Outbox.id.in_(ids))).all()
    sent = sum(1 for row in rows if row.status == SENT)
    later = sum(1 for row in rows if row.status != SENT and row.next_attempt_at > moment)
    parts = [f"Sent to {sent} member{'s' if sent != 1 else ''}."]
    if later:
        parts.append(f"{later} will get it when their texting hours begin.")
    waiting = len(ids) - sent - later
    if waiting > 0:
        parts.append(f"{waiting} could not be sent yet; they are retried automatically.")
    flash(" ".join(parts), "success" if waiting <= 0 else "info")
    return back
