"""Therapy groups in the dashboard: creating one (and every refusal next to its field), members
added from the group page and from the client's own page, the limits between counselors, a text
to the group (preview with segments, encoding, cost and who is left out; sent once however often
the form is posted) and the meeting reminder a member added here gets from the scheduler's tick.

Driven as a browser does (CSRF on, signed in through /login), on the real database; texts go
through the real Twilio client to the local fake Twilio.
"""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import broadcast, scheduler
from bot.models import OPTED_OUT, AuditLog, Cohort, Outbox, Participant
from tests.dashboard_helpers import add_counselor, csrf_token
from tests.nudge_fixtures import add_participant, utc

ALICE = "alice@clinic.example"
BOB = "bob@clinic.example"
ADMIN = "admin@clinic.example"
PROGRAM = "IOP Coping Skills"

GROUP: dict[str, Any] = {
    "name": "Tuesday group", "meeting_days": "mon,wed,fri", "meeting_time": "18:00",
    "timezone": "America/New_York", "reminder_text": "Room 4, bring your diary card.",
    "reminder_minutes_before": "60",
}


@pytest.fixture
def store(dash_app: Any) -> Any:
    return dash_app.extensions["db"]


@pytest.fixture
def staff(store: Any) -> dict[str, int]:
    return {email: add_counselor(store, email, admin=email == ADMIN, phone=phone)
            for email, phone in ((ALICE, "+12025550171"), (BOB, "+12025550172"), (ADMIN, "+12025550173"))}


def client_of(store: Any, counselor_id: int, name: str, **fields: Any) -> int:
    # No daily nudge days: only the texts under test reach the fake Twilio.
    return add_participant(store, counselor_id=counselor_id, name=name, nudge_days="", **fields)


def phone_of(store: Any, participant_id: int) -> str:
    return str(store.run(lambda s: s.get(Participant, participant_id).phone))


def cohort_of(store: Any, participant_id: int) -> int | None:
    return store.run(lambda s: s.get(Participant, participant_id).cohort_id)  # type: ignore[no-any-return]


def create_group(dash: Any, **changes: Any) -> Any:
    return dash.submit("/cohorts/new", {**GROUP, **changes})


def group_id(store: Any, name: str = "Tuesday group") -> int:
    return int(store.run(lambda s: s.scalar(select(Cohort.id).where(Cohort.name == name))))


def audits(store: Any, action: str) -> list[AuditLog]:
    return list(store.run(lambda s: list(s.scalars(select(AuditLog).where(AuditLog.action == action)
                                                   .order_by(AuditLog.id)))))


def field_error(html: str, field: str) -> str:
    """The error shown next to `field` (the macro's <small id="<field>-error">), or ""."""
    match = re.search(rf'<small id="{field}-error" class="field-error">(.*?)</small>', html, re.S)
    return unescape(match.group(1)) if match else ""


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def count(store: Any, model: Any) -> int:
    return int(store.run(lambda s: s.scalar(select(func.count()).select_from(model))))


# --- creating a group ------------------------------------------------------------------------------------


