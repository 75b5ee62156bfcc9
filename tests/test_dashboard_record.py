"""One client's record page and managing a client from the dashboard (CSRF on, real database):
the timeline, the distress chart's data and its table, which skills helped, settings with the
enrollment rules, pausing, discharge with aftercare, reassignment and a second invitation, each
limited to the counselor's own clients and written to the audit log."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from bot import records
from bot.models import AuditLog, CrisisEvent, ExerciseSession, Message, MoodCheckin, Participant
from bot.nudges import plan_due_nudges
from tests.browser import axe_check, csp_violations, describe, login, page_errors, screenshot
from tests.dashboard_helpers import PASSWORD, add_counselor

COUNSELOR = "casey@clinic.example"  # the `counselor` fixture; its password is dashboard_helpers.PASSWORD
PHONE = "+12025550101"  # the `participant` fixture's number
OTHER = "blair@clinic.example"
ADMIN = "ada@clinic.example"

SETTINGS = {"name": "Pat", "timezone": "America/New_York", "nudge_time": "10:00", "nudge_days": "daily",
            "quiet_start": "08:00", "quiet_end": "21:00", "admission_date": "", "discharge_date": "",
            "aftercare_days": "0"}


def row(db: Any, participant_id: int) -> Participant:
    with db.session() as s:
        return s.get_one(Participant, participant_id)


def text_of(response: Any) -> str:
    return html.unescape(response.text)


def chart_json(page_html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="distress-data">(.*?)</script>', page_html, re.S)
    assert match, "no chart data block"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def audits(db: Any, action: str) -> list[AuditLog]:
    with db.session() as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def run_exercise(sms: Any, before: str = "8", after: str = "3") -> None:
    assert "0-10" in sms("so nervous about court tomorrow", from_=PHONE)[-1]
    reply = sms(before, from_=PHONE)
    for _ in range(20):
        if "0-10" in reply[0]:
            break
        reply = sms("next", from_=PHONE)
    sms(after, from_=PHONE)


def skill_ids(app: Any, n: int) -> list[str]:
    return sorted(app.extensions["library"].skills)[:n]


def title(app: Any, skill_id: str) -> str:
    return str(app.extensions["library"].skill(skill_id).title)


# --- the record -------------------------------------------------------------------------------------


def test_the_record_shows_texts_both_ways_the_exercise_and_its_ratings(
        dash: Any, sms: Any, db: Any, participant: Any, counselor: Any) -> None:
    run_exercise(sms)
    with db.session() as s:
        exercise = s.scalars(select(ExerciseSession)).one()
        s.add(MoodCheckin(participant_id=participant.id, rating=6, created_at=datetime(2026, 11, 29, 15, tzinfo=UTC)))
    dash.login(COUNSELOR)
    page = dash.get(f"/clients/{participant.id}")
    assert page.status_code == 200
    body = text_of(page)
    assert "Client texted" in body and "so nervous about court tomorrow" in body
    assert "Bot texted the client" in body and "0-10" in body
    # The consent invitation, with its delivery status.
    assert re.search(r'invitation</span>\s*· delivery: <span class="status record-delivery-ok">queued</span>', body)
    assert f"Exercise: {title(dash.client.application, exercise.skill_id)}" in body
    assert "Distress before: 8" in body and "after: 3" in body
    # The header: name, the full number, status, counselor and zone; times in the client's zone.
    assert "<h1>Pat</h1>" in body and PHONE in body and "Casey Counselor" in body and "America/New_York" in body
    assert "Fri 27 Nov 2026, 10:00 EST" in body  # 15:00 UTC, shown on the client's clock
    assert 'src="/dashboard-static/vendor/chart-4.6.1.umd.min.js" defer' in body
    # The chart's data and the same ratings as a table.
    data = chart_json(page.text)
    assert data["zone"] == "America/New_York"
    assert [(p["series"], p["y"]) for p in data["points"]] == [("before", 8), ("after", 3), ("checkin", 6)]
    assert "<details>" in body and "Mood check-in</td>" in body


def test_the_timeline_is_newest_first_and_pages_older_entries(
        dash: Any, db: Any, participant: Any, app: Any) -> None:
    start = datetime(2026, 11, 1, 12, tzinfo=UTC)
    with db.session() as s:
        s.execute(insert(Message), [
            {"participant_id": participant.id, "direction": "in", "phone": PHONE, "body": f"note {i:03d}",
             "kind": "inbound", "status": "received", "created_at": start + timedelta(minutes=i)}
            for i in range(records.TIMELINE_PAGE + 5)])
    dash.login(COUNSELOR)
    first = text_of(dash.get(f"/clients/{participant.id}"))
    assert first.index("note 204") < first.index("note 203") and "note 004" not in first
    assert f"/clients/{participant.id}?page=2" in first
    second = text_of(dash.get(f"/clients/{participant.id}?page=2"))
    assert "note 000" in second and "note 004" in second and "note 006" not in second
    assert "?page=2" not in second and "Newer" in second
    with db.session() as s:  # the pages cut the merged stream exactly, whatever the sources
        p = s.get_one(Participant, participant.id)
        pages = [records.timeline(s, p, str, page=n, per_page=7).entries for n in (1, 2, 3)]
        every = records.timeline(s, p, str, page=1, per_page=1000).entries
    assert [e for page in pages for e in page] == every[:21]


def test_a_crisis_event_is_on_the_timeline_unacknowledged(dash: Any, sms: Any, db: Any, participant: Any,
                                                          dash_app: Any) -> None:
    sms("i want to kill myself tonight", from_=PHONE)
    dash.login(COUNSELOR)
    body = text_of(dash.get(f"/clients/{participant.id}"))
    assert "Crisis event" in body and "Not acknowledged." in body
    assert "crisis hold: nudges held" in body
    with db.session() as s:
        event_id = s.scalars(select(CrisisEvent.id)).one()
    if "dashboard.crisis" in dash_app.view_functions:  # the crisis pages are built alongside this one
        assert f'<a href="/crises/{event_id}">Open the event</a>' in body
    if "dashboard.plan" in dash_app.view_functions:
        assert f'<a href="/clients/{participant.id}/plan">Safety plan</a>' in body


def test_every_view_is_audited_with_actor_and_client(dash: Any, db: Any, participant: Any) -> None:
    dash.login(COUNSELOR)
    assert dash.get(f"/clients/{participant.id}").status_code == 200
    assert dash.get(f"/clients/{participant.id}").status_code == 200
    views = audits(db, "view_client")
    assert [(a.actor, a.participant_id) for a in views] == [(COUNSELOR, participant.id)] * 2


def test_another_counselors_client_is_404_on_every_page_and_change_and_an_admin_sees_it(
        dash: Any, db: Any, participant: Any) -> None:
    add_counselor(db, OTHER)
    add_counselor(db, ADMIN, admin=True, phone="+12025550178")
    dash.login(OTHER)
    pid = participant.id
    assert dash.get(f"/clients/{pid}").status_code == 404
    assert dash.get(f"/clients/{pid}/settings").status_code == 404
    assert dash.get("/clients/999999").status_code == 404
    changes = {"settings": {**SETTINGS, "nudge_time": "12:00"}, "pause": {}, "resume": {},
               "discharge": {"aftercare_days": "7"}, "invite": {}, "reassign": {"counselor_id": "1"}}
    for action, data in changes.items():
        assert dash.post(f"/clients/{pid}/{action}", data).status_code == 404, action
    after = row(db, pid)
    assert (after.nudge_time, after.nudges_paused, after.discharge_date) == ("10:00", False, None)
    assert audits(db, "view_client") == []
    dash.client.post("/logout", data={"csrf_token": re.search(
        r'name="csrf-token" content="([^"]+)"', dash.get("/clients").text).group(1)})  # type: ignore[union-attr]
    dash.login(ADMIN)
    assert dash.get(f"/clients/{pid}").status_code == 200
    assert [a.actor for a in audits(db, "view_client")] == [ADMIN]


def test_without_a_csrf_token_a_change_is_refused(dash: Any, db: Any, participant: Any) -> None:
    dash.login(COUNSELOR)
    assert dash.client.post(f"/clients/{participant.id}/pause").status_code == 400
    assert row(db, participant.id).nudges_paused is False


# --- settings ---------------------------------------------------------------------------------------


def test_a_nudge_time_outside_the_allowed_hours_is_refused_next_to_the_field(
        dash: Any, db: Any, participant: Any) -> None:
    dash.login(COUNSELOR)
    path = f"/clients/{participant.id}/settings"
    response = dash.submit(path, {**SETTINGS, "nudge_time": "22:00", "name": "Changed"})
    assert response.status_code == 400
    error = re.search(r'<small id="nudge_time-error" class="field-error">([^<]*)</small>', response.text)
    assert error and "outside the allowed window 08:00-21:00" in error.group(1)
    field = re.search(r'<input[^>]*id="nudge_time"[^>]*>', response.text)
    assert field and 'aria-invalid="true"' in field.group(0) and 'value="22:00"' in field.group(0)
    after = row(db, participant.id)
    assert (after.nudge_time, after.name) == ("10:00", "Pat")
    assert audits(db, "client_settings") == []


def test_new_allowed_hours_that_would_leave_the_diary_card_outside_are_refused(
        dash: Any, db: Any, participant: Any) -> None:
    def enable(s: Any) -> None:
        person = s.get(Participant, participant.id)
        person.diary_enabled, person.diary_time = True, "20:00"

    db.run(enable)
    dash.login(COUNSELOR)
    response = dash.submit(f"/clients/{participant.id}/settings", {**SETTINGS, "quiet_end": "19:00"})
    assert response.status_code == 400
    assert re.search(r'<small id="quiet_end-error" class="field-error">[^<]*diary card is asked at 20:00',
                     response.text)
    assert row(db, participant.id).quiet_end == "21:00"


def test_settings_refuse_an_unknown_zone_and_bad_days_and_keep_everything(
        dash: Any, db: Any, participant: Any) -> None:
    dash.login(COUNSELOR)
    response = dash.submit(f"/clients/{participant.id}/settings",
                           {**SETTINGS, "timezone": "Mars/Olympus", "nudge_days": "someday", "quiet_end": "late",
                            "admission_date": "2026-12-01", "discharge_date": "2026-11-01"})
    assert response.status_code == 400
    body = text_of(response)
    for name, words in (("timezone", "is not an IANA time zone"), ("nudge_days", "is not a list of days"),
                        ("quiet_end", "times must look like"), ("discharge_date", "before the admission date")):
        assert re.search(rf'<small id="{name}-error" class="field-error">[^<]*{words}', body), name
    assert row(db, participant.id).timezone == "America/New_York"


def test_settings_save_with_the_enrollment_rules_and_are_audited(
        dash: Any, db: Any, participant: Any) -> None:
    dash.login(COUNSELOR)
    path = f"/clients/{participant.id}/settings"
    form = text_of(dash.get(path))
    assert 'value="mon,tue,wed,thu,fri,sat,sun"' in form and PHONE in form and "cannot be changed here" in form
    response = dash.submit(path, {**SETTINGS, "name": "Pat R", "timezone": "America/Chicago", "nudge_time": "7pm",
                                  "nudge_days": "mon-fri", "quiet_end": "21:30", "discreet": "y",
                                  "flags": ["heart_condition", "pregnancy"], "admission_date": "2026-11-02",
                                  "discharge_date": "2026-12-18", "aftercare_days": "30"})
    assert response.status_code == 302 and response.location.endswith(f"/clients/{participant.id}")
    after = row(db, participant.id)
    assert (after.name, after.timezone, after.nudge_time, after.nudge_days, after.quiet_end, after.discreet,
            after.flags, after.admission_date, after.discharge_date, after.aftercare_days) == (
        "Pat R", "America/Chicago", "19:00", "01234", "21:30", True, ["heart_condition", "pregnancy"],
        date(2026, 11, 2), date(2026, 12, 18), 30)
    (entry,) = audits(db, "client_settings")
    assert entry.actor == COUNSELOR and entry.participant_id == participant.id
    assert "nudge_time" in entry.detail["fields"] and "phone" not in entry.detail["fields"]
    record = text_of(dash.get(f"/clients/{participant.id}"))
    assert "Settings saved" in record
    assert "Fri 27 Nov 2026, 09:00 CST" in record  # the invitation's time, now on the client's new clock


# --- nudges, discharge, counselor, invitation --------------------------------------------------------


def test_pause_and_resume_toggle_nudges_and_the_planner_follows(
        dash: Any, app: Any, db: Any, participant: Any, clock: Any) -> None:
    library = app.extensions["library"]
    dash.login(COUNSELOR)
    pid = participant.id
    response = dash.post(f"/clients/{pid}/pause")
    assert response.status_code == 302 and row(db, pid).nudges_paused is True
    assert "paused until you resume" in text_of(dash.get(f"/clients/{pid}"))
    assert plan_due_nudges(db, library, clock()) == 0  # 10:00 in New York: due, but paused
    with db.session() as s:  # a dated pause from the client (PAUSE 3 DAYS) ends with resume too
        s.get_one(Participant, pid).paused_until = clock() + timedelta(days=3)
    dash.post(f"/clients/{pid}/resume")
    after = row(db, pid)
    assert (after.nudges_paused, after.paused_until) == (False, None)
    assert plan_due_nudges(db, library, clock()) == 1
    assert [a.action for a in audits(db, "pause_nudges") + audits(db, "resume_nudges")] == [
        "pause_nudges", "resume_nudges"]


def test_discharge_sets_the_clients_local_date_and_nudges_end_after_aftercare(
        dash: Any, app: Any, db: Any, participant: Any, clock: Any) -> None:
    clock.set(datetime(2026, 11, 28, 3, 0, tzinfo=UTC))  # still 27 Nov in New York
    dash.login(COUNSELOR)
    pid = participant.id
    refused = dash.post(f"/clients/{pid}/discharge", {"aftercare_days": "91"}, follow_redirects=True)
    assert "from 0 to 90" in text_of(refused) and row(db, pid).discharge_date is None
    dash.post(f"/clients/{pid}/discharge", {"aftercare_days": "14"})
    after = row(db, pid)
    assert (after.discharge_date, after.aftercare_days, after.status) == (date(2026, 11, 27), 14, "active")
    (entry,) = audits(db, "discharge")
    assert entry.detail == {"discharge_date": "2026-11-27", "aftercare_days": 14}
    library = app.extensions["library"]
    assert plan_due_nudges(db, library, datetime(2026, 12, 12, 15, tzinfo=UTC)) == 0  # 12 Dec: aftercare over
    assert plan_due_nudges(db, library, datetime(2026, 12, 11, 15, tzinfo=UTC)) == 1  # 11 Dec: its last day


def test_an_admin_reassigns_a_client_and_a_counselor_cannot(dash: Any, db: Any, participant: Any,
                                                            counselor: Any) -> None:
    other = add_counselor(db, OTHER)
    add_counselor(db, ADMIN, admin=True, phone="+12025550178")
    dash.login(COUNSELOR)
    pid = participant.id
    assert 'name="counselor_id"' not in dash.get(f"/clients/{pid}").text
    assert dash.post(f"/clients/{pid}/reassign", {"counselor_id": str(other)}).status_code == 404
    assert row(db, pid).counselor_id == counselor.id
    dash.client.post("/logout", data={"csrf_token": re.search(
        r'name="csrf-token" content="([^"]+)"', dash.get("/clients").text).group(1)})  # type: ignore[union-attr]
    dash.login(ADMIN)
    response = dash.submit(f"/clients/{pid}", {"counselor_id": str(other)}, action=f"/clients/{pid}/reassign")
    assert response.status_code == 302 and row(db, pid).counselor_id == other
    (entry,) = audits(db, "reassign")
    assert (entry.actor, entry.detail) == (ADMIN, {"from": COUNSELOR, "to": OTHER})


def test_the_invitation_can_be_sent_again_while_the_client_has_not_answered(
        dash: Any, db: Any, enroll_participant: Any, fake_twilio: Any) -> None:
    invited = enroll_participant(active=False)
    assert len(fake_twilio.bodies_to(PHONE)) == 1
    dash.login(COUNSELOR)
    page = text_of(dash.get(f"/clients/{invited.id}"))
    assert "Send the consent invitation again" in page
    response = dash.submit(f"/clients/{invited.id}", {}, action=f"/clients/{invited.id}/invite")
    assert response.status_code == 302
    bodies = fake_twilio.bodies_to(PHONE)
    assert len(bodies) == 2 and bodies[1] == bodies[0] and "Reply YES" in bodies[1]
    dash.post(f"/clients/{invited.id}/invite")  # a third time: a new key again
    assert len(fake_twilio.bodies_to(PHONE)) == 3
    assert len(audits(db, "resend_invitation")) == 2


def test_an_active_client_is_not_invited_again(dash: Any, db: Any, participant: Any, fake_twilio: Any) -> None:
    dash.login(COUNSELOR)
    assert "Send the consent invitation again" not in dash.get(f"/clients/{participant.id}").text
    response = dash.post(f"/clients/{participant.id}/invite", follow_redirects=True)
    assert "has not answered the invitation" in text_of(response)
    assert len(fake_twilio.bodies_to(PHONE)) == 1 and audits(db, "resend_invitation") == []


# --- which skills helped -----------------------------------------------------------------------------


def test_skills_that_helped_most_come_first(dash: Any, app: Any, db: Any, participant: Any) -> None:
    first, second, third = skill_ids(app, 3)
    at = datetime(2026, 11, 20, 15, tzinfo=UTC)
    rows = [(first, 8, 3, "completed"), (first, 6, 4, "completed"),  # +3.5 twice
            (second, 5, 0, "completed"),  # +5 once
            (third, 4, 6, "completed"), (third, 9, 1, "abandoned"),  # -2 (the abandoned one does not count)
            (second, 9, None, "completed"), (first, None, None, "completed")]  # not rated: left out
    with db.session() as s:
        s.add_all(ExerciseSession(participant_id=participant.id, skill_id=skill, distress_state="anxiety",
                                  status=status, rating_before=before, rating_after=after, started_at=at,
                                  completed_at=at) for skill, before, after, status in rows)
    with db.session() as s:
        helped = records.skills_helped(s, participant.id, str)
    assert [(h.skill_id, h.times, h.average_change) for h in helped] == [
        (second, 1, 5.0), (first, 2, 3.5), (third, 1, -2.0)]
    assert (helped[1].average_before, helped[1].average_after) == (7.0, 3.5)
    dash.login(COUNSELOR)
    body = text_of(dash.get(f"/clients/{participant.id}"))
    table = body[body.index('class="skills-helped"'):]
    table = table[:table.index("</table>")]
    positions = [table.index(title(app, skill)) for skill in (second, first, third)]
    assert positions == sorted(positions) and "+5.0" in table and "-2.0" in table


# --- in a real browser ------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_chart_draws_under_the_csp_and_the_page_is_accessible(
        browser_page: Any, live_server: str, sms: Any, db: Any, app: Any, participant: Any) -> None:
    skill = skill_ids(app, 1)[0]
    with db.session() as s:
        for day, before, after in ((20, 7, 4), (23, 9, 5)):
            at = datetime(2026, 11, day, 18, tzinfo=UTC)
            s.add(ExerciseSession(participant_id=participant.id, skill_id=skill, distress_state="stress",
                                  status="completed", rating_before=before, rating_after=after, started_at=at,
                                  completed_at=at + timedelta(minutes=5)))
        s.add(MoodCheckin(participant_id=participant.id, rating=4, created_at=datetime(2026, 11, 22, 15, tzinfo=UTC)))
    run_exercise(sms)
    page = browser_page
    login(page, live_server, COUNSELOR, PASSWORD)
    page.goto(f"{live_server}/clients/{participant.id}")
    page.wait_for_function("() => window.Chart && Chart.getChart('distress-chart') !== undefined")
    drawn = page.evaluate("() => Chart.getChart('distress-chart').data.datasets.map(d => d.data.map(p => p.y))")
    assert drawn == [[7, 9, 8], [4, 5, 3], [4]]  # before, after, check-in: oldest first
    screenshot(page, "client-record")
    assert axe_check(page) == [], describe(axe_check(page))
    assert csp_violations(page) == [] and page_errors(page) == []
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    page.goto(f"{live_server}/clients/{participant.id}/settings")
    page.fill("#nudge_time", "23:30")
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("#nudge_time-error")
    screenshot(page, "client-settings")
    assert axe_check(page) == [], describe(axe_check(page))
    assert csp_violations(page) == [] and page_errors(page) == []
