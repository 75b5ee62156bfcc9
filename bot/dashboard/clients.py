"""Clients: the list a counselor lands on, enrollment (one by form, many by CSV).

The list, the checks and the CSV reading live in `bot.roster` (no Flask); here are the forms and
pages. Enrolling goes through `bot.enrollment.enroll`, which writes the audit row and queues the
consent invitation; the invitation is sent right after the commit, as `flask enroll` does.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from .. import inbound, roster
from ..enrollment import EnrollmentError, EnrollmentRequest, enroll
from ..models import SENT, Counselor, Outbox
from ..sms import mask_phone
from ..vocabulary import FLAGS
from . import bp
from .access import db, now

# Invitations sent during the import request; the scheduler's tick sends the rest within a minute.
SEND_NOW_LIMIT = 25


def _client_url(participant_id: int) -> str:
    if "dashboard.client" in current_app.view_functions:
        return url_for("dashboard.client", participant_id=participant_id)
    return f"{url_for('dashboard.clients')}/{participant_id}"


def _crisis_url(event_id: int) -> str:
    if "dashboard.crisis" in current_app.view_functions:
        return url_for("dashboard.crisis", event_id=event_id)
    return url_for("dashboard.crises")


# --- the list ------------------------------------------------------------------------------------


@bp.get("/clients")
@login_required
def clients() -> str:
    search = request.args.get("q", "").strip()[:100]
    moment = now()
    with db().session() as s:
        rows = roster.client_rows(s, counselor_id=None if current_user.is_admin else current_user.id, now=moment,
                                  search=search)
    return render_template("dashboard/clients.html", rows=rows, q=search, now=moment,
                           relative=roster.relative_time, client_url=_client_url, crisis_url=_crisis_url)


# --- enrolling one -------------------------------------------------------------------------------


class MultiCheckboxField(SelectMultipleField):
    """Several choices as checkboxes (the template lays them out in a fieldset)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _time_input(label: str, default: str) -> StringField:
    return StringField(label, default=default, validators=[DataRequired(message="Enter a time like 09:30.")],
                       render_kw={"type": "time"})


class EnrollForm(FlaskForm):
    phone = StringField("Mobile number", validators=[DataRequired(message="Enter the client's mobile number."),
                                                     Length(max=40)],
                        render_kw={"type": "tel", "inputmode": "tel", "autocomplete": "off"},
                        description="Any usual format, e.g. (202) 555-0143 or +1 202 555 0143.")
    name = StringField("Name (optional)", validators=[Optional(), Length(max=120)], render_kw={"autocomplete": "off"})
    timezone = StringField("Time zone", default="America/New_York",
                           validators=[DataRequired(message="Enter a time zone."), Length(max=64)],
                           render_kw={"list": "zones", "autocomplete": "off"},
                           description="An IANA zone name, e.g. America/Chicago.")
    nudge_time = _time_input("Daily practice text at", "10:00")
    nudge_days = MultiCheckboxField("Practice text days", choices=[SelectChoice(*day) for day in roster.DAY_CHOICES],
                                    default=[day for day, _ in roster.DAY_CHOICES])
    quiet_start = _time_input("Texts allowed from", "08:00")
    quiet_end = _time_input("Texts allowed until", "21:00")
    admission_date = DateField("Admission date", validators=[Optional()])
    discharge_date = DateField("Discharge date", validators=[Optional()])
    aftercare_days = IntegerField("Days of practice texts after discharge", default=0,
                                  validators=[Optional(), NumberRange(0, 365, "Between 0 and 365 days.")])
    discreet = BooleanField("Discreet wording: texts that reveal nothing on a lock screen")
    flags = MultiCheckboxField("Medical gate", choices=[SelectChoice(f, roster.flag_label(f)) for f in FLAGS])
    counselor = SelectField("Counselor", coerce=int)


def _active_counselors(s: Session) -> list[tuple[int, str, str]]:
    return [(c.id, c.name, c.email) for c in s.scalars(
        select(Counselor).where(Counselor.active.is_(True)).order_by(Counselor.name))]


@bp.route("/clients/new", methods=["GET", "POST"])
@login_required
def client_new() -> Any:
    form = EnrollForm()
    emails: dict[int, str] = {}
    if current_user.is_admin:
        with db().session() as s:
            people = _active_counselors(s)
        emails = {cid: email for cid, _, email in people}
        form.counselor.choices = [SelectChoice(str(cid), f"{name} ({email})") for cid, name, email in people]
        if not form.is_submitted():
            form.counselor.data = current_user.id
    else:
        del form.counselor
    general: list[str] = []
    if form.is_submitted():
        valid = form.validate()
        counselor_email = emails.get(form.counselor.data, "") if current_user.is_admin else current_user.email
        enrolled = _enroll(form, counselor_email, general, valid=valid)
        if enrolled is not None:
            participant_id, outbox_id, masked = enrolled
            inbound.deliver_now(current_app, [outbox_id])
            with db().session() as s:
                row = s.get(Outbox, outbox_id)
                sent = row is not None and row.status == SENT
            who = (form.name.data or "").strip() or masked
            if sent:
                flash(f"{who} is enrolled: the invitation was texted to {masked}. "
                      "They show as invited until they reply YES.", "success")
            else:
                flash(f"{who} is enrolled. The invitation to {masked} could not be sent yet; "
                      "it is retried automatically.", "info")
            return redirect(_client_url(participant_id))
    status = 422 if form.is_submitted() else 200
    return render_template("dashboard/client_new.html", form=form, general=general,
                           zones=roster.COMMON_ZONES), status