def test_a_counselor_creates_a_group_and_sees_it_listed(dash: Any, store: Any, staff: dict[str, int]) -> None:
    dash.login(ALICE)
    response = create_group(dash)
    cohort_id = group_id(store)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/cohorts/{cohort_id}")
    row = store.run(lambda s: s.get(Cohort, cohort_id))
    assert (row.meeting_days, row.meeting_time, row.timezone, row.reminder_minutes_before, row.counselor_id) == (
        "024", "18:00", "America/New_York", 60, staff[ALICE])
    (entry,) = audits(store, "cohort_create")
    assert entry.actor == ALICE and entry.detail == {"cohort": cohort_id}

    page = text_of(dash.get("/cohorts").text)
    # The clock is Friday 27 November 2026, 10:00 in New York: the next meeting is tonight.
    assert "Tuesday group" in page and "Mon, Wed, Fri at 18:00" in page
    assert "Fri 27 Nov, 18:00 EST" in page and "in 8 h" in page and "60 min before" in page
    group = text_of(dash.get(f"/cohorts/{cohort_id}").text)
    assert f"{PROGRAM}: reminder, Tuesday group meets Fri 18:00 EST. Room 4, bring your diary card." in group
    assert "1 segment, GSM-7" in group


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"reminder_text": "Reply STOP to skip tonight."}, "reminder_text", "“STOP” is a word carriers act on"),
    ({"reminder_text": "We END at 8."}, "reminder_text", "“END” is a word carriers act on"),
    ({"reminder_text": "Text YES if you come."}, "reminder_text", "“YES”"),
    ({"name": "Quit smoking group"}, "name", "“QUIT” is a word carriers act on"),
    ({"meeting_days": "funday"}, "meeting_days", "is not a list of days"),
    ({"meeting_days": ""}, "meeting_days", "at least one meeting day"),
    ({"meeting_time": "late"}, "meeting_time", "like 18:00"),
    ({"timezone": "Mars/Olympus"}, "timezone", "is not an IANA time zone"),
    ({"reminder_minutes_before": "3000"}, "reminder_minutes_before", "Between 0 and 2880"),
    ({"reminder_text": "Bring your diary card and the worksheet. " * 11}, "reminder_text", "SMS segments"),
])
def test_each_refusal_is_shown_next_to_its_field(dash: Any, store: Any, staff: dict[str, int],
                                                 changes: dict[str, str], field: str, words: str) -> None:
    dash.login(ALICE)
    response = create_group(dash, **changes)
    assert response.status_code == 422
    assert words in field_error(response.text, field)
    assert count(store, Cohort) == 0 and audits(store, "cohort_create") == []


def test_a_duplicate_name_is_refused_next_to_the_name(dash: Any, store: Any, staff: dict[str, int]) -> None:
    dash.login(ALICE)
    assert create_group(dash).status_code == 302
    response = create_group(dash, name="tuesday GROUP", meeting_days="thu")
    assert response.status_code == 422
    assert "already exists" in field_error(response.text, "name")
    assert count(store, Cohort) == 1


def test_a_long_reminder_under_the_limit_is_saved_with_a_note(dash: Any, store: Any, staff: dict[str, int]) -> None:
    dash.login(ALICE)
    response = create_group(dash, reminder_text="Bring your diary card and the worksheet. " * 4)
    assert response.status_code == 302
    note = text_of(dash.get(response.headers["Location"]).text)
    assert "each reminder is 2 SMS segments (GSM-7)" in note


def test_only_the_owner_or_an_admin_edits_a_group(dash: Any, store: Any, staff: dict[str, int]) -> None:
    dash.login(ALICE)
    create_group(dash)
    cohort_id = group_id(store)
    dash.client.post("/logout", data={"csrf_token": csrf_token(dash.get("/cohorts").text)})
    dash.login(BOB)
    assert dash.get(f"/cohorts/{cohort_id}").status_code == 200  # groups are shared: Bob sees it
    assert dash.get(f"/cohorts/{cohort_id}/edit").status_code == 403
    dash.client.post("/logout", data={"csrf_token": csrf_token(dash.get("/cohorts").text)})
    dash.login(ADMIN)
    response = dash.submit(f"/cohorts/{cohort_id}/edit", {**GROUP, "meeting_time": "17:30", "active": "y"})
    assert response.status_code == 302
    assert store.run(lambda s: s.get(Cohort, cohort_id).meeting_time) == "17:30"
    (entry,) = audits(store, "cohort_update")
    assert entry.actor == ADMIN and entry.detail == {"cohort": cohort_id, "changed": ["meeting_time"]}


# --- members ----------------------------------------------------------------------------------------------


