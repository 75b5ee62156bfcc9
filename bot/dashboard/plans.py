"""The safety plan editor (Stanley-Brown sections); the client gets the plan by texting PLAN.

The sections and their order follow the Safety Planning Intervention (Stanley & Brown 2012,
Cognitive and Behavioral Practice 19:256-264). The preview shows `conversation.plan_texts`, the
very function that answers PLAN, so what a counselor sees here is what the client gets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..conversation import PLAN_SECTIONS, plan_texts
from ..models import Counselor, SafetyPlan
from ..segments import encoding, segments
from ..sms import mask_phone
from . import bp
from .access import audit, client_or_404, db, now

# Characters per section: enough for a few names and numbers, short enough to read on a phone in
# a crisis (a full section is two or three texts).
SECTION_MAX = 500

PLAN_FIELDS: tuple[str, ...] = tuple(column for column, _ in PLAN_SECTIONS)


def _clean(value: str | None) -> str:
    # Browsers send a line break as CR LF but count it as one character against maxlength.
    return (value or "").replace("\r\n", "\n").strip()


def _section(label: str, hint: str) -> TextAreaField:
    return TextAreaField(label, description=hint, filters=[_clean], validators=[Length(max=SECTION_MAX)],
                         render_kw={"rows": 3, "maxlength": SECTION_MAX})


class PlanForm(FlaskForm):
    warning_signs = _section(
        "1. Warning signs",
        "Thoughts, images, moods, situations or behaviours that show a crisis may be starting.")
    coping_strategies = _section(
        "2. Internal coping strategies",
        "Things the client can do alone to take their mind off problems, without contacting anyone.")
    distractions = _section(
        "3. People and social settings that provide distraction",
        "Names with phone numbers, and places where the client can be around others.")
    contacts = _section(
        "4. People whom I can ask for help",
        "Family or friends the client can tell they are in crisis: names and phone numbers.")
    professionals = _section(
        "5. Professionals or agencies to contact during a crisis",
        "Clinicians with phone numbers, the local emergency department, and crisis lines (in the US, 988).")
    safe_environment = _section(
        "6. Making the environment safe",
        "Steps to keep lethal means (medications, firearms, other) away or out of reach.")
    reasons_for_living = _section(
        "7. The one thing most important to me and worth living for",
        "In the client's own words.")
    # The plan as it was when this page was loaded: a save over someone else's newer one is stopped.
    version = HiddenField()


class ClearForm(FlaskForm):
    confirm = BooleanField("Yes, delete this safety plan", validators=[DataRequired(
        "Tick the box to confirm: the client will no longer get a plan by texting PLAN.")])


@dataclass(frozen=True)
class PlanPart:
    text: str
    segments: int
    encoding: str


@dataclass(frozen=True)
class PlanPage:
    participant_id: int
    client: str
    values: dict[str, str]
    exists: bool
    version: str
    updated_at: datetime | None
    updated_by: str | None
    texts: list[PlanPart]


def _version(plan: SafetyPlan | None) -> str:
    """Changes with every save (the words, who, when); "new" while there is no plan."""
    if plan is None:
        return "new"
    saved = [getattr(plan, name) or "" for name in PLAN_FIELDS]
    stamp = plan.updated_at.isoformat() if plan.updated_at else ""
    return hashlib.sha256(json.dumps([*saved, plan.updated_by or "", stamp]).encode()).hexdigest()[:24]


def _stored_plan(s: Session, participant_id: int) -> SafetyPlan | None:
    return s.scalar(select(SafetyPlan).where(SafetyPlan.participant_id == participant_id))


def _load(s: Session, participant_id: int) -> PlanPage:
    """The client (404 unless mine, or I am an admin), the stored plan and the texts it sends."""
    participant = client_or_404(s, participant_id)
    plan = _stored_plan(s, participant.id)
    updated_by = None
    if plan is not None and plan.updated_by:
        author = s.scalar(select(Counselor).where(Counselor.email == plan.updated_by))
        updated_by = f"{author.name} ({author.email})" if author is not None else plan.updated_by
    texts = [PlanPart(t, segments(t), encoding(t)) for t in plan_texts(current_app.extensions["library"], plan)]
    return PlanPage(
        participant_id=participant.id, client=participant.name or mask_phone(participant.phone),
        values={name: (getattr(plan, name) or "") if plan else "" for name in PLAN_FIELDS},
        exists=plan is not None, version=_version(plan),
        updated_at=plan.updated_at if plan else None, updated_by=updated_by, texts=texts)


def _render(page: PlanPage, form: PlanForm, clear_form: ClearForm) -> str:
    record_url = (url_for("dashboard.client", participant_id=page.participant_id)
                  if "dashboard.client" in current_app.view_functions else None)
    return render_template("dashboard/plan.html", page=page, form=form, clear_form=clear_form,
                           fields=PLAN_FIELDS, section_max=SECTION_MAX, record_url=record_url)


def _filled_form(page: PlanPage) -> PlanForm:
    return PlanForm(formdata=None, data={**page.values, "version": page.version})


@bp.route("/clients/<int:participant_id>/plan", methods=["GET", "POST"])
@login_required
def plan(participant_id: int) -> Any:
    if request.method == "GET":
        def view(s: Session) -> PlanPage:
            page = _load(s, participant_id)
            audit(s, "view_plan", page.participant_id)
            return page

        page = db().run(view)
        return _render(page, _filled_form(page), ClearForm(formdata=None))
    # The access check comes before the form: another counselor's client is a 404 here too.
    page = db().run(lambda s: _load(s, participant_id))
    form = PlanForm()
    if not form.validate_on_submit():
        return _render(page, form, ClearForm(formdata=None))
    newer = db().run(lambda s: _save(s, participant_id, form))
    if newer is None:
        flash("Safety plan saved. The client gets it by texting PLAN.", "success")
        return _redirect_to_plan(participant_id)
    form.version.data = newer.version  # saving again replaces the newer plan, knowingly
    flash(f"{newer.updated_by or 'Someone'} changed this plan while you were editing. Your text is in the "
          "form and theirs in the preview: save again to replace theirs.", "error")
    return _render(newer, form, ClearForm(formdata=None))


def _save(s: Session, participant_id: int, form: PlanForm) -> PlanPage | None:
    """Store the form; None when saved, or the current page when the plan changed since it was loaded."""
    participant = client_or_404(s, participant_id)
    plan = _stored_plan(s, participant.id)
    if form.version.data and form.version.data != _version(plan):
        return _load(s, participant_id)
    if plan is None:
        plan = SafetyPlan(participant_id=participant.id)
        s.add(plan)
    changed = [name for name in PLAN_FIELDS if (getattr(plan, name) or "") != form[name].data]
    for name in PLAN_FIELDS:
        setattr(plan, name, form[name].data)
    plan.updated_at = now()
    plan.updated_by = current_user.email
    # Which sections changed, never their words: the audit log is no place for the plan itself.
    audit(s, "plan_update", participant.id, sections=changed)
    return None


@bp.post("/clients/<int:participant_id>/plan/clear")
@login_required
def plan_clear(participant_id: int) -> Any:
    page = db().run(lambda s: _load(s, participant_id))
    clear_form = ClearForm()
    if not clear_form.validate_on_submit():
        return _render(page, _filled_form(page), clear_form)

    def clear(s: Session) -> bool:
        participant = client_or_404(s, participant_id)
        plan = _stored_plan(s, participant.id)
        if plan is None:
            return False
        s.delete(plan)
        audit(s, "plan_clear", participant.id)
        return True

    if db().run(clear):
        flash("Safety plan deleted. A client who texts PLAN is now told to ask you for one.", "success")
    else:
        flash("There was no safety plan to delete.", "info")
    return _redirect_to_plan(participant_id)


def _redirect_to_plan(participant_id: int) -> BaseResponse:
    return redirect(url_for("dashboard.plan", participant_id=participant_id))
