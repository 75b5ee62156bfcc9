"""The counselor dashboard in Debian's Chromium (Playwright), against a live local server with CSRF
on: the whole story of one client, then every main page checked with axe-core, screenshotted at
desktop and phone widths, and watched for Content-Security-Policy reports."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from bot.models import CrisisEvent, Participant, SafetyPlan
from tests.browser import axe_check, console_log, csp_violations, describe, login, page_errors, screenshot
from tests.dashboard_helpers import PASSWORD, add_counselor

pytestmark = pytest.mark.browser

COUNSELOR = "lee@clinic.example"
COUNSELOR_PHONE = "+12025550177"
CLIENT_TYPED = "(202) 555-0142"
CLIENT = "+12025550142"
CRISIS_TEXT = "i want to kill myself"  # the crisis tier at once (tests/test_risk_flow.py, test_safety.py)
PLAN = {
    "warning_signs": "Staying in bed all day",
    "coping_strategies": "Box breathing on the porch",
    "distractions": "The library on Main Street",
    "contacts": "Sam, my sponsor",
    "professionals": "Dr Rivera at the clinic",
    "safe_environment": "Meds kept at my sister's",
    "reasons_for_living": "My daughter Mia",
}


def text(page: Any, body: str) -> None:
    page.fill("#text", body)
    page.click("#composer button[type=submit]")


def out_bubble(page: Any, pattern: str) -> None:
    page.wait_for_selector(f".bubble.out >> text=/{pattern}/")


def clean(page: Any) -> None:
    assert csp_violations(page) == [], csp_violations(page)
    assert page_errors(page) == [], console_log(page)


def test_a_counselor_enrolls_a_client_follows_a_crisis_and_edits_the_plan(
    browser_page: Any, live_server: str, db: Any, fake_twilio: Any
) -> None:
    page, base = browser_page, live_server
    add_counselor(db, COUNSELOR, phone=COUNSELOR_PHONE)
    login(page, base, COUNSELOR, PASSWORD)

    # Enroll by phone: the invitation reaches (fake) Twilio before the client's page loads.
    page.goto(f"{base}/clients/new")
    page.fill("#phone", CLIENT_TYPED)
    page.fill("#name", "Robin")
    page.fill("#timezone", "America/Chicago")
    page.fill("#nudge_time", "09:30")
    page.get_by_role("button", name=re.compile("^Enroll")).click()
    page.wait_for_url(re.compile(r"/clients/\d+$"))
    client_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector(".flash-success, .flash-info")
    (invitation,) = fake_twilio.bodies_to(CLIENT)
    assert "YES" in invitation
    with db.session() as s:
        robin = s.get(Participant, client_id)
        assert (robin.phone, robin.name, robin.status, robin.timezone, robin.nudge_time) == (
            CLIENT, "Robin", "invited", "America/Chicago", "09:30")
    clean(page)

    # The client, in the simulator: consent, a stress text, an exercise.
    page.goto(f"{base}/simulator")
    page.select_option("#phone", CLIENT)
    out_bubble(page, "Reply YES")
    text(page, "YES")
    out_bubble(page, "Welcome")
    text(page, "im so stressed about work")
    out_bubble(page, "0-10")
    text(page, "7")
    out_bubble(page, "\\(1\\/")
    assert page.locator("#crisis-count .badge").count() == 0

    # A crisis: resources in the thread, the counselor alerted, the badge appears without a reload.
    text(page, CRISIS_TEXT)
    out_bubble(page, "988")
    assert any("URGENT" in body for body in fake_twilio.bodies_to(COUNSELOR_PHONE))
    badge = page.wait_for_selector("#crisis-count .badge", timeout=10_000)  # htmx polls every 5 s
    assert badge.inner_text().strip() == "1 open"
    clean(page)

    # The event: the client's number to call, then the acknowledgement with an outcome and a note.
    page.click("#crisis-count")
    page.wait_for_url(f"{base}/crises")
    with db.session() as s:
        event_id = s.scalar(select(CrisisEvent.id).where(CrisisEvent.kind == "crisis"))
    page.click(f"a[href='/crises/{event_id}']")
    page.wait_for_url(f"{base}/crises/{event_id}")
    assert page.locator("a[href^='tel:']").get_attribute("href") == f"tel:{CLIENT}"
    page.select_option("#outcome", "reached_safe")
    page.fill("#note", "Called Robin, safe at home with her sister.")
    page.get_by_role("button", name=f"Acknowledge event #{event_id}").click()
    page.wait_for_selector("text=Called Robin, safe at home with her sister.")
    assert page.locator("#crisis-count .badge").count() == 0
    with db.session() as s:
        event = s.get(CrisisEvent, event_id)
        assert (event.ack_outcome, event.ack_note, event.acknowledged_by) == (
            "reached_safe", "Called Robin, safe at home with her sister.", COUNSELOR)
    clean(page)

    # The safety plan: saved on the dashboard, then texted to the client who asks for it.
    page.goto(f"{base}/clients/{client_id}/plan")
    for name, value in PLAN.items():
        page.fill(f"#{name}", value)
    page.get_by_role("button", name="Save plan").click()
    page.wait_for_selector("#plan-meta >> text=Last updated by")
    with db.session() as s:
        plan = s.scalar(select(SafetyPlan).where(SafetyPlan.participant_id == client_id))
        assert plan is not None and plan.reasons_for_living == "My daughter Mia"
    clean(page)

    page.goto(f"{base}/simulator")
    page.select_option("#phone", CLIENT)
    out_bubble(page, "988")
    text(page, "PLAN")
    for value in PLAN.values():
        page.wait_for_selector(f".bubble.out >> text={value}")
    out_bubble(page, "What I live for: My daughter Mia")
    clean(page)


# --- every main page: accessibility, screenshots, CSP -------------------------------------------------


@pytest.fixture
def story(db: Any, enroll_participant: Any, sms: Any, clock: Any) -> dict[str, int]:
    """A client of the `counselor` fixture with an exercise, a crisis event and a safety plan."""
    pat = enroll_participant(name="Pat")
    sms("im so anxious about court tomorrow", from_=pat.phone)
    sms("8", from_=pat.phone)
    clock.advance(minutes=30)
    sms(CRISIS_TEXT, from_=pat.phone)

    def add_plan(s: Any) -> None:
        s.add(SafetyPlan(participant_id=pat.id, **PLAN, updated_at=clock(), updated_by="casey@clinic.example"))

    db.run(add_plan)
    with db.session() as s:
        event_id = s.scalar(select(CrisisEvent.id).where(CrisisEvent.kind == "crisis"))
    return {"client": pat.id, "event": event_id}


PAGES = {
    "login": ("/login", "main form"),
    "clients": ("/clients", "main h1"),
    "client-new": ("/clients/new", "#phone"),
    "client": ("/clients/{client}", "main h1"),
    "crises": ("/crises", "main table"),
    "crisis": ("/crises/{event}", "a[href^='tel:']"),
    "plan": ("/clients/{client}/plan", "#warning_signs"),
    "simulator": ("/simulator", ".bubble.out"),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_main_pages_are_accessible_and_break_no_policy(name: str, browser_page: Any, live_server: str,
                                                       story: dict[str, int]) -> None:
    page, (path, ready) = browser_page, PAGES[name]
    if name != "login":
        login(page, live_server, "casey@clinic.example", PASSWORD)
    page.goto(live_server + path.format(**story))
    page.wait_for_selector(ready)
    assert page.locator("h1").count() == 1
    screenshot(page, name)
    violations = axe_check(page)
    assert violations == [], describe(violations)
    clean(page)