def test_members_are_added_from_the_group_page_and_from_the_client_route(
        dash: Any, store: Any, staff: dict[str, int]) -> None:
    ana, ben = client_of(store, staff[ALICE], "Ana"), client_of(store, staff[ALICE], "Ben")
    dash.login(ALICE)
    create_group(dash)
    cohort_id = group_id(store)
    page = dash.get(f"/cohorts/{cohort_id}").text
    assert f'<option value="{ana}">Ana (active)</option>' in page

    response = dash.submit(f"/cohorts/{cohort_id}", {"participant_id": str(ana)},
                           action=f"/cohorts/{cohort_id}/members")
    assert response.status_code == 302 and cohort_of(store, ana) == cohort_id
    page = dash.get(f"/cohorts/{cohort_id}").text
    assert f'<option value="{ana}">' not in page  # a member is no longer offered
    assert "Ana" in text_of(page.split('id="members-heading"', 1)[1])

    response = dash.post(f"/clients/{ben}/cohort", {"cohort_id": str(cohort_id)}, token_from=f"/cohorts/{cohort_id}")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/clients/{ben}")
    assert cohort_of(store, ben) == cohort_id
    response = dash.post(f"/clients/{ben}/cohort", {"cohort_id": ""}, token_from=f"/cohorts/{cohort_id}")
    assert response.status_code == 302 and cohort_of(store, ben) is None

    response = dash.post(f"/cohorts/{cohort_id}/members/{ana}/remove", token_from=f"/cohorts/{cohort_id}")
    assert response.status_code == 302 and cohort_of(store, ana) is None
    assert [(a.participant_id, a.detail["cohort"]) for a in audits(store, "cohort_assign")] == [
        (ana, cohort_id), (ben, cohort_id)]
    assert [(a.participant_id, a.detail["cohort"]) for a in audits(store, "cohort_remove")] == [
        (ben, cohort_id), (ana, cohort_id)]


def test_the_client_form_partial_posts_to_the_client_route(dash_app: Any, store: Any, staff: dict[str, int]) -> None:
    ana = client_of(store, staff[ALICE], "Ana")
    store.run(lambda s: s.add(Cohort(name="Evening group", meeting_days="1", meeting_time="18:00",
                                     timezone="America/New_York", reminder_text="")))
    from flask import render_template

    with dash_app.test_request_context("/"):
        participant = store.run(lambda s: s.get(Participant, ana))
        html = render_template("dashboard/_client_cohort_form.html", participant=participant, cohorts=None)
    assert f'action="/clients/{ana}/cohort"' in html and 'name="csrf_token"' in html
    assert '<option value="" selected>No group</option>' in html and ">Evening group</option>" in html


def test_a_counselor_cannot_add_or_remove_another_counselors_client(
        dash: Any, store: Any, staff: dict[str, int]) -> None:
    alices = client_of(store, staff[ALICE], "Ana")
    bobs = client_of(store, staff[BOB], "Bea")
    dash.login(ALICE)
    create_group(dash)
    cohort_id = group_id(store)
    dash.submit(f"/cohorts/{cohort_id}", {"participant_id": str(alices)}, action=f"/cohorts/{cohort_id}/members")
    dash.client.post("/logout", data={"csrf_token": csrf_token(dash.get("/cohorts").text)})

    dash.login(BOB)
    page = dash.get(f"/cohorts/{cohort_id}").text
    assert "Ana" not in page and "1 more member is other counselors' client" in text_of(page)
    assert f'<option value="{alices}"' not in page and f'<option value="{bobs}">Bea (active)</option>' in page
    token = f"/cohorts/{cohort_id}"
    add = f"/cohorts/{cohort_id}/members"
    assert dash.post(add, {"participant_id": str(alices)}, token_from=token).status_code == 404
    assert dash.post(f"/clients/{alices}/cohort", {"cohort_id": ""}, token_from=token).status_code == 404
    assert dash.post(f"/cohorts/{cohort_id}/members/{alices}/remove", token_from=token).status_code == 404
    assert cohort_of(store, alices) == cohort_id
    assert dash.post(add, {"participant_id": str(bobs)}, token_from=token).status_code == 302
    assert cohort_of(store, bobs) == cohort_id
    assert dash.post(f"/cohorts/{cohort_id + 99}/members", {"participant_id": str(bobs)},
                     token_from=token).status_code == 404


# --- a text to the group --------------------------------------------------------------------------------