def _enroll(form: EnrollForm, counselor_email: str, general: list[str], *,
            valid: bool) -> tuple[int, int, str] | None:
    """Enroll from a submitted form: (participant id, outbox id, masked number), or None with every
    mistake found next to its field (the form's own checks, then the enrollment rules)."""
    enrollment = EnrollmentRequest(
        phone=form.phone.data or "", counselor_email=counselor_email, name=form.name.data,
        timezone=(form.timezone.data or "").strip(), nudge_time=form.nudge_time.data or "",
        quiet_start=form.quiet_start.data or "", quiet_end=form.quiet_end.data or "",
        flags=tuple(form.flags.data or ()), discreet=bool(form.discreet.data),
        admission_date=form.admission_date.data, discharge_date=form.discharge_date.data,
        aftercare_days=form.aftercare_days.data or 0, nudge_days=",".join(form.nudge_days.data or ()),
    )
    config = current_app.config
    found = roster.problems(enrollment, config["DEFAULT_REGION"])
    if "phone" not in found and not form.phone.errors:
        with db().session() as s:
            taken = roster.enrolled_phones(s, [enrollment.phone], config["DEFAULT_REGION"])
        if taken:
            found["phone"] = f"{mask_phone(taken.pop())} is already enrolled"
    if valid and not found:
        def work(s: Session) -> tuple[int, int, str]:
            participant, outbox_id = enroll(s, current_app.extensions["library"], enrollment, now=now(),
                                            region=config["DEFAULT_REGION"], program_name=config["PROGRAM_NAME"],
                                            actor=current_user.email)
            return participant.id, outbox_id, mask_phone(participant.phone)

        try:
            return db().run(work)
        except EnrollmentError as exc:
            found[exc.field or ""] = str(exc)
        except IntegrityError:  # the same number enrolled at the same moment by someone else
            found["phone"] = "this number is already enrolled"
    for name, message in found.items():
        target = form._fields.get(name)
        if target is not None:
            if not target.errors:  # one message per field: the form's own check comes first
                target.errors = [_sentence(message)]
        else:
            general.append(_sentence(message))
    return None


def _sentence(message: str) -> str:
    message = message.strip()
    return (message[:1].upper() + message[1:]).rstrip(".") + "."


# --- CSV import ----------------------------------------------------------------------------------


class ImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to upload.")],
                     render_kw={"accept": ".csv,text/csv"})


@bp.route("/clients/import", methods=["GET", "POST"])
@login_required
def client_import() -> Any:
    form = ImportForm()
    report: roster.ImportReport | None = None
    if form.validate_on_submit():
        data = form.file.data.read(roster.MAX_BYTES + 1)
        try:
            rows = roster.read_csv(data, allow_counselor=current_user.is_admin)
        except roster.CsvRefused as exc:
            form.file.errors = [*form.file.errors, str(exc)]
        else:
            report = _import(rows, form)
    status = 422 if form.is_submitted() and (report is None or not report.ok) else 200
    return render_template("dashboard/client_import.html", form=form, report=report, columns=roster.COLUMNS,
                           admin_columns=roster.ADMIN_COLUMNS, max_rows=roster.MAX_ROWS,
                           flag_names=FLAGS, client_url=_client_url), status


def _import(rows: list[roster.CsvRow], form: ImportForm) -> roster.ImportReport | None:
    config = current_app.config

    def work(s: Session) -> roster.ImportReport:
        return roster.import_clients(s, current_app.extensions["library"], rows, counselor_email=current_user.email,
                                     region=config["DEFAULT_REGION"], program_name=config["PROGRAM_NAME"],
                                     now=now(), actor=current_user.email)

    try:
        report = db().run(work)
    except roster.ImportRefused as exc:
        return exc.report
    except IntegrityError:  # a number in the file enrolled by someone else meanwhile
        form.file.errors = [*form.file.errors, "A number in the file was enrolled by someone else just now; "
                                               "nothing was imported. Upload the file again to see which."]
        return None
    ids = report.outbox_ids
    inbound.deliver_now(current_app, ids[:SEND_NOW_LIMIT])
    later = len(ids) - min(len(ids), SEND_NOW_LIMIT)
    flash(f"{len(report.rows)} client{'s' if len(report.rows) != 1 else ''} enrolled; invitations "
          + (f"are going out ({later} within the next few minutes)." if later else "sent."), "success")
    return report


@bp.get("/clients/import/sample.csv")
@login_required
def client_import_sample() -> Response:
    return Response(roster.SAMPLE_CSV, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=clients-sample.csv"})
