"""Clients: the list a counselor lands on, enrollment (one or a CSV), one client's record."""

from __future__ import annotations

from flask import render_template
from flask_login import login_required

from . import bp


@bp.get("/clients")
@login_required
def clients() -> str:
    return render_template("dashboard/base.html")