@pytest.fixture
def group(dash: Any, store: Any, staff: dict[str, int]) -> dict[str, int]:
    """A group of Alice's: two who get texts, one opted out, one invited, one paused; and Bob's client."""
    dash.login(ALICE)
    create_group(dash)
    cohort_id = group_id(store)
    people = {
        "Ana": client_of(store, staff[ALICE], "Ana"),
        "Ben": client_of(store, staff[ALICE], "Ben"),
        "Olive": client_of(store, staff[ALICE], "Olive", status=OPTED_OUT),
        "Ivy": client_of(store, staff[ALICE], "Ivy", status="invited"),
        "Paul": client_of(store, staff[ALICE], "Paul", nudges_paused=True),
        "Bea": client_of(store, staff[BOB], "Bea"),
    }
    store.run(lambda s: [setattr(s.get(Participant, pid), "cohort_id", cohort_id) for pid in people.values()])
    return {"cohort": cohort_id, **people}


def preview(dash: Any, cohort_id: int, body: str) -> Any:
    return dash.submit(f"/cohorts/{cohort_id}/broadcast", {"body": body, "preview": "Preview"})


def send_form(html: str) -> dict[str, str]:
    """The preview's send form, as the browser would post it."""
    form = html.split('class="cohorts-send"', 1)[1].split("</form>", 1)[0]
    fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', form))
    return {name: unescape(value) for name, value in fields.items()}


def test_the_preview_shows_segments_encoding_cost_and_who_is_left_out(
        dash: Any, store: Any, group: dict[str, int], fake_twilio: Any) -> None:
    response = preview(dash, group["cohort"], "Tonight we meet in room 5.")
    assert response.status_code == 200
    page = text_of(response.text)
    assert f"{PROGRAM}: Tonight we meet in room 5." in page
    assert "1 SMS segment per recipient" in page and "Encoding GSM-7" in page
    assert "$0.0083 per recipient, $0.0166 for 2" in page
    recipients = text_of(response.text.split('class="cohorts-recipients"', 1)[1].split("</table>", 1)[0])
    assert "Ana" in recipients and "Ben" in recipients and "Olive" not in recipients
    skipped = text_of(response.text.split('class="cohorts-skipped"', 1)[1].split("</table>", 1)[0])
    assert "Olive" in skipped and "opted out" in skipped
    assert "Ivy" in skipped and "invited, has not agreed to texts yet" in skipped
    assert "Paul" in skipped and "paused" in skipped
    assert "Bea" not in page and "1 member of the group is other counselors' client" in page
    assert "your own clients" in page
    assert re.fullmatch(r"[0-9a-f]{32}", send_form(response.text)["broadcast_id"])
    assert fake_twilio.messages == [] and count(store, Outbox) == 0


def test_sending_reaches_exactly_the_active_members_once(
        dash: Any, store: Any, group: dict[str, int], fake_twilio: Any) -> None:
    page = preview(dash, group["cohort"], "Tonight we meet in room 5.\r\nSee you there.").text
    form = send_form(page)
    assert form["body"] == "Tonight we meet in room 5.\nSee you there."
    first = dash.post(f"/cohorts/{group['cohort']}/broadcast", form, token_from="/cohorts")
    again = dash.post(f"/cohorts/{group['cohort']}/broadcast", form, token_from="/cohorts")  # a double click
    assert first.status_code == again.status_code == 302
    expected = f"{PROGRAM}: Tonight we meet in room 5.\nSee you there."
    for name in ("Ana", "Ben"):
        assert fake_twilio.bodies_to(phone_of(store, group[name])) == [expected], name
    assert len(fake_twilio.messages) == 2
    for name in ("Olive", "Ivy", "Paul", "Bea"):
        assert fake_twilio.bodies_to(phone_of(store, group[name])) == [], name
    (entry,) = audits(store, "cohort_broadcast")
    assert entry.actor == ALICE and entry.detail["cohort"] == group["cohort"] and entry.detail["count"] == 2
    assert "already sent" in text_of(dash.get(again.headers["Location"]).text)


