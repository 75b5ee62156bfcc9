"""Groups in Debian's Chromium: a counselor creates a cohort, adds members from the group's page and
from a client's page, previews a broadcast (who is left out and why) and sends it; the text reaches
the fake Twilio for active members only, once."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.models import OPTED_OUT
from tests.browser import axe_check, csp_violations, describe, login, page_errors, screenshot
from tests.dashboard_helpers import PASSWORD, add_counselor
from tests.nudge_fixtures import add_participant

pytestmark = pytest.mark.browser

COUNSELOR = "noor@clinic.example"
BODY = "Group moves to room 5 tonight, same time."


def test_a_counselor_creates_a_group_and_texts_it_leaving_out_an_opted_out_member(
    browser_page: Any, live_server: str, db: Any, fake_twilio: Any,
) -> None:
    page, base = browser_page, live_server
    counselor_id = add_counselor(db, COUNSELOR, phone="+12025550166")
    ana = add_participant(db, counselor_id=counselor_id, name="Ana", phone="+12025550161")
    ben = add_participant(db, counselor_id=counselor_id, name="Ben", phone="+12025550162")
    cal = add_participant(db, counselor_id=counselor_id, name="Cal", phone="+12025550163", status=OPTED_OUT)
    login(page, base, COUNSELOR, PASSWORD)

    page.goto(f"{base}/cohorts/new")
    page.fill("#name", "Evening IOP")
    page.fill("#meeting_days", "mon,wed,thu")
    page.fill("#meeting_time", "18:00")
    page.fill("#timezone", "America/New_York")
    page.fill("#reminder_text", "Room 4. Bring your diary card.")
    page.fill("#reminder_minutes_before", "60")
    page.get_by_role("button", name="Create the group").click()
    page.wait_for_url(re.compile(r"/cohorts/\d+$"))
    cohort_url = page.url
    assert "Evening IOP" in page.inner_text("main")

    for person in (ana, ben):  # from the group's page
        page.select_option("#participant_id", str(person))
        page.get_by_role("button", name=re.compile("^Add to Evening IOP")).click()
        page.wait_for_url(cohort_url)
    page.goto(f"{base}/clients/{cal}")  # and one from the client's own page
    page.select_option(f"#cohort-{cal}", label="Evening IOP")
    page.get_by_role("button", name="Save group").click()
    page.wait_for_load_state()
    page.goto(cohort_url)
    members = page.inner_text("main")
    assert all(name in members for name in ("Ana", "Ben", "Cal"))
    assert axe_check(page) == [], describe(axe_check(page))
    screenshot(page, "cohort")

    page.goto(f"{cohort_url}/broadcast")
    page.fill("#body", BODY)
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector(".cohorts-preview")
    left_out = page.inner_text(".cohorts-skipped")
    assert "Cal" in left_out and "opted out" in left_out
    assert "GSM-7" in page.inner_text(".cohorts-facts") or "GSM" in page.inner_text(".cohorts-facts")
    assert fake_twilio.messages == []  # a preview sends nothing
    assert axe_check(page) == [], describe(axe_check(page))
    screenshot(page, "cohort-broadcast")
    form = page.locator("form.cohorts-send")
    fields = {name: form.locator(f"input[name={name}]").input_value()
              for name in ("csrf_token", "body", "broadcast_id")}
    page.get_by_role("button", name=re.compile("^Send to 2 members")).click()
    page.wait_for_selector(".flash-success, .flash-info")

    for phone in ("+12025550161", "+12025550162"):
        (sent,) = fake_twilio.bodies_to(phone)
        assert BODY in sent
    assert fake_twilio.bodies_to("+12025550163") == []
    # The same form posted again (a double click, a resubmitted page): nothing more is sent.
    again = page.request.post(f"{cohort_url}/broadcast", form={**fields, "send": "Send"})
    assert again.ok and "already sent" in again.text()
    assert len(fake_twilio.messages) == 2
    assert csp_violations(page) == [] and page_errors(page) == []
