"""The counselor dashboard: server-rendered pages behind a sign-in.

One blueprint; each concern is a module that adds its routes to it (`auth`, `clients`, `crises`,
`plans`). Pages use vendored, pinned assets (`static/vendor/VENDORED.md`) and no inline script,
so the Content-Security-Policy below can forbid it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, current_app, redirect, request, url_for
from flask_login import LoginManager, current_user

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/dashboard-static")

login_manager = LoginManager()
login_manager.login_view = "dashboard.login"
login_manager.login_message = "Please sign in to see that page."
login_manager.login_message_category = "info"
# "basic", not "strong": a counselor on a phone changes address between networks and must not be
# signed out for it; the session cookie is still bound to the account's current token.
login_manager.session_protection = "basic"

# Pages anyone may load: sign-in, static files, health, metrics (token-protected) and the signed
# Twilio webhooks. Everything else needs a signed-in counselor.
OPEN_ENDPOINTS = frozenset({
    "dashboard.login", "dashboard.login_totp", "dashboard.static", "static", "healthz", "metrics",
    "webhook.sms", "webhook.status",
})

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint and request.endpoint not in OPEN_ENDPOINTS:
        response.headers.setdefault("Cache-Control", "no-store")  # client records stay off shared caches
    return response


def _require_login() -> Any:
    """Every endpoint outside the open list needs a signed-in counselor (and, with REQUIRE_2FA,
    two-factor set up): a page redirects to sign-in, a background request gets 401."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in OPEN_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        if (request.headers.get("HX-Request") or request.is_json
                or request.accept_mimetypes.best == "application/json"):
            return Response("sign in first", 401)
        return login_manager.unauthorized()
    if (current_app.config.get("REQUIRE_2FA") and not current_user.has_totp
            and endpoint not in {"dashboard.totp_setup", "dashboard.logout"}):
        return redirect(url_for("dashboard.totp_setup"))
    return None


def init_app(app: Flask) -> None:
    from . import auth, client_record, clients, cohorts, crises, diary, outcomes, plans  # noqa: F401  (add routes)

    login_manager.init_app(app)
    app.register_blueprint(bp)
    app.before_request(_require_login)
    app.after_request(_security_headers)
    production = app.config.get("BOT_ENV") == "production"
    # Uploads (CSV import) are refused before they are read past this size.
    app.config.setdefault("MAX_CONTENT_LENGTH", 2 * 1024 * 1024)
    # A signed-in session lasts a working day, then sign in again. Flask's config already holds its
    # own defaults (31 days; SameSite None), which setdefault would keep: replace those unless set.
    if app.config.get("PERMANENT_SESSION_LIFETIME") == Flask.default_config["PERMANENT_SESSION_LIFETIME"]:
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=12)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    if production:
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.context_processor(crises.open_count_context)
    app.context_processor(lambda: {"simulator_on": bool(app.config.get("SIMULATOR_ENABLED"))
                                   and "simulator.page" in app.view_functions})