def test_an_admin_broadcast_reaches_every_counselors_members(
        dash: Any, store: Any, group: dict[str, int], fake_twilio: Any) -> None:
    dash.client.post("/logout", data={"csrf_token": csrf_token(dash.get("/cohorts").text)})
    dash.login(ADMIN)
    form = send_form(preview(dash, group["cohort"], "Group is on as usual.").text)
    dash.post(f"/cohorts/{group['cohort']}/broadcast", form, token_from="/cohorts")
    assert sorted(m.to for m in fake_twilio.messages) == sorted(
        phone_of(store, group[name]) for name in ("Ana", "Ben", "Bea"))


def test_an_emoji_makes_the_text_ucs2_and_longer(dash: Any, store: Any, group: dict[str, int]) -> None:
    body = "Great work this week everyone, see you all on Friday evening at six \U0001F600"
    page = text_of(preview(dash, group["cohort"], body).text)
    assert "Encoding UCS-2" in page and "because of \U0001F600" in page
    assert "2 SMS segments per recipient" in page and "$0.0166 per recipient, $0.0332 for 2" in page
    plain = text_of(preview(dash, group["cohort"], body[:-2]).text)
    assert "Encoding GSM-7" in plain and "1 SMS segment per recipient" in plain


@pytest.mark.parametrize("body", ["Reply STOP if you cannot come.", "We will end early, so quit by 7."])
def test_a_carrier_word_in_the_text_is_refused_next_to_it(
        dash: Any, store: Any, group: dict[str, int], fake_twilio: Any, body: str) -> None:
    response = preview(dash, group["cohort"], body)
    assert response.status_code == 422
    assert "is a word carriers act on" in field_error(response.text, "body")
    assert 'class="cohorts-send"' not in response.text
    # Posting the send form directly (skipping the preview) is refused the same way.
    response = dash.post(f"/cohorts/{group['cohort']}/broadcast",
                         {"body": body, "broadcast_id": "a" * 32, "send": "Send"}, token_from="/cohorts")
    assert response.status_code == 422 and "carriers act on" in field_error(response.text, "body")
    assert fake_twilio.messages == [] and audits(store, "cohort_broadcast") == []


def test_a_member_outside_their_hours_gets_the_text_when_they_begin(
        dash: Any, dash_app: Any, store: Any, group: dict[str, int], fake_twilio: Any) -> None:
    store.run(lambda s: setattr(s.get(Participant, group["Ben"]), "quiet_start", "12:00"))
    page = preview(dash, group["cohort"], "Room 5 tonight.").text
    assert "at Fri 12:00 EST" in text_of(page)
    dash.post(f"/cohorts/{group['cohort']}/broadcast", send_form(page), token_from="/cohorts")
    ben = phone_of(store, group["Ben"])
    assert len(fake_twilio.bodies_to(phone_of(store, group["Ana"]))) == 1 and fake_twilio.bodies_to(ben) == []
    scheduler.tick(dash_app, utc(2026, 11, 27, 16, 59))  # 11:59 in New York
    assert fake_twilio.bodies_to(ben) == []
    scheduler.tick(dash_app, utc(2026, 11, 27, 17, 0))
    assert fake_twilio.bodies_to(ben) == [f"{PROGRAM}: Room 5 tonight."]


def test_posts_without_the_csrf_token_are_refused(dash: Any, store: Any, group: dict[str, int],
                                                  fake_twilio: Any) -> None:
    cohort_id, ana = group["cohort"], group["Ana"]
    attempts = [
        ("/cohorts/new", {**GROUP, "name": "Other"}),
        (f"/cohorts/{cohort_id}/broadcast", {"body": "Hi", "broadcast_id": "b" * 32, "send": "Send"}),
        (f"/cohorts/{cohort_id}/members", {"participant_id": str(ana)}),
        (f"/cohorts/{cohort_id}/members/{ana}/remove", {}),
        (f"/clients/{ana}/cohort", {"cohort_id": ""}),
    ]
    for path, data in attempts:
        assert dash.client.post(path, data=data).status_code == 400, path
    assert count(store, Cohort) == 1 and cohort_of(store, ana) == cohort_id and fake_twilio.messages == []


