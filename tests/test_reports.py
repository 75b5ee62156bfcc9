"""Outcome reports, and a client's export and erasure from the dashboard (CSRF on, real database).

The history below is seeded through the models with every expected figure worked out by hand.
The clock stands at Friday 2026-11-27 15:00 UTC (ISO week 2026-W48), so the default 12-week
window starts on Monday 2026-09-07 00:00 UTC (2026-W37).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.models import (
    AuditLog,
    CrisisEvent,
    ExerciseSession,
    Message,
    MoodCheckin,
    NudgeLog,
    Outbox,
    Participant,
    SafetyPlan,
)
from bot.reports import report_window, week_labels
from tests.browser import PHONE, axe_check, csp_violations, describe, login, page_errors, screenshot
from tests.dashboard_helpers import PASSWORD, add_counselor, csrf_token

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
WINDOW_START = datetime(2026, 9, 7, tzinfo=UTC)
W48 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # Tuesday of 2026-W48
W47 = W48 - timedelta(weeks=1)
W46 = W48 - timedelta(weeks=2)
W45 = W48 - timedelta(weeks=3)
BEFORE = WINDOW_START - timedelta(seconds=1)  # Sunday 2026-09-06 23:59:59, 2026-W36: outside

ADMIN, ALEX, BLAIR = "admin@clinic.example", "alex@clinic.example", "blair@clinic.example"
P1_PHONE, P2_PHONE, P3_PHONE = "+12025550111", "+12025550122", "+12025550133"


@pytest.fixture
def ddb(dash_app: Any) -> Any:
    return dash_app.extensions["db"]


@pytest.fixture
def history(ddb: Any, clock: Any) -> dict[str, int]:
    """Three clients across two counselors, with a small, fully known history."""
    assert clock() == NOW
    add_counselor(ddb, ADMIN, admin=True, phone="+12025550170")
    alex = add_counselor(ddb, ALEX, phone="+12025550171")
    blair = add_counselor(ddb, BLAIR, phone="+12025550172")

    def seed(s: Any) -> dict[str, int]:
        def person(phone: str, counselor: int, status: str, **extra: Any) -> Participant:
            p = Participant(phone=phone, name=f"Client {phone[-2:]}", counselor_id=counselor, status=status,
                            created_at=WINDOW_START, **extra)
            s.add(p)
            s.flush()
            return p

        p1 = person(P1_PHONE, alex, "active", consent_at=WINDOW_START)
        p2 = person(P2_PHONE, alex, "opted_out", opted_out_at=W45)  # the one opt-out (Alex's, 2026-W45)
        p3 = person(P3_PHONE, blair, "active", consent_at=WINDOW_START)

        def text(p: Participant | None, at: datetime, body: str = "hello", direction: str = "in") -> Message:
            m = Message(participant_id=p.id if p else None, direction=direction, phone=p.phone if p else "+12025550999",
                        body=body, kind="reply", created_at=at)
            s.add(m)
            s.flush()
            return m

        # Texts in: Alex's clients W48 2, W47 1, W46 1 (W37 1 at the very start); Blair's W48 2.
        first = text(p1, W48, "I feel shaky tonight")
        text(p1, W48 + timedelta(hours=1), "=HYPERLINK(\"http://x.example\")")
        text(p1, W47)
        text(p1, WINDOW_START)  # the first moment of the window counts
        text(p1, BEFORE)  # a second earlier does not
        text(p1, W48, "try this skill", direction="out")  # outbound: not a text received
        text(p2, W46)
        text(p3, W48)
        text(p3, W48 + timedelta(hours=2))
        text(None, W48)  # an unknown number: nobody's client

        # Exercises with ratings: box-breathing -3, -1 (Alex) and -4 (Blair); paced-breathing 0 (Alex), -3 (Blair).
        def exercise(p: Participant, skill: str, before: int | None, after: int | None,
                     status: str = "completed", at: datetime = W47) -> None:
            s.add(ExerciseSession(participant_id=p.id, skill_id=skill, distress_state="anxious", status=status,
                                  rating_before=before, rating_after=after, started_at=at,
                                  completed_at=at + timedelta(minutes=5) if status == "completed" else None))

        exercise(p1, "box-breathing", 8, 5)
        exercise(p1, "box-breathing", 6, 5, at=W48)
        exercise(p3, "box-breathing", 7, 3)
        exercise(p2, "paced-breathing", 5, 5, at=W46)
        exercise(p3, "paced-breathing", 9, 6, at=W48)
        exercise(p1, "box-breathing", 7, None, status="abandoned", at=W48)  # started, not finished, no change
        exercise(p1, "box-breathing", 10, 0, at=BEFORE)  # outside the window

        # Nudges: 4 delivered, 3 replied (Alex 2 of 2, Blair 1 of 2); a skipped day and a failed send are not sent.
        def nudge(p: Participant, day: int, replied: bool, outbox_status: str | None = "sent",
                  content: str = "practice") -> None:
            planned = W47 + timedelta(days=day)
            outbox_id = None
            if outbox_status is not None:
                row = Outbox(to_phone=p.phone, body="time to practice", kind="nudge", participant_id=p.id,
                             status=outbox_status, next_attempt_at=planned, created_at=planned,
                             sent_at=planned if outbox_status == "sent" else None)
                s.add(row)
                s.flush()
                outbox_id = row.id
            s.add(NudgeLog(participant_id=p.id, local_date=planned.date(), content=content, outbox_id=outbox_id,
                           planned_at=planned, replied_at=planned + timedelta(hours=1) if replied else None))

        nudge(p1, 0, True)
        nudge(p1, 1, True, content="checkin")
        nudge(p3, 0, True)
        nudge(p3, 1, False)
        nudge(p1, 2, False, outbox_status=None, content="skipped")
        nudge(p3, 2, True, outbox_status="failed")

        # Crisis events acknowledged after 5 (Alex), 60 (Alex) and 10 (Blair) minutes: median 10.
        def event(p: Participant | None, kind: str, at: datetime, ack_minutes: int | None = None,
                  message: Message | None = None) -> None:
            s.add(CrisisEvent(participant_id=p.id if p else None, phone=p.phone if p else "+12025550999", kind=kind,
                              level="high", categories="self_harm", created_at=at,
                              message_id=message.id if message else None,
                              acknowledged_at=at + timedelta(minutes=ack_minutes) if ack_minutes is not None else None,
                              acknowledged_by=ALEX if ack_minutes is not None else None))

        event(p1, "crisis", W48, 5, message=first)
        event(p1, "crisis", W46, 60)
        event(p3, "crisis", W47, 10)
        event(p3, "crisis", W48)  # open: counted as an event, not in the median
        event(p1, "check", W47)
        event(p1, "lapse", W47)  # a note, not an event of either kind
        event(None, "crisis", W48, 1)  # an unknown number: nobody's client

        s.add(SafetyPlan(participant_id=p1.id, warning_signs="pacing at night", updated_at=W47))
        s.add(MoodCheckin(participant_id=p1.id, rating=6, created_at=W47))
        return {"p1": p1.id, "p2": p2.id, "p3": p3.id, "alex": alex, "blair": blair}

    ids: dict[str, int] = ddb.run(seed)
    return ids


def figures(response: Any) -> dict[tuple[str, str], tuple[str, str]]:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["figure", "key", "value", "n", "label"]
    return {(r[0], r[1]): (r[2], r[3]) for r in rows[1:]}


def value(table: dict[tuple[str, str], tuple[str, str]], figure: str, key: str = "total") -> str:
    return table[(figure, key)][0]


# --- reports -------------------------------------------------------------------------------------


def test_admin_sees_every_clients_figures(dash: Any, history: dict[str, int]) -> None:
    dash.login(ADMIN)
    t = figures(dash.get("/reports.csv"))
    assert value(t, "window", "start") == WINDOW_START.isoformat()
    assert value(t, "window", "end") == NOW.isoformat()
    assert value(t, "active_participants", "now") == "2"
    assert value(t, "participants_by_status", "opted_out") == "1"
    assert value(t, "texts_per_week") == "7"
    assert [value(t, "texts_per_week", w) for w in ("2026-W48", "2026-W47", "2026-W46", "2026-W37")] == \
        ["4", "1", "1", "1"]
    assert ("texts_per_week", "2026-W36") not in t  # the week before the window is not listed
    assert value(t, "exercises_started") == "6" and value(t, "exercises_finished") == "5"
    assert t[("skill_change", "box-breathing")] == ("-2.67", "3")  # (-3 - 1 - 4) / 3
    assert t[("skill_change", "paced-breathing")] == ("-1.50", "2")  # (0 - 3) / 2
    assert t[("skill_rating_before", "box-breathing")] == ("7.00", "3")
    assert value(t, "nudges_sent") == "4" and value(t, "nudges_replied") == "3"
    assert t[("nudge_reply_rate", "total")] == ("75.0", "4")
    assert value(t, "opt_outs") == "1" and value(t, "opt_outs", "2026-W45") == "1"
    assert value(t, "crisis_events") == "4" and value(t, "check_events") == "1"
    assert t[("ack_median_minutes", "total")] == ("10.0", "3")  # of 5, 10, 60
    assert t[("ack_median_minutes", "2026-W48")] == ("5.0", "1")
    assert t[("ack_median_minutes", "2026-W45")] == ("", "0")


def test_a_counselor_sees_only_their_clients_figures(dash: Any, history: dict[str, int]) -> None:
    dash.login(ALEX)
    t = figures(dash.get("/reports.csv"))
    assert value(t, "active_participants", "now") == "1"
    assert value(t, "texts_per_week") == "5"
    assert value(t, "exercises_started") == "4" and value(t, "exercises_finished") == "3"
    assert t[("skill_change", "box-breathing")] == ("-2.00", "2")
    assert t[("skill_change", "paced-breathing")] == ("0.00", "1")
    assert t[("nudge_reply_rate", "total")] == ("100.0", "2")
    assert value(t, "opt_outs") == "1"
    assert value(t, "crisis_events") == "2" and value(t, "check_events") == "1"
    assert t[("ack_median_minutes", "total")] == ("32.5", "2")  # of 5 and 60

    dash.client.post("/logout", data={"csrf_token": csrf_token(dash.get("/reports").text)})
    dash.login(BLAIR)
    t = figures(dash.get("/reports.csv"))
    assert value(t, "active_participants", "now") == "1"
    assert ("participants_by_status", "opted_out") not in t
    assert value(t, "texts_per_week") == "2"
    assert t[("skill_change", "box-breathing")] == ("-4.00", "1")
    assert t[("skill_change", "paced-breathing")] == ("-3.00", "1")
    assert t[("nudge_reply_rate", "total")] == ("50.0", "2")
    assert value(t, "opt_outs") == "0"
    assert value(t, "crisis_events") == "2" and value(t, "check_events") == "0"
    assert t[("ack_median_minutes", "total")] == ("10.0", "1")


def test_the_window_is_whole_iso_weeks_up_to_now(dash: Any, history: dict[str, int], clock: Any) -> None:
    dash.login(ADMIN)
    t = figures(dash.get("/reports.csv?weeks=1"))
    assert value(t, "window", "start") == "2026-11-23T00:00:00+00:00"
    assert value(t, "texts_per_week") == "4" and value(t, "exercises_started") == "3"
    assert [k for f, k in t if f == "texts_per_week"] == ["2026-W48", "total"]
    assert value(t, "nudges_sent") == "0" and t[("nudge_reply_rate", "total")] == ("", "0")
    # Out of range asks are held to 1..104 weeks; something not a number is the default 12.
    assert value(figures(dash.get("/reports.csv?weeks=0")), "window", "start") == "2026-11-23T00:00:00+00:00"
    assert len([k for f, k in figures(dash.get("/reports.csv?weeks=500")) if f == "opt_outs"]) == 104 + 1
    assert value(figures(dash.get("/reports.csv?weeks=soon")), "window", "start") == WINDOW_START.isoformat()
    # Time moves on: a week later the text at the window's first moment has left the default window.
    clock.advance(weeks=1)
    assert value(figures(dash.get("/reports.csv")), "texts_per_week") == "6"


def test_window_edges() -> None:
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    assert report_window(monday, 1) == (monday, monday)
    assert report_window(monday - timedelta(microseconds=1), 1)[0] == monday - timedelta(weeks=1)
    assert week_labels(*report_window(datetime(2027, 1, 2, tzinfo=UTC), 2)) == ["2026-W52", "2026-W53"]


def test_the_reports_module_needs_no_web_stack() -> None:
    code = ("import sys, bot.reports\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'werkzeug', 'flask_wtf', 'twilio'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_report_page_draws_charts_from_a_data_block_with_tables(dash: Any, history: dict[str, int]) -> None:
    assert dash.get("/reports").status_code == 302  # sign in first
    dash.login(ALEX)
    page = dash.get("/reports?weeks=4")
    assert page.status_code == 200
    html = page.text
    # Content-Security-Policy: scripts from files only, data in a JSON block, no inline styles.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    inline = [attrs for attrs, body in scripts if body.strip() and 'type="application/json"' not in attrs]
    assert inline == [] and 'style="' not in html and "<style" not in html
    assert 'src="/dashboard-static/vendor/chart-4.6.1.umd.min.js" defer' in html
    assert 'src="/dashboard-static/reports_chart.js" defer' in html
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert block
    data = json.loads(block.group(1))
    assert data["weeks"] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
    assert data["texts"] == [0, 1, 1, 2]
    assert data["skills"]["n"] == [2, 1] and data["skills"]["values"] == [-2.0, 0.0]
    assert data["ack"] == [None, 60.0, None, 5.0]
    for name in ("status", "texts", "exercises", "skills", "nudges", "opt_outs", "events", "ack"):
        assert f'data-chart="{name}"' in html
    assert html.count("<table>") == 8 and '<th scope="row">2026-W46</th>' in html
    assert data["skills"]["labels"] == ["Box breathing", "Paced breathing"]  # skills shown by their title
    assert '<th scope="row">Box breathing</th>' in html
    assert "100%" in html  # Alex's reply rate
    assert P3_PHONE not in html and "Client 33" not in html


@pytest.mark.browser
def test_report_charts_draw_in_a_browser_and_the_page_is_accessible(
    browser_page: Any, live_server: str, history: dict[str, int],
) -> None:
    page = browser_page
    login(page, live_server, ADMIN, PASSWORD)
    page.goto(f"{live_server}/reports")
    page.wait_for_function("() => document.querySelectorAll('canvas[data-chart]').length === 8 && "
                           "[...document.querySelectorAll('canvas[data-chart]')].every((c) => Chart.getChart(c))")
    drawn = page.evaluate("""() => [...document.querySelectorAll('canvas[data-chart]')].map((c) => {
        const chart = Chart.getChart(c);
        return [c.dataset.chart, chart.config.type, chart.options.animation, chart.data.datasets[0].data];
    })""")
    by_name = {name: (kind, animation, values) for name, kind, animation, values in drawn}
    assert by_name["texts"][0] == "line" and by_name["texts"][1] is False
    assert by_name["texts"][2][-3:] == [1, 1, 4]  # 2026-W46..W48, as in the table
    assert by_name["skills"][2] == [-2.67, -1.5]
    page.locator("summary", has_text="Texts received").click()
    assert page.locator("table:has(caption:text('Texts received')) tfoot td").inner_text() == "7"
    assert csp_violations(page) == [] and page_errors(page) == []
    screenshot(page, "reports")
    assert axe_check(page) == [], describe(axe_check(page))
    page.set_viewport_size(PHONE)
    page.wait_for_function("() => [...document.querySelectorAll('canvas[data-chart]')]"
                           ".every((c) => Chart.getChart(c).width < 390)")  # redrawn for the phone
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.goto(f"{live_server}/clients/{history['p1']}/erase")
    assert axe_check(page) == [], describe(axe_check(page))
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert csp_violations(page) == [] and page_errors(page) == []


# --- export --------------------------------------------------------------------------------------


def test_export_csv_is_the_owners_only_and_audited(dash: Any, history: dict[str, int], ddb: Any) -> None:
    p1 = history["p1"]
    dash.login(BLAIR)
    assert dash.get(f"/clients/{p1}/export.csv").status_code == 404
    assert dash.get("/clients/999999/export.csv").status_code == 404
    dash.client.post("/logout", data={"csrf_token": csrf_token(dash.get("/reports").text)})

    dash.login(ALEX)
    response = dash.get(f"/clients/{p1}/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert P1_PHONE[-4:] not in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    messages = rows.index(["messages"])
    assert rows[messages + 1][:4] == ["created_at", "direction", "kind", "body"]
    texts = [r[3] for r in rows[messages + 2:rows.index([], messages)]]
    assert "I feel shaky tonight" in texts and "try this skill" in texts
    assert "'=HYPERLINK(\"http://x.example\")" in texts  # not a formula when opened in a spreadsheet
    exercises = rows.index(["exercise_sessions"])
    assert rows[exercises + 1][:5] == ["started_at", "skill_id", "status", "rating_before", "rating_after"]
    assert ["box-breathing", "completed", "8", "5"] in [r[1:5] for r in rows[exercises + 2:]]
    assert ["mood_checkins"] in rows and ["risk_events"] in rows and ["safety_plan"] in rows
    assert "pacing at night" in response.text
    assert "Client 33" not in response.text and P3_PHONE not in response.text  # nobody else's record

    with ddb.session() as s:
        audits = list(s.scalars(select(AuditLog).where(AuditLog.action == "export")))
    assert [(a.actor, a.participant_id) for a in audits] == [(ALEX, p1)]


# --- erasure -------------------------------------------------------------------------------------


def _counts(ddb: Any, pid: int) -> dict[str, int]:
    with ddb.session() as s:
        def n(model: Any, *where: Any) -> int:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        return {
            "messages": n(Message, Message.participant_id == pid),
            "outbox": n(Outbox, Outbox.participant_id == pid),
            "plans": n(SafetyPlan, SafetyPlan.participant_id == pid),
            "exercises": n(ExerciseSession, ExerciseSession.participant_id == pid),
            "events": n(CrisisEvent, CrisisEvent.participant_id == pid),
            "erasures": n(AuditLog, AuditLog.action == "erase"),
        }


def test_erase_asks_for_the_last_four_digits_then_erases_as_the_cli_does(
    dash: Any, history: dict[str, int], ddb: Any,
) -> None:
    p1 = history["p1"]
    before = _counts(ddb, p1)
    assert before["messages"] == 6 and before["outbox"] == 2 and before["plans"] == 1
    dash.login(ALEX)
    page = dash.get(f"/clients/{p1}/erase")
    assert page.status_code == 200
    assert "6 text messages" in page.text and "The safety plan" in page.text
    assert P1_PHONE[-4:] not in page.text  # the page does not give the answer away
    assert 'name="confirm"' in page.text

    wrong = dash.submit(f"/clients/{p1}/erase", {"confirm": "0000"})
    assert wrong.status_code == 422 and "not the last 4 digits" in wrong.text
    blank = dash.submit(f"/clients/{p1}/erase", {"confirm": ""})
    assert blank.status_code == 422
    assert _counts(ddb, p1) == before

    done = dash.submit(f"/clients/{p1}/erase", {"confirm": P1_PHONE[-4:]})
    assert done.status_code == 302 and done.headers["Location"].endswith("/clients")
    after = _counts(ddb, p1)
    assert after["messages"] == 0 and after["outbox"] == 0 and after["plans"] == 0
    assert after["exercises"] == before["exercises"] and after["events"] == before["events"]  # aggregates kept
    with ddb.session() as s:
        person = s.get(Participant, p1)
        assert person.phone.startswith("erased") and person.name is None and person.status == "erased"
        assert s.scalar(select(func.count()).select_from(Message).where(Message.phone == P1_PHONE)) == 0
        assert P1_PHONE not in {e.phone for e in s.scalars(select(CrisisEvent))}
        assert s.scalar(select(ExerciseSession.rating_before).where(
            ExerciseSession.participant_id == p1, ExerciseSession.started_at == W47)) == 8
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "erase")).one()
        assert audit.actor == ALEX and audit.participant_id == p1 and audit.detail["messages"] == 6
    assert "is erased" in dash.get("/reports").text  # the flash message

    # The program's figures keep the erased client's aggregates; their texts are gone.
    t = figures(dash.get("/reports.csv"))
    assert value(t, "texts_per_week") == "1"
    assert t[("nudge_reply_rate", "total")] == ("100.0", "2")
    assert t[("skill_change", "box-breathing")] == ("-2.00", "2")
    assert value(t, "participants_by_status", "erased") == "1"

    again = dash.get(f"/clients/{p1}/erase")
    assert again.status_code == 302 and _counts(ddb, p1)["erasures"] == 1


def test_erase_is_the_owners_only_and_needs_csrf(dash: Any, history: dict[str, int], ddb: Any) -> None:
    p1 = history["p1"]
    before = _counts(ddb, p1)
    dash.login(BLAIR)
    assert dash.get(f"/clients/{p1}/erase").status_code == 404
    assert dash.post(f"/clients/{p1}/erase", {"confirm": P1_PHONE[-4:]}, token_from="/reports").status_code == 404
    dash.client.post("/logout", data={"csrf_token": csrf_token(dash.get("/reports").text)})

    dash.login(ALEX)
    no_token = dash.client.post(f"/clients/{p1}/erase", data={"confirm": P1_PHONE[-4:]})
    assert no_token.status_code == 400
    forged = dash.client.post(f"/clients/{p1}/erase", data={"confirm": P1_PHONE[-4:], "csrf_token": "x" * 40})
    assert forged.status_code == 400
    assert _counts(ddb, p1) == before


def test_an_admin_may_erase_any_client(dash: Any, history: dict[str, int], ddb: Any) -> None:
    p3 = history["p3"]
    dash.login(ADMIN)
    assert dash.get(f"/clients/{p3}/export.csv").status_code == 200
    done = dash.submit(f"/clients/{p3}/erase", {"confirm": P3_PHONE[-4:]})
    assert done.status_code == 302
    with ddb.session() as s:
        assert s.get(Participant, p3).status == "erased"
        actors = {(a.action, a.actor) for a in s.scalars(select(AuditLog).where(AuditLog.participant_id == p3))}
    assert actors == {("export", ADMIN), ("erase", ADMIN)}

