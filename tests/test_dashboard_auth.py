"""Counselor accounts and the dashboard's security: sign-in and its limits (counted in the database,
so every process sees them), two-factor, password change, admin accounts, sign-out, pages closed to
strangers and to other counselors, headers and cookies. CSRF is on throughout (`dash`)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pyotp
import pytest
import yaml
from flask import Flask, url_for
from sqlalchemy import func, select
from werkzeug.routing import Rule

from bot.app import create_app
from bot.dashboard import OPEN_ENDPOINTS
from bot.models import AuditLog, Counselor, CrisisEvent, LoginFailure, Participant
from tests.conftest import TEST_DATABASE_URL
from tests.dashboard_helpers import PASSWORD, Dashboard, add_counselor, csrf_token

ROOT = Path(__file__).resolve().parent.parent
CASEY = "casey@clinic.example"
LOCKED = "Too many failed sign-ins"
WRONG = "That email and password do not match an account."


@pytest.fixture
def ddb(dash_app: Flask) -> Any:
    """The database of the CSRF-on app (no second app needed)."""
    return dash_app.extensions["db"]


@pytest.fixture
def casey(ddb: Any) -> int:
    return add_counselor(ddb, CASEY, name="Casey Counselor")


def sign_in(dash: Dashboard, email: str, password: str = PASSWORD, path: str = "/login") -> Any:
    page = dash.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return dash.client.post(path, data={"email": email, "password": password, "csrf_token": csrf_token(page.text)})


def where(response: Any) -> str:
    assert response.status_code in (302, 303), response.status_code
    return urlsplit(response.headers["Location"]).path


def signed_in(dash: Dashboard) -> bool:
    response = dash.get("/clients")
    assert response.status_code == 200 or where(response) in ("/login", "/account/2fa"), response.status_code
    return response.status_code == 200


def failures(db: Any, key: str) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count(LoginFailure.id)).where(LoginFailure.key == key)) or 0)


def counselor_row(db: Any, email: str) -> Counselor:
    with db.session() as s:
        row = s.scalar(select(Counselor).where(Counselor.email == email))
        assert row is not None
        s.expunge(row)
        return row


def new_client(app: Flask, address: str | None = None) -> Dashboard:
    dash = Dashboard(app.test_client())
    if address:
        dash.client.environ_base["REMOTE_ADDR"] = address
    return dash


# --- signing in --------------------------------------------------------------------------------------


def test_the_right_password_signs_in_and_lands_on_the_client_list(dash: Dashboard, casey: int, ddb: Any) -> None:
    assert not signed_in(dash)
    response = dash.login(CASEY)
    assert where(response) == "/clients"
    assert signed_in(dash)
    with ddb.session() as s:
        assert s.scalar(select(AuditLog.actor).where(AuditLog.action == "login")) == CASEY


@pytest.mark.parametrize("email, password", [(CASEY, "not the password"), ("nobody@clinic.example", PASSWORD)])
def test_a_wrong_password_or_unknown_email_is_a_401_with_one_clear_message_and_no_session(
    dash: Dashboard, casey: int, email: str, password: str,
) -> None:
    response = sign_in(dash, email, password)
    assert response.status_code == 401
    assert WRONG in response.text and 'role="alert"' in response.text
    with dash.client.session_transaction() as session:
        assert "_user_id" not in session
    assert not signed_in(dash)


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "http:/evil.example",
                                    "/\\evil.example", "/\t/evil.example", "/\n/evil.example",
                                    "javascript:alert(1)", "evil.example"])
def test_after_sign_in_next_never_leads_off_the_site(dash: Dashboard, casey: int, target: str) -> None:
    response = sign_in(dash, CASEY, path="/login?next=" + quote(target, safe=""))
    assert response.headers["Location"] == "/clients"
    assert dash.get("/login?next=" + quote(target, safe="")).headers["Location"] == "/clients"  # signed in


def test_after_sign_in_next_returns_to_the_page_asked_for(dash: Dashboard, casey: int) -> None:
    asked = dash.get("/crises?open=1")
    login = asked.headers["Location"]
    assert urlsplit(login).path == "/login" and "next=" in login
    response = sign_in(dash, CASEY, path=login)
    assert response.headers["Location"] == "/crises?open=1"


def test_five_failures_lock_the_account_even_against_the_right_password_for_15_minutes(
    dash: Dashboard, dash_app: Flask, casey: int, ddb: Any, clock: Any,
) -> None:
    add_counselor(ddb, "robin@clinic.example", phone="+12025550178")
    for _ in range(5):
        assert sign_in(dash, CASEY, "not the password").status_code == 401
    refused = sign_in(dash, CASEY)
    assert refused.status_code == 401 and LOCKED in refused.text and "15 minutes" in refused.text
    assert not signed_in(dash)
    assert where(new_client(dash_app).login("robin@clinic.example")) == "/clients"  # only Casey's account
    clock.advance(minutes=14)
    assert LOCKED in sign_in(dash, CASEY).text
    clock.advance(minutes=2)  # 16 minutes after the failures
    assert where(sign_in(dash, CASEY)) == "/clients"
    assert failures(ddb, f"email:{CASEY}") == 0  # a sign-in clears the account's count


def test_twenty_failures_from_one_address_lock_that_address_for_every_account(
    dash_app: Flask, casey: int, ddb: Any,
) -> None:
    office = new_client(dash_app, "203.0.113.7")
    for i in range(20):  # four tries each at five addresses: no account reaches its own limit
        assert sign_in(office, f"guess{i % 5}@clinic.example", "not the password").status_code == 401
    assert failures(ddb, "ip:203.0.113.7") == 20
    refused = sign_in(office, CASEY)
    assert refused.status_code == 401 and LOCKED in refused.text
    assert where(sign_in(new_client(dash_app, "198.51.100.9"), CASEY)) == "/clients"  # another address


def test_the_limits_live_in_the_database_so_a_second_process_sees_the_lock(
    dash: Dashboard, app_config: dict[str, Any], casey: int, clock: Any,
) -> None:
    second = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    second.extensions["clock"] = clock
    try:
        for _ in range(5):
            assert sign_in(dash, CASEY, "not the password").status_code == 401
        elsewhere = new_client(second)
        refused = sign_in(elsewhere, CASEY)
        assert refused.status_code == 401 and LOCKED in refused.text
        clock.advance(minutes=16)
        assert where(sign_in(elsewhere, CASEY)) == "/clients"
    finally:
        second.extensions["db"].dispose()


# --- two-factor ----------------------------------------------------------------------------------------


def set_up_totp(dash: Dashboard, clock: Any) -> str:
    page = dash.get("/account/2fa")
    assert page.status_code == 200
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text)
    assert secret, "the page shows the key for typing in by hand"
    wrong = dash.client.post("/account/2fa", data={"code": bad_code(secret.group(1), clock),
                                                   "csrf_token": csrf_token(page.text)})
    assert wrong.status_code == 200 and "that code is not right" in wrong.text
    right = dash.client.post("/account/2fa", data={"code": pyotp.TOTP(secret.group(1)).at(clock.now),
                                                   "csrf_token": csrf_token(page.text)})
    assert where(right) == "/clients"
    return secret.group(1)


def bad_code(secret: str, clock: Any) -> str:
    good = {pyotp.TOTP(secret).at(clock.now + timedelta(seconds=s)) for s in (-30, 0, 30)}
    return next(c for c in (f"{n:06d}" for n in range(1000000)) if c not in good)


def test_two_factor_once_set_up_is_asked_for_after_the_password(
    dash: Dashboard, dash_app: Flask, casey: int, ddb: Any, clock: Any,
) -> None:
    dash.login(CASEY)
    secret = set_up_totp(dash, clock)
    assert counselor_row(ddb, CASEY).totp_secret == secret
    assert "Two-factor sign-in is on" in dash.get("/account/2fa").text

    clock.advance(seconds=60)
    other = new_client(dash_app)
    assert where(other.get("/login/2fa")) == "/login"  # no password yet: no code step
    assert where(sign_in(other, CASEY)) == "/login/2fa"
    assert not signed_in(other)  # the password alone is not enough
    page = other.get("/login/2fa")
    wrong = other.client.post("/login/2fa", data={"code": bad_code(secret, clock), "csrf_token": csrf_token(page.text)})
    assert wrong.status_code == 401 and "That code is not right" in wrong.text
    assert failures(ddb, f"email:{CASEY}") == 1  # counted like a wrong password
    right = other.client.post("/login/2fa", data={"code": pyotp.TOTP(secret).at(clock.now),
                                                  "csrf_token": csrf_token(page.text)})
    assert where(right) == "/clients" and signed_in(other)


def test_a_code_works_once(dash: Dashboard, dash_app: Flask, casey: int, clock: Any) -> None:
    dash.login(CASEY)
    secret = set_up_totp(dash, clock)
    clock.advance(seconds=60)
    code = pyotp.TOTP(secret).at(clock.now)
    first = new_client(dash_app)
    sign_in(first, CASEY)
    page = first.get("/login/2fa")
    accepted = first.client.post("/login/2fa", data={"code": code, "csrf_token": csrf_token(page.text)})
    assert where(accepted) == "/clients"
    # The same code, seen over a shoulder, 20 seconds later and still inside its window: refused.
    clock.advance(seconds=20)
    second = new_client(dash_app)
    sign_in(second, CASEY)
    page = second.get("/login/2fa")
    replay = second.client.post("/login/2fa", data={"code": code, "csrf_token": csrf_token(page.text)})
    assert replay.status_code == 401 and not signed_in(second)
    # The next code works.
    clock.advance(seconds=30)
    page = second.get("/login/2fa")
    fresh = second.client.post("/login/2fa", data={"code": pyotp.TOTP(secret).at(clock.now),
                                                   "csrf_token": csrf_token(page.text)})
    assert where(fresh) == "/clients" and signed_in(second)


def test_wrong_codes_lock_the_account_like_wrong_passwords(
    dash: Dashboard, dash_app: Flask, casey: int, clock: Any,
) -> None:
    dash.login(CASEY)
    secret = set_up_totp(dash, clock)
    other = new_client(dash_app)
    assert where(sign_in(other, CASEY)) == "/login/2fa"
    for _ in range(5):
        page = other.get("/login/2fa")
        other.client.post("/login/2fa", data={"code": bad_code(secret, clock), "csrf_token": csrf_token(page.text)})
    page = other.get("/login/2fa")
    refused = other.client.post("/login/2fa", data={"code": pyotp.TOTP(secret).at(clock.now),
                                                    "csrf_token": csrf_token(page.text)})
    assert refused.status_code == 401 and LOCKED in refused.text
    assert not signed_in(other)


def test_the_code_step_expires_a_few_minutes_after_the_password(
    dash: Dashboard, dash_app: Flask, casey: int, clock: Any,
) -> None:
    dash.login(CASEY)
    secret = set_up_totp(dash, clock)
    other = new_client(dash_app)
    assert where(sign_in(other, CASEY)) == "/login/2fa"
    page = other.get("/login/2fa")
    clock.advance(minutes=6)
    late = other.client.post("/login/2fa", data={"code": pyotp.TOTP(secret).at(clock.now),
                                                 "csrf_token": csrf_token(page.text)})
    assert where(late) == "/login" and not signed_in(other)


@pytest.fixture
def app_2fa(app_config: dict[str, Any], clock: Any) -> Iterator[Flask]:
    application = create_app({**app_config, "WTF_CSRF_ENABLED": True, "REQUIRE_2FA": True})
    application.extensions["clock"] = clock
    yield application
    application.extensions["db"].dispose()


def test_with_require_2fa_every_page_sends_a_counselor_without_it_to_set_it_up(
    app_2fa: Flask, clock: Any,
) -> None:
    add_counselor(app_2fa.extensions["db"], CASEY)
    dash = new_client(app_2fa)
    dash.login(CASEY)
    pages = [path for rule, path in get_routes(app_2fa) if rule.endpoint != "dashboard.totp_setup"]
    assert "/clients" in pages and "/account/password" in pages
    for path in pages:
        assert where(dash.get(path)) == "/account/2fa", path
    assert "requires two-factor" in dash.get("/account/2fa").text
    set_up_totp(dash, clock)
    assert signed_in(dash)


# --- password change, admin accounts, sign-out ---------------------------------------------------------


def test_a_password_change_ends_every_other_session_but_this_one(
    dash: Dashboard, dash_app: Flask, casey: int,
) -> None:
    laptop = new_client(dash_app)
    laptop.login(CASEY)
    dash.login(CASEY)
    assert signed_in(laptop) and signed_in(dash)
    wrong = dash.submit("/account/password", {"current": "not the password", "new": "a brand new passphrase"})
    assert wrong.status_code == 200 and "the current password is not right" in wrong.text
    short = dash.submit("/account/password", {"current": PASSWORD, "new": "short"})
    assert short.status_code == 200 and "at least 10 characters" in short.text
    assert signed_in(laptop)

    assert where(dash.submit("/account/password", {"current": PASSWORD, "new": "a brand new passphrase"})) == "/clients"
    assert signed_in(dash)
    assert where(laptop.get("/clients")) == "/login"
    assert sign_in(new_client(dash_app), CASEY).status_code == 401
    assert where(sign_in(new_client(dash_app), CASEY, "a brand new passphrase")) == "/clients"


def test_guessing_the_current_password_in_an_open_session_is_limited_like_sign_in(
    dash: Dashboard, dash_app: Flask, casey: int, clock: Any,
) -> None:
    dash.login(CASEY)
    change = {"current": "a guess at it", "new": "a brand new passphrase"}
    for _ in range(5):
        assert "the current password is not right" in dash.submit("/account/password", change).text
    refused = dash.submit("/account/password", {**change, "current": PASSWORD})
    assert refused.status_code == 200 and "too many wrong passwords" in refused.text
    assert LOCKED in sign_in(new_client(dash_app), CASEY).text  # the same count as sign-in
    clock.advance(minutes=16)
    assert where(dash.submit("/account/password", {**change, "current": PASSWORD})) == "/clients"


def test_an_admin_creates_and_deactivates_counselors(dash: Dashboard, dash_app: Flask, ddb: Any) -> None:
    admin_id = add_counselor(ddb, "ada@clinic.example", admin=True, phone="+12025550179")
    dash.login("ada@clinic.example")
    created = dash.submit("/counselors", {"email": "Robin@Clinic.example", "name": "Robin", "phone": "202 555 0188",
                                          "password": "robins own passphrase"})
    assert where(created) == "/counselors"
    robin = counselor_row(ddb, "robin@clinic.example")
    assert (robin.name, robin.phone, robin.is_admin, robin.active) == ("Robin", "+12025550188", False, True)
    duplicate = dash.submit("/counselors", {"email": "robin@clinic.example", "name": "R", "phone": "2025550189",
                                            "password": "another passphrase"})
    assert duplicate.status_code == 200 and "already exists" in duplicate.text
    malformed = dash.submit("/counselors", {"email": "robin at clinic", "name": "R", "phone": "2025550189",
                                            "password": "another passphrase"})
    assert malformed.status_code == 200 and "Enter an email address" in malformed.text

    robins = new_client(dash_app)
    assert where(sign_in(robins, "robin@clinic.example", "robins own passphrase")) == "/clients"
    deactivated = dash.post(f"/counselors/{robin.id}/active", {"active": "0"}, token_from="/counselors")
    assert where(deactivated) == "/counselors"
    assert not counselor_row(ddb, "robin@clinic.example").active
    assert where(robins.get("/clients")) == "/login"  # the open session ended
    refused = sign_in(new_client(dash_app), "robin@clinic.example", "robins own passphrase")
    assert refused.status_code == 401 and WRONG in refused.text

    dash.post(f"/counselors/{admin_id}/active", {"active": "0"}, token_from="/counselors")
    assert counselor_row(ddb, "ada@clinic.example").active  # an admin cannot lock themselves out
    with ddb.session() as s:
        actions = list(s.scalars(select(AuditLog.action).where(AuditLog.actor == "ada@clinic.example")))
    assert "counselor_create" in actions and "counselor_deactivate" in actions


def test_an_admin_account_made_on_the_page_is_an_admin(dash: Dashboard, dash_app: Flask, ddb: Any) -> None:
    add_counselor(ddb, "ada@clinic.example", admin=True, phone="+12025550179")
    dash.login("ada@clinic.example")
    dash.submit("/counselors", {"email": "lee@clinic.example", "name": "Lee", "phone": "2025550187",
                                "password": "lees own passphrase", "admin": "y"})
    assert counselor_row(ddb, "lee@clinic.example").is_admin
    lee = new_client(dash_app)
    sign_in(lee, "lee@clinic.example", "lees own passphrase")
    assert lee.get("/counselors").status_code == 200


def test_counselor_accounts_are_a_404_for_a_counselor_who_is_not_an_admin(
    dash: Dashboard, casey: int, ddb: Any,
) -> None:
    other = add_counselor(ddb, "robin@clinic.example", phone="+12025550178")
    dash.login(CASEY)
    assert dash.get("/counselors").status_code == 404
    assert dash.post("/counselors", {"email": "x@clinic.example", "name": "X", "phone": "2025550111",
                                     "password": "a long passphrase"}).status_code == 404
    assert dash.post(f"/counselors/{other}/active", {"active": "0"}).status_code == 404
    assert counselor_row(ddb, "robin@clinic.example").active
    with ddb.session() as s:
        assert s.scalar(select(Counselor).where(Counselor.email == "x@clinic.example")) is None
    assert 'href="/counselors"' not in dash.get("/clients").text


def test_the_cli_makes_an_admin_only_when_asked(runner: Any, db: Any) -> None:
    for email, extra, said in (("ada@clinic.example", ["--admin"], "admin ada@clinic.example created"),
                               ("lee@clinic.example", [], "counselor lee@clinic.example created")):
        result = runner.invoke(args=["counselor", "create", email, "--name", email[:3], "--phone", "2025550123",
                                     *extra], env={"COUNSELOR_PASSWORD": PASSWORD})
        assert result.exit_code == 0 and said in result.output, result.output
    assert counselor_row(db, "ada@clinic.example").is_admin
    assert not counselor_row(db, "lee@clinic.example").is_admin


def test_sign_out_is_a_post_with_the_csrf_token(dash: Dashboard, casey: int) -> None:
    dash.login(CASEY)
    assert dash.get("/logout").status_code == 405
    assert dash.client.post("/logout").status_code == 400
    assert signed_in(dash)
    assert where(dash.post("/logout")) == "/login"
    assert not signed_in(dash)


def test_the_sign_in_form_needs_its_csrf_token(dash: Dashboard, casey: int) -> None:
    dash.get("/login")
    response = dash.client.post("/login", data={"email": CASEY, "password": PASSWORD})
    assert response.status_code == 400
    assert not signed_in(dash)


# --- every page is closed to strangers and to other counselors ------------------------------------------


def _is_open(endpoint: str) -> bool:
    return endpoint in OPEN_ENDPOINTS or endpoint.startswith("webhook.")


def _path(app: Flask, rule: Rule, values: dict[str, Any]) -> str:
    with app.test_request_context():
        filled = {arg: values.get(arg, 1) for arg in rule.arguments}
        return url_for(rule.endpoint, **filled)


def get_routes(app: Flask, values: dict[str, Any] | None = None) -> list[tuple[Rule, str]]:
    """Every GET route outside the open list, its arguments filled (unknown ones with 1)."""
    return [(rule, _path(app, rule, values or {})) for rule in app.url_map.iter_rules()
            if "GET" in (rule.methods or set()) and not _is_open(rule.endpoint)]


def test_every_page_outside_the_open_list_needs_a_signed_in_counselor(dash: Dashboard, dash_app: Flask) -> None:
    routes = get_routes(dash_app)
    assert len(routes) >= 5 and any(rule.endpoint == "dashboard.plan" for rule, _ in routes)
    for rule, path in routes:
        response = dash.get(path)
        if response.status_code in (302, 303):
            assert where(response) == "/login", (rule.endpoint, path)
        else:
            assert response.status_code in (401, 404), (rule.endpoint, path, response.status_code)
        background = dash.get(path, headers={"HX-Request": "true"})
        assert background.status_code in (401, 404), (rule.endpoint, path, background.status_code)


@pytest.fixture
def two_counselors(ddb: Any, clock: Any) -> dict[str, int]:
    """Counselor A with a client and a crisis event; counselor B with a client of their own."""
    a = add_counselor(ddb, "a@clinic.example", phone="+12025550171")
    b = add_counselor(ddb, "b@clinic.example", phone="+12025550172")

    def work(s: Any) -> dict[str, int]:
        mine = Participant(phone="+12025550161", name="Alex", counselor_id=a, status="active", consent_at=clock())
        theirs = Participant(phone="+12025550162", name="Blair", counselor_id=b, status="active", consent_at=clock())
        s.add_all([mine, theirs])
        s.flush()
        event = CrisisEvent(kind="crisis", participant_id=mine.id, phone=mine.phone, level="imminent",
                            categories="suicide", created_at=clock())
        s.add(event)
        s.flush()
        return {"a_client": mine.id, "b_client": theirs.id, "a_event": event.id}

    ids: dict[str, int] = ddb.run(work)
    return ids


def _id_routes(app: Flask) -> list[Rule]:
    return [rule for rule in app.url_map.iter_rules()
            if {"participant_id", "event_id"} & set(rule.arguments) and not _is_open(rule.endpoint)]


def test_another_counselors_clients_and_events_are_a_404_on_every_route(
    dash: Dashboard, dash_app: Flask, two_counselors: dict[str, int],
) -> None:
    routes = _id_routes(dash_app)
    if not routes:
        pytest.skip("no route takes a participant_id or event_id yet")
    a_ids = {"participant_id": two_counselors["a_client"], "event_id": two_counselors["a_event"]}
    gets = [rule for rule in routes if "GET" in (rule.methods or set())]

    owner = new_client(dash_app)
    owner.login("a@clinic.example")
    for rule in gets:  # the ids are real: their counselor gets an answer
        path = _path(dash_app, rule, a_ids)
        assert owner.get(path).status_code != 404, (rule.endpoint, path)

    dash.login("b@clinic.example")
    with dash_app.extensions["db"].session() as s:
        before = s.scalar(select(func.count(AuditLog.id)).where(AuditLog.participant_id == a_ids["participant_id"]))
    for rule in routes:
        path = _path(dash_app, rule, a_ids)
        if "GET" in (rule.methods or set()):
            assert dash.get(path).status_code == 404, (rule.endpoint, path)
        if "POST" in (rule.methods or set()):
            assert dash.post(path, {}).status_code == 404, (rule.endpoint, path)
    with dash_app.extensions["db"].session() as s:
        owners = {p.id: p.counselor_id for p in s.scalars(select(Participant))}
        assert owners[a_ids["participant_id"]] != owners[two_counselors["b_client"]]  # nothing moved A's client
        after = s.scalar(select(func.count(AuditLog.id)).where(AuditLog.participant_id == a_ids["participant_id"]))
        assert before == after  # and nothing was done (or logged) in their name


# --- headers and cookies -------------------------------------------------------------------------------


def test_dashboard_pages_send_the_security_headers(dash: Dashboard, casey: int) -> None:
    pages = [dash.get("/login")]
    dash.login(CASEY)
    pages += [dash.get("/clients"), dash.get("/account/password")]
    for page in pages:
        assert page.status_code == 200
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert pages[1].headers["Cache-Control"] == "no-store"


_INLINE = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>|<style\b|\sstyle=|\son[a-z]+=",
                     re.IGNORECASE)


def test_no_page_relies_on_inline_script_or_style_the_policy_blocks(
    dash: Dashboard, dash_app: Flask, ddb: Any, two_counselors: dict[str, int],
) -> None:
    add_counselor(ddb, "ada@clinic.example", admin=True, phone="+12025550179")
    dash.login("ada@clinic.example")
    ids = {"participant_id": two_counselors["a_client"], "event_id": two_counselors["a_event"]}
    checked = 0
    for rule, path in get_routes(dash_app, ids):
        response = dash.get(path)
        if response.status_code == 200 and response.mimetype == "text/html":
            checked += 1
            found = _INLINE.search(response.text)
            assert found is None, (rule.endpoint, found.group(0) if found else "")
    assert checked >= 3


def _session_cookie(response: Any) -> str:
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("session=")]
    assert cookies, "the page sets the session cookie"
    return cookies[0]


def test_the_session_cookie_is_httponly_and_samesite_lax_and_lasts_a_working_day(
    dash: Dashboard, dash_app: Flask, casey: int,
) -> None:
    cookie = _session_cookie(dash.get("/login"))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert dash_app.permanent_session_lifetime == timedelta(hours=12)
    assert "Expires=" in _session_cookie(dash.login(CASEY))  # a signed-in session is bounded


@pytest.fixture
def verified_library(tmp_path: Path) -> Path:
    """A copy of the library whose crisis lines a person has (for this test) verified."""
    copy = tmp_path / "library"
    shutil.copytree(ROOT / "skills_library", copy)
    for path in (copy / "crisis").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["last_verified"], data["verified_by"], data["owner"] = date.today(), "Test Verifier", "Test clinic"
        for resource in data["resources"]:
            resource.pop("notes", None)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return copy


def test_in_production_the_session_cookie_is_also_secure(
    app_config: dict[str, Any], verified_library: Path,
) -> None:
    production = create_app({
        **app_config, "BOT_ENV": "production", "PUBLIC_BASE_URL": "https://bot.clinic.example",
        "DATABASE_URL": TEST_DATABASE_URL or "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "SKILLS_LIBRARY": str(verified_library), "ALLOW_UNREVIEWED_CONTENT": True, "WTF_CSRF_ENABLED": True,
    })
    try:
        page = production.test_client().get("/login", base_url="https://bot.clinic.example")
        assert page.status_code == 200
        cookie = _session_cookie(page)
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        production.extensions["db"].dispose()