# --- the meeting reminder --------------------------------------------------------------------------------


def test_a_member_added_in_the_dashboard_gets_the_meeting_reminder_from_the_tick(
        dash: Any, dash_app: Any, store: Any, staff: dict[str, int], fake_twilio: Any) -> None:
    ana = client_of(store, staff[ALICE], "Ana")
    dash.login(ALICE)
    create_group(dash)
    cohort_id = group_id(store)
    phone = phone_of(store, ana)
    scheduler.tick(dash_app, utc(2026, 11, 27, 22, 0))  # Friday 17:00 EST: due, but Ana is not a member yet
    assert fake_twilio.bodies_to(phone) == []
    dash.post(f"/clients/{ana}/cohort", {"cohort_id": str(cohort_id)}, token_from="/cohorts")
    scheduler.tick(dash_app, utc(2026, 11, 27, 22, 1))
    assert fake_twilio.bodies_to(phone) == [
        f"{PROGRAM}: reminder, Tuesday group meets Fri 18:00 EST. Room 4, bring your diary card."]
    scheduler.tick(dash_app, utc(2026, 11, 27, 22, 5))
    assert len(fake_twilio.bodies_to(phone)) == 1


# --- the rules themselves ----------------------------------------------------------------------------------


def member(**fields: Any) -> Participant:
    values: dict[str, Any] = {"phone": "+15550000001", "name": "Ana", "status": "active",
                              "timezone": "America/New_York", "quiet_start": "08:00", "quiet_end": "21:00",
                              "nudges_paused": False, "crisis_hold": False, "invalid_number": False,
                              "paused_until": None, "aftercare_days": 0, **fields}
    return Participant(**values)


@pytest.mark.parametrize(("fields", "reason"), [
    ({}, None),
    ({"status": OPTED_OUT}, "opted out of all texts"),
    ({"status": "invited"}, "invited, has not agreed to texts yet"),
    ({"status": "discharged"}, "discharged"),
    ({"invalid_number": True}, "the number cannot receive texts"),
    ({"crisis_hold": True}, "crisis hold: texts wait until the crisis is acknowledged"),
    ({"nudges_paused": True}, "paused"),
    ({"paused_until": utc(2026, 11, 28, 15)}, "paused until Sat 28 Nov 10:00 EST"),
    ({"paused_until": utc(2026, 11, 27, 14)}, None),  # a pause that has ended
    ({"discharge_date": date(2026, 11, 20), "aftercare_days": 3}, "discharged (program and aftercare ended)"),
    ({"discharge_date": date(2026, 11, 20), "aftercare_days": 7}, None),  # in aftercare
    ({"admission_date": date(2026, 12, 1)}, "program starts 01 Dec 2026"),
])
def test_who_is_left_out_of_a_broadcast_and_why(fields: dict[str, Any], reason: str | None) -> None:
    assert broadcast.skip_reason(member(**fields), utc(2026, 11, 27, 15)) == reason


def test_a_text_outside_the_allowed_hours_waits_for_the_window_to_open() -> None:
    now = utc(2026, 11, 28, 3)  # 22:00 on Friday in New York
    assert broadcast.send_time(member(), utc(2026, 11, 27, 15)) == utc(2026, 11, 27, 15)
    assert broadcast.send_time(member(), now) == utc(2026, 11, 28, 13)  # Saturday 08:00 EST
    assert broadcast.send_time(member(quiet_start="22:00", quiet_end="06:00"), now) == now  # a night window


def test_carrier_words_are_found_as_whole_words_only() -> None:
    assert broadcast.carrier_problems("See you at the weekend, stopping by is fine.") == []
    assert [p.split("”")[0] for p in broadcast.carrier_problems("Stop by; we END at 8, stop.")] == ["“STOP", "“END"]
    assert broadcast.carrier_problems("Reply YES if you come") and not broadcast.carrier_problems("Yes, we meet.")
