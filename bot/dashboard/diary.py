"""A client's diary card: the week as a grid (days x items), the triggers they noted, and the
card's settings (on or off, and its local time). Own clients only (`client_or_404`); every view
and change is written to the audit log. The grid is `bot.diary.week_grid`; the partial template
`_client_diary.html` renders it on this page and on the client's record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from .. import diary, inbound, outbox, records
from ..conversation import allowed_time, parse_time
from ..models import ACTIVE, Participant
from ..nudges import NUDGE_KIND
from . import bp
from .access import audit, client_or_404, db, now

# How far back ?week= may go (a mistyped year must not build a page for the year 1).
OLDEST_WEEK = timedelta(days=366 * 5)


class DiarySettingsForm(FlaskForm):
    diary_enabled = BooleanField("Send the evening diary card")
    diary_time = StringField("Diary card time", validators=[DataRequired(message="Enter a time like 20:00."),
                                                            Length(max=16)],
                             render_kw={"type": "time"},
                             description="The client's local time; it must be within the hours texts are allowed.")


@dataclass(frozen=True)
class _Page:
    participant: Participant
    grid: diary.WeekGrid
    today: date


def _library() -> Any:
    return current_app.extensions["library"]


def _week_end(raw: str | None, today: date) -> date:
    """The last day of the week shown: ?week=YYYY-MM-DD, never after today; today by default."""
    try:
        wanted = date.fromisoformat((raw or "").strip())
    except ValueError:
        return today
    return min(max(wanted, today - OLDEST_WEEK), today)


def _read(participant_id: int, week: str | None, *, audited: bool) -> _Page:
    card = _library().diary

    def read(s: Session) -> _Page:
        participant = client_or_404(s, participant_id)
        today = records.local_date(now(), records.zone_of(participant.timezone))
        end = _week_end(week, today)
        if audited:
            audit(s, "view_diary", participant.id, week=end.isoformat())
        return _Page(participant, diary.week_grid(s, participant.id, end, card=card), today)

    page: _Page = db().run(read)
    return page


def _render(page: _Page, form: DiarySettingsForm, status: int = 200) -> tuple[str, int]:
    p, grid = page.participant, page.grid
    later = grid.end + timedelta(days=7)
    return render_template(
        "dashboard/client_diary.html", p=p, grid=grid, form=form, label=p.name or f"Client {p.id}",
        earlier=grid.end - timedelta(days=7), later=min(later, page.today) if grid.end < page.today else None,
        quiet=f"{p.quiet_start}-{p.quiet_end}",
    ), status


@bp.get("/clients/<int:participant_id>/diary")
@login_required
def client_diary(participant_id: int) -> tuple[str, int]:
    page = _read(participant_id, request.args.get("week"), audited=True)
    p = page.participant
    form = DiarySettingsForm(data={"diary_enabled": p.diary_enabled, "diary_time": p.diary_time})
    return _render(page, form)


@bp.post("/clients/<int:participant_id>/diary/settings")
@login_required
def client_diary_settings(participant_id: int) -> Any:
    form = DiarySettingsForm()  # the CSRF token is checked app-wide (CSRFProtect) before this runs
    current = _read(participant_id, None, audited=False)
    if not form.validate_on_submit():
        return _render(current, form, 400)
    parsed = parse_time(form.diary_time.data or "")
    p = current.participant
    if parsed is None:
        form.diary_time.errors = [*form.diary_time.errors, "Enter a time like 20:00 or 8pm."]
        return _render(current, form, 400)
    if not allowed_time(parsed, p.quiet_start, p.quiet_end):
        form.diary_time.errors = [*form.diary_time.errors, f"Texts to this client are allowed only from "
                                                           f"{p.quiet_start} to {p.quiet_end}: pick a time "
                                                           "in that window."]
        return _render(current, form, 400)
    enabled = bool(form.diary_enabled.data)
    library = _library()
    program = current_app.config["PROGRAM_NAME"]

    def save(s: Session) -> tuple[list[str], int | None]:
        participant = client_or_404(s, participant_id)
        changed = [name for name, old, new in (("diary_enabled", participant.diary_enabled, enabled),
                                               ("diary_time", participant.diary_time, parsed)) if old != new]
        turned_on = enabled and not participant.diary_enabled
        participant.diary_enabled = enabled
        participant.diary_time = parsed
        audit(s, "diary_settings", participant.id, fields=changed, enabled=enabled, time=parsed)
        if not (turned_on and participant.status == ACTIVE):
            return changed, None
        # Tell the client, so the first card is no surprise (sent as a nudge: within quiet hours).
        body = library.message("diary_on_by_counselor", program=program, time=diary.display_time(parsed),
                               total=len(diary.card_of(library).questions))
        row = outbox.enqueue(s, to=participant.phone, body=body, kind=NUDGE_KIND, now=now(),
                             participant_id=participant.id)
        return changed, row.id

    changed, outbox_id = db().run(save)
    if outbox_id is not None:
        inbound.deliver_now(current_app._get_current_object(), [outbox_id])  # type: ignore[attr-defined]
    if not changed:
        flash("Nothing changed.", "info")
    elif enabled:
        flash(f"The diary card is on: asked at {parsed}, the client's local time"
              + (", and the client was told by text." if outbox_id is not None else "."), "success")
    else:
        flash("The diary card is off.", "success")
    return _back(participant_id)


def _back(participant_id: int) -> BaseResponse:
    return redirect(url_for("dashboard.client_diary", participant_id=participant_id))
