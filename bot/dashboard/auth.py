"""Sign-in, sign-out, password change, two-factor set-up and (for admins) counselor accounts."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import segno
from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from .. import accounts
from ..enrollment import EnrollmentError, create_counselor
from ..models import AuditLog, Counselor
from . import bp, login_manager
from .access import db, now


@dataclass(frozen=True)
class User:
    """The signed-in counselor, detached from any database session (Flask-Login's user)."""

    id: int
    email: str
    name: str
    is_admin: bool
    has_totp: bool
    token: str

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        # The token changes on password change and deactivation, ending every older session.
        return f"{self.id}:{self.token}"

    @classmethod
    def of(cls, counselor: Counselor) -> User:
        return cls(counselor.id, counselor.email, counselor.name, counselor.is_admin,
                   bool(counselor.totp_secret), counselor.session_token or "")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    ident, _, token = user_id.partition(":")
    if not ident.isdigit() or not token:
        return None
    with db().session() as s:
        counselor = s.get(Counselor, int(ident))
        if counselor is None or not counselor.active or counselor.session_token != token:
            return None
        return User.of(counselor)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class CodeForm(FlaskForm):
    code = StringField("Six-digit code", validators=[DataRequired(), Length(min=6, max=8)],
                       render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"})


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=accounts.MIN_PASSWORD_LENGTH)])


