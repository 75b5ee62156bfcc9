"""The simulator: behind sign-in, scoped to the counselor's clients, and in Debian's Chromium
(driven by Playwright against a live local server, CSRF on) a phone-like thread that works."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from bot import simulator
from tests.browser import axe_check, csp_violations, describe, login, page_errors, screenshot
from tests.dashboard_helpers import PASSWORD, add_counselor, csrf_token

COUNSELOR = "casey@clinic.example"  # the `counselor` fixture; its password is dashboard_helpers.PASSWORD


def send(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.click("#composer button[type=submit]")


# --- in the browser --------------------------------------------------------------------------------


@pytest.mark.browser
def test_simulator_walks_a_participant_through_an_exercise(browser_page: Any, live_server: str,
                                                            participant: Any) -> None:
    page = browser_page
    login(page, live_server, COUNSELOR, PASSWORD)
    page.goto(f"{live_server}/simulator")
    assert page.locator("#phone").input_value() == participant.phone
    # The consent invitation sent at enrollment is already in the thread.
    page.wait_for_selector(".bubble.out >> text=/YES/")
    send(page, "im so anxious about court tomorrow")
    page.wait_for_selector(".bubble.out >> text=/0-10/")
    send(page, "8")
    page.wait_for_selector(".bubble.out >> text=/\\(1\\//")
    bubbles = page.locator(".bubble.in").all_inner_texts()
    assert bubbles == ["im so anxious about court tomorrow", "8"]
    screenshot(page, "simulator-exercise")
    assert axe_check(page) == [], describe(axe_check(page))
    assert csp_violations(page) == [] and page_errors(page) == []


@pytest.mark.browser
def test_simulator_shows_crisis_resources_and_a_demo_number_can_text(browser_page: Any, live_server: str,
                                                                    participant: Any) -> None:
    page = browser_page
    login(page, live_server, COUNSELOR, PASSWORD)
    page.goto(f"{live_server}/simulator")
    page.wait_for_selector(".bubble.out")
    send(page, "i want to kill myself")
    page.wait_for_selector(".bubble.out >> text=/988/")
    # Another number: the demo field appears, and an unknown number gets the bot's answer too.
    assert page.locator("#demo-phone").is_hidden()
    page.select_option("#phone", "")
    page.wait_for_selector("#demo-phone", state="visible")
    page.fill("#demo-phone", "+12025550188")
    page.dispatch_event("#demo-phone", "change")
    page.wait_for_selector("#log .phone-empty")
    send(page, "hello")
    page.wait_for_selector(".bubble.out")
    assert page.locator(".bubble.in").all_inner_texts() == ["hello"]
    assert csp_violations(page) == [] and page_errors(page) == []


# --- access -----------------------------------------------------------------------------------------


def test_the_simulator_needs_a_signed_in_counselor(dash: Any, participant: Any) -> None:
    page = dash.get("/simulator")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    # Its JSON endpoints answer 401, whatever the request accepts, instead of redirecting.
    assert dash.client.post("/simulator/send", json={"phone": participant.phone, "text": "hi"}).status_code == 401
    assert dash.get(f"/simulator/messages?phone={participant.phone}").status_code == 401
    assert dash.get(f"/simulator/messages?phone={participant.phone}",
                    headers={"Accept": "application/json"}).status_code == 401


def test_a_counselor_texts_as_their_clients_only(dash: Any, db: Any, participant: Any, fake_twilio: Any) -> None:
    add_counselor(db, "other@clinic.example")
    dash.login("other@clinic.example")
    page = dash.get("/simulator")
    assert page.status_code == 200 and participant.phone not in page.text  # not one of theirs
    token = csrf_token(page.text)
    headers = {"X-CSRFToken": token}
    sent = dash.client.post("/simulator/send", json={"phone": participant.phone, "text": "hi"}, headers=headers)
    assert sent.status_code == 403
    assert dash.get(f"/simulator/messages?phone={participant.phone}").status_code == 403
    # A number that is no one's client is fine (the demo number), and the JSON POST needs the token.
    assert dash.client.post("/simulator/send", json={"phone": "+12025550188", "text": "hi"}).status_code == 400
    ok = dash.client.post("/simulator/send", json={"phone": "+12025550188", "text": "hi"}, headers=headers)
    assert ok.status_code == 200 and ok.get_json()["replies"]
    thread = dash.get("/simulator/messages?phone=%2B12025550188").get_json()
    assert [m["direction"] for m in thread["messages"]][:1] == ["in"]


def test_an_admin_sees_every_client_in_the_picker(dash: Any, db: Any, participant: Any) -> None:
    add_counselor(db, "admin@clinic.example", admin=True)
    dash.login("admin@clinic.example")
    page = dash.get("/simulator")
    assert page.status_code == 200 and f'<option value="{participant.phone}">' in page.text
    assert "<script>" not in page.text and "<style" not in page.text  # the CSP forbids inline code


def test_simulator_is_off_when_disabled(app: Any, client: Any) -> None:
    app.config["SIMULATOR_ENABLED"] = False
    assert client.get("/simulator").status_code == 404
    assert client.post("/simulator/send", json={"phone": "+12025550101", "text": "hi"}).status_code == 404


def test_simulator_is_not_even_registered_in_production() -> None:
    # The whole production app is covered in test_privacy_and_settings; here only the switch.
    production, development = Flask("production"), Flask("development")
    production.config["BOT_ENV"], development.config["BOT_ENV"] = "production", "development"
    simulator.init_app(production)
    simulator.init_app(development)
    assert "simulator" not in production.blueprints and not production.before_request_funcs.get(None)
    assert "simulator" in development.blueprints
