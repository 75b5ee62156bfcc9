"""Crisis and check events: the open ones first, one event with the client's number, acknowledgement."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from ..models import CrisisEvent, Participant
from . import bp
from .access import db


def open_count() -> int:
    """Unacknowledged crisis events this counselor may act on (an admin: all)."""
    query = select(func.count(CrisisEvent.id)).where(CrisisEvent.kind == "crisis",
                                                     CrisisEvent.acknowledged_at.is_(None))
    if not current_user.is_admin:
        query = query.join(Participant, Participant.id == CrisisEvent.participant_id).where(
            Participant.counselor_id == current_user.id)
    with db().session() as s:
        return int(s.scalar(query) or 0)


def open_count_context() -> dict[str, Any]:
    if not current_user.is_authenticated:
        return {}
    return {"open_crises": open_count()}


@bp.get("/crises/count")
@login_required
def crisis_count() -> str:
    return render_template("dashboard/_crisis_count.html")


@bp.get("/crises")
@login_required
def crises() -> str:
    return render_template("dashboard/base.html")