class CounselorForm(FlaskForm):
    # A plain shape check: wtforms' Email validator needs the email_validator package, not installed.
    email = EmailField("Email", validators=[DataRequired(), Length(max=254), Regexp(
        r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Enter an email address such as name@clinic.org.")])
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    phone = StringField("Phone for crisis alerts", validators=[DataRequired()])
    password = PasswordField("First password", validators=[DataRequired(),
                                                             Length(min=accounts.MIN_PASSWORD_LENGTH)])
    admin = BooleanField("Admin (manages counselors, sees every client)")


_REFUSALS = {
    "invalid": "That email and password do not match an account.",
    "inactive": "That email and password do not match an account.",
    "locked": "Too many failed sign-ins: this account or address is locked for {minutes} minutes.",
    "totp": "That code is not right. Use the newest code from your authenticator app.",
}


def _refusal(error: str) -> str:
    return _REFUSALS[error].format(minutes=int(accounts.FAILURE_WINDOW.total_seconds() // 60))


def _client_address() -> str:
    return request.remote_addr or "unknown"  # behind a proxy, ProxyFix sets it from X-Forwarded-For


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host): an open redirect is a phishing tool. Browsers
    read a backslash as a slash and drop tabs and line breaks (WHATWG URL Standard), so "/\\evil.com"
    and "/<tab>/evil.com" lead off-site too: neither, nor any other control character, is allowed."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target) and not urlsplit(target).netloc):
        return target
    return url_for("dashboard.clients")


@bp.get("/")
def home() -> BaseResponse:
    return redirect(url_for("dashboard.clients"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        result = db().run(lambda s: _sign_in(s, form.email.data or "", form.password.data or ""))
        if result.error == "totp":
            session["pending_2fa"] = [result.counselor_id, now().timestamp()]
            return redirect(url_for("dashboard.login_totp", next=request.args.get("next")))
        if result.user is not None:
            session.permanent = True  # PERMANENT_SESSION_LIFETIME bounds it
            login_user(result.user)
            return redirect(_safe_next(request.args.get("next")))
        return render_template("dashboard/login.html", form=form, error=_refusal(result.error or "invalid")), 401
    return render_template("dashboard/login.html", form=form, error=None)


@dataclass(frozen=True)
class _Outcome:
    user: User | None
    error: str | None = None
    counselor_id: int | None = None


def _sign_in(s: Any, email: str, password: str) -> _Outcome:
    result = accounts.authenticate(s, email, password, address=_client_address(), now=now())
    if result.error == "totp" and result.counselor is not None:
        return _Outcome(None, "totp", result.counselor.id)
    if result.counselor is None:
        return _Outcome(None, result.error)
    return _Outcome(User.of(result.counselor))


# The code must follow the right password within this time; after it, sign-in starts again.
PENDING_2FA_WINDOW = timedelta(minutes=5)


def _pending_2fa() -> int | None:
    """The counselor whose password was right a moment ago in this browser, if any."""
    pending = session.get("pending_2fa")
    if (isinstance(pending, list) and len(pending) == 2 and isinstance(pending[0], int)
            and isinstance(pending[1], int | float)
            and 0 <= now().timestamp() - pending[1] <= PENDING_2FA_WINDOW.total_seconds()):
        return pending[0]
    if session.pop("pending_2fa", None) is not None:
        flash("That took too long: sign in again.", "info")
    return None


@bp.route("/login/2fa", methods=["GET", "POST"])
def login_totp() -> Any:
    pending = _pending_2fa()
    if pending is None:
        return redirect(url_for("dashboard.login", next=request.args.get("next")))
    form = CodeForm()
    if form.validate_on_submit():
        def check(s: Any) -> _Outcome:
            result = accounts.second_factor(s, pending, form.code.data or "", address=_client_address(), now=now())
            return _Outcome(User.of(result.counselor) if result.counselor else None, result.error)

        outcome = db().run(check)
        if outcome.user is not None:
            session.pop("pending_2fa", None)
            session.permanent = True
            login_user(outcome.user)
            return redirect(_safe_next(request.args.get("next")))
        if outcome.error in {"locked", "invalid"}:
            session.pop("pending_2fa", None)
        return render_template("dashboard/login_totp.html", form=form,
                               error=_refusal(outcome.error or "invalid")), 401
    return render_template("dashboard/login_totp.html", form=form, error=None)


@bp.post("/logout")
def logout() -> BaseResponse:
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("dashboard.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    form = PasswordForm()
    if form.validate_on_submit():
        def change(s: Any) -> User | str:
            counselor = s.get(Counselor, current_user.id)
            try:
                accounts.change_password(s, counselor, form.current.data or "", form.new.data or "", now(),
                                         address=_client_address())
            except accounts.AccountError as exc:
                return str(exc)  # and commit: a wrong current password is counted
            return User.of(counselor)

        user = db().run(change)
        if isinstance(user, str):
            form.current.errors = [user]
        else:
            login_user(user)  # this session goes on with the new token; every other one ends
            flash("Password changed. Other signed-in sessions have ended.", "success")
            return redirect(url_for("dashboard.clients"))
    return render_template("dashboard/password.html", form=form)


@bp.route("/account/2fa", methods=["GET", "POST"])
@login_required
def totp_setup() -> Any:
    if current_user.has_totp:
        return render_template("dashboard/totp_setup.html", enabled=True)
    form = CodeForm()
    secret = session.get("totp_secret")
    if not isinstance(secret, str) or request.method == "GET":
        secret = accounts.new_totp_secret()
        session["totp_secret"] = secret
    if form.validate_on_submit():
        def enable(s: Any) -> User:
            counselor = s.get(Counselor, current_user.id)
            accounts.enable_totp(s, counselor, secret, form.code.data or "", now())
            return User.of(counselor)

        try:
            user = db().run(enable)
        except accounts.AccountError as exc:
            form.code.errors = [str(exc)]
        else:
            session.pop("totp_secret", None)
            login_user(user)
            flash("Two-factor sign-in is on.", "success")
            return redirect(url_for("dashboard.clients"))
    uri = accounts.provisioning_uri(secret, current_user.email, current_app.config["PROGRAM_NAME"])
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=2)
    qr = "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()
    return render_template("dashboard/totp_setup.html", enabled=False, form=form, qr=qr, secret=secret)


# --- counselor accounts (admin) ------------------------------------------------------------------


def _admin_only() -> None:
    if not current_user.is_admin:
        abort(404)


@bp.route("/counselors", methods=["GET", "POST"])
@login_required
def counselors() -> Any:
    _admin_only()
    form = CounselorForm()
    if form.validate_on_submit():
        def create(s: Any) -> str:
            counselor = create_counselor(s, email=form.email.data or "", name=form.name.data or "",
                                         phone=form.phone.data or "", password=form.password.data or "",
                                         region=current_app.config["DEFAULT_REGION"], is_admin=bool(form.admin.data))
            s.add(AuditLog(actor=current_user.email, action="counselor_create",
                           detail={"counselor": counselor.email, "admin": counselor.is_admin}, created_at=now()))
            return counselor.email

        try:
            email = db().run(create)
        except EnrollmentError as exc:
            message = str(exc)
            field = form.phone if "phone" in message else form.email if "email" in message else form.password
            field.errors = [message]
        else:
            flash(f"Account {email} created.", "success")
            return redirect(url_for("dashboard.counselors"))
    with db().session() as s:
        rows = list(s.scalars(select(Counselor).order_by(Counselor.name)))
        people = [{"id": c.id, "name": c.name, "email": c.email, "admin": c.is_admin, "active": c.active,
                   "totp": bool(c.totp_secret), "clients": len(c.participants)} for c in rows]
    return render_template("dashboard/counselors.html", form=form, people=people)


@bp.post("/counselors/<int:counselor_id>/active")
@login_required
def counselor_active(counselor_id: int) -> BaseResponse:
    _admin_only()
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    if counselor_id == current_user.id and not active:
        flash("You cannot deactivate your own account.", "error")
        return redirect(url_for("dashboard.counselors"))

    def change(s: Any) -> str:
        counselor = s.get(Counselor, counselor_id)
        if counselor is None:
            abort(404)
        accounts.set_active(s, counselor, active, by=current_user.email, now=now())
        return str(counselor.email)

    email = db().run(change)
    flash(f"{email} is {'active' if active else 'deactivated: signed out everywhere'}.", "success")
    return redirect(url_for("dashboard.counselors"))
