"""The clients pages of the dashboard: the list, enrolling one client by form, and many by CSV.

Driven as a browser does (CSRF on, signed in through /login), on the real database; invitations
go out through the real Twilio client to the local fake Twilio.
"""

from __future__ import annotations

import codecs
import io
import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import roster
from bot.enrollment import EnrollmentError, EnrollmentRequest, enroll, hash_password, normalise_phone
from bot.models import AuditLog, Counselor, CrisisEvent, ExerciseSession, MoodCheckin, Outbox, Participant
from tests.dashboard_helpers import PASSWORD

ALICE = "alice@clinic.example"
BOB = "bob@clinic.example"
ADMIN = "admin@clinic.example"

FORM_DEFAULTS: dict[str, Any] = {
    "phone": "", "name": "", "timezone": "America/New_York", "nudge_time": "10:00",
    "nudge_days": ["mon", "tue", "wed", "thu", "fri"], "quiet_start": "08:00", "quiet_end": "21:00",
    "admission_date": "", "discharge_date": "", "aftercare_days": "0",
}


@pytest.fixture
def store(dash_app: Any) -> Any:
    return dash_app.extensions["db"]


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: hash once for the module


@pytest.fixture
def staff(store: Any, password_hash: str) -> dict[str, int]:
    """Alice and Bob (counselors) and an admin, each signing in with the helpers' PASSWORD."""
    def work(s: Any) -> dict[str, int]:
        people = {}
        for email, phone in ((ALICE, "+12025550171"), (BOB, "+12025550172"), (ADMIN, "+12025550173")):
            counselor = Counselor(email=email, name=email.split("@")[0].title(), phone=phone,
                                  password_hash=password_hash, is_admin=email == ADMIN)
            s.add(counselor)
            s.flush()
            people[email] = counselor.id
        return people

    return dict(store.run(work))


def add_client(dash_app: Any, clock: Any, phone: str, counselor: str, name: str | None, *,
               status: str = "active", **fields: Any) -> int:
    request = EnrollmentRequest(phone=phone, counselor_email=counselor, name=name)

    def work(s: Any) -> int:
        participant, _ = enroll(s, dash_app.extensions["library"], request, now=clock(), region="US",
                                program_name="Test")
        participant.status = status
        for key, value in fields.items():
            setattr(participant, key, value)
        return participant.id

    return int(dash_app.extensions["db"].run(work))


def open_crisis(store: Any, clock: Any, participant_id: int, *, kind: str = "crisis",
                acknowledged: bool = False) -> int:
    def work(s: Any) -> int:
        participant = s.get(Participant, participant_id)
        event = CrisisEvent(participant_id=participant_id, phone=participant.phone, kind=kind, level="high",
                            categories="suicide", created_at=clock(),
                            acknowledged_at=clock() if acknowledged else None)
        s.add(event)
        s.flush()
        return event.id

    return int(store.run(work))


def rows_of(html: str) -> list[str]:
    """The body rows of the clients table, in order, as text."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr[^>]*>.*?</tr>", body, re.S)


def names_in(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<th scope="row">\s*<a href="[^"]*">([^<]+)</a>', html)]


def field_error(html: str, field_id: str) -> str:
    """The error shown next to a field: inside its label (or fieldset), and named by the input's
    aria-describedby."""
    error_id = f"{field_id}-error"
    describer = re.search(rf'<[^>]*aria-describedby="{error_id}"[^>]*>', html)
    assert describer, f"nothing is described by {error_id}"
    container = re.search(rf'<label for="{field_id}">(.*?)</label>', html, re.S) or re.search(
        rf'<fieldset[^>]*aria-describedby="{error_id}"[^>]*>(.*?)</fieldset>', html, re.S)
    assert container, f"no label or fieldset for {field_id}"
    message = re.search(rf'<small id="{error_id}" class="field-error">(.*?)</small>', container.group(1), re.S)
    assert message, f"no error inside the label of {field_id}"
    return unescape(message.group(1))


def count(store: Any, model: Any) -> int:
    return int(store.run(lambda s: s.scalar(select(func.count()).select_from(model))))


# --- the list ------------------------------------------------------------------------------------


def test_signed_out_visitor_is_sent_to_sign_in(dash: Any, staff: Any) -> None:
    response = dash.get("/clients")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_counselor_sees_only_own_clients_and_admin_sees_all(dash: Any, dash_app: Any, clock: Any,
                                                            staff: Any) -> None:
    add_client(dash_app, clock, "+12025550101", ALICE, "Avery Stone")
    add_client(dash_app, clock, "+12025550102", BOB, "Blake Rivers")
    add_client(dash_app, clock, "+12025550103", ALICE, None)  # no name: the masked number stands in

    dash.login(ALICE)
    page = dash.get("/clients")
    assert page.status_code == 200
    assert names_in(page.text) == ["Avery Stone", "***0103"]
    assert "Blake Rivers" not in page.text and "+12025550103" not in page.text
    assert '<th scope="col" class="col-optional">Counselor</th>' not in page.text

    dash.client.post("/logout", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"',
                                                              page.text).group(1)})  # type: ignore[union-attr]
    dash.login(ADMIN)
    page = dash.get("/clients")
    assert sorted(names_in(page.text)) == ["***0103", "Avery Stone", "Blake Rivers"]
    assert '<th scope="col" class="col-optional">Counselor</th>' in page.text
    blake = next(r for r in rows_of(page.text) if "Blake Rivers" in r)
    assert "Bob" in blake


def test_open_crisis_comes_first_highlighted_with_a_link(dash: Any, dash_app: Any, store: Any, clock: Any,
                                                         staff: Any) -> None:
    add_client(dash_app, clock, "+12025550101", ALICE, "Aaron Able")
    quiet = add_client(dash_app, clock, "+12025550102", ALICE, "Morgan Mild")
    urgent = add_client(dash_app, clock, "+12025550103", ALICE, "Zoe Zed")
    event = open_crisis(store, clock, urgent)
    open_crisis(store, clock, quiet, acknowledged=True)  # handled: not urgent
    open_crisis(store, clock, quiet, kind="check")  # a check is not a crisis alert

    dash.login(ALICE)
    page = dash.get("/clients")
    assert names_in(page.text) == ["Zoe Zed", "Aaron Able", "Morgan Mild"]
    rows = rows_of(page.text)
    assert rows[0].startswith('<tr class="urgent">')
    assert "urgent" not in rows[1] and "urgent" not in rows[2]
    link = re.search(r'<a class="crisis-link" href="([^"]+)"', rows[0])
    assert link is not None
    expected = f"/crises/{event}" if "dashboard.crisis" in dash_app.view_functions else "/crises"
    assert link.group(1) == expected
    assert "crisis-link" not in rows[1] + rows[2]
    assert "1 client with a crisis alert" in page.text


def test_search_by_name_and_by_last_digits(dash: Any, dash_app: Any, clock: Any, staff: Any) -> None:
    add_client(dash_app, clock, "+12025550143", ALICE, "Jordan Lee")
    add_client(dash_app, clock, "+12025550188", ALICE, "Riley O'Hara")
    add_client(dash_app, clock, "+12025550199", BOB, "Jordan Bobson")  # another counselor's
    dash.login(ALICE)

    assert names_in(dash.get("/clients?q=jOrDaN").text) == ["Jordan Lee"]
    assert names_in(dash.get("/clients?q=o'hara").text) == ["Riley O'Hara"]
    assert names_in(dash.get("/clients?q=0143").text) == ["Jordan Lee"]
    assert names_in(dash.get("/clients", query_string={"q": "(202) 555-0188"}).text) == ["Riley O'Hara"]
    assert names_in(dash.get("/clients?q=0199").text) == []  # Bob's client stays hidden
    assert names_in(dash.get("/clients?q=555").text) == []  # fewer than 4 digits: no number search
    page = dash.get("/clients?q=%25")  # a LIKE wildcard is a plain character
    assert names_in(page.text) == [] and "No client matches" in page.text


def test_status_activity_latest_rating_and_trend(dash: Any, dash_app: Any, store: Any, clock: Any,
                                                 staff: Any) -> None:
    now = clock()
    mood = add_client(dash_app, clock, "+12025550101", ALICE, "Ann Mood", last_inbound_at=now - timedelta(hours=3))
    skill = add_client(dash_app, clock, "+12025550102", ALICE, "Ben Skill", nudges_paused=True)
    old = add_client(dash_app, clock, "+12025550103", ALICE, "Cal Old", status="invited")
    add_client(dash_app, clock, "+12025550104", ALICE, "Dee Gone", status="opted_out")

    def ratings(s: Any) -> None:
        # Ann: mood 3 and 4 earlier this fortnight, 8 now (higher mood is better) -> better.
        for days, rating in ((10, 3), (5, 4), (0, 8)):
            s.add(MoodCheckin(participant_id=mood, rating=rating, created_at=now - timedelta(days=days, minutes=1)))
        # Ben: feelings after skills 2 then 7 (lower is better); the latest is the one "after".
        s.add(ExerciseSession(participant_id=skill, skill_id="box-breathing", distress_state="anxiety",
                              rating_before=8, rating_after=2, started_at=now - timedelta(days=3),
                              completed_at=now - timedelta(days=3) + timedelta(minutes=5), status="completed"))
        s.add(ExerciseSession(participant_id=skill, skill_id="box-breathing", distress_state="anxiety",
                              rating_before=9, rating_after=7, started_at=now - timedelta(hours=2),
                              completed_at=now - timedelta(hours=1), status="completed"))
        # Cal: one rating, long ago -> nothing to compare with.
        s.add(MoodCheckin(participant_id=old, rating=6, created_at=now - timedelta(days=40)))

    store.run(ratings)
    dash.login(ALICE)
    rows = {name: row for name, row in zip(names_in(dash.get("/clients").text), rows_of(dash.get("/clients").text),
                                           strict=True)}
    ann, ben, cal, dee = rows["Ann Mood"], rows["Ben Skill"], rows["Cal Old"], rows["Dee Gone"]
    assert ">active<" in ann and "3 h ago" in ann and "8/10" in ann and "mood check-in" in ann
    assert 'class="trend-better">better<' in ann
    assert ">paused<" in ben and "7/10" in ben and "feeling after a skill" in ben
    assert 'class="trend-worse">worse<' in ben and "no texts yet" in ben
    assert ">invited<" in cal and "6/10" in cal and 'class="trend-none">—<' in cal
    assert ">opted out<" in dee and "/10" not in dee


def test_paused_status_and_trend_rules() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    person = Participant(status="active", nudges_paused=False, crisis_hold=False, paused_until=None)
    assert roster.status_of(person, now) == "active"
    person.paused_until = now + timedelta(days=1)
    assert roster.status_of(person, now) == "paused"
    person.paused_until = now - timedelta(minutes=1)
    assert roster.status_of(person, now) == "active"
    person.crisis_hold = True
    assert roster.status_of(person, now) == "paused"
    person.status = "discharged"
    assert roster.status_of(person, now) == "discharged"

    def r(value: int, kind: str) -> roster.Rating:
        return roster.Rating(value, kind, now)

    assert roster.trend([]) == "—"
    assert roster.trend([r(5, "mood")]) == "—"
    assert roster.trend([r(5, "mood"), r(5, "mood"), r(4, "mood")]) == "steady"
    assert roster.trend([r(3, "mood"), r(6, "mood")]) == "worse"
    assert roster.trend([r(3, "before"), r(6, "before")]) == "better"  # less distress
    assert roster.trend([r(3, "after"), r(9, "before")]) == "—"  # different kinds are not compared
    assert roster.relative_time(now - timedelta(seconds=20), now) == "just now"
    assert roster.relative_time(now - timedelta(days=2, hours=1), now) == "2 d ago"
    assert roster.relative_time(now - timedelta(days=45), now) == "2026-10-13"


def test_list_is_a_fixed_number_of_queries(dash: Any, dash_app: Any, store: Any, clock: Any, staff: Any) -> None:
    from sqlalchemy import event

    for i in range(30):
        pid = add_client(dash_app, clock, f"+1202555{2000 + i:04d}", ALICE, f"Client {i:02d}")
        store.run(lambda s, pid=pid: s.add(MoodCheckin(participant_id=pid, rating=5, created_at=clock())))
    dash.login(ALICE)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = store.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        page = dash.get("/clients")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(names_in(page.text)) == 30
    about_clients = [s for s in statements if "participants" in s or "mood_checkins" in s]
    assert len(about_clients) <= 5, about_clients  # sign-in, crisis badge and the list's three


# --- enrolling one -------------------------------------------------------------------------------


def test_enroll_by_form_stores_e164_texts_invitation_and_opens_the_client(dash: Any, store: Any, fake_twilio: Any,
                                                                         staff: Any) -> None:
    dash.login(ALICE)
    response = dash.submit("/clients/new", {**FORM_DEFAULTS, "phone": "(202) 555-0143", "name": "Jamie Fox",
                                            "nudge_time": "18:30", "flags": ["heart_condition", "pregnancy"],
                                            "discreet": "y", "admission_date": "2026-11-02",
                                            "discharge_date": "2026-12-18", "aftercare_days": "30"})
    assert response.status_code == 302
    person = store.run(lambda s: s.scalar(select(Participant)))
    assert response.headers["Location"] == f"/clients/{person.id}"
    assert (person.phone, person.name, person.status) == ("+12025550143", "Jamie Fox", "invited")
    assert person.counselor_id == staff[ALICE]
    assert (person.nudge_time, person.nudge_days, person.discreet) == ("18:30", "01234", True)
    assert person.flags == ["heart_condition", "pregnancy"]
    assert str(person.discharge_date) == "2026-12-18" and person.aftercare_days == 30
    texts = fake_twilio.bodies_to("+12025550143")
    assert len(texts) == 1 and "Reply YES to join" in texts[0] and "Alice" in texts[0]
    audit = store.run(lambda s: s.scalar(select(AuditLog).where(AuditLog.action == "enroll")))
    assert audit.actor == ALICE and audit.participant_id == person.id
    listing = dash.get("/clients")  # the flash shows on the next page
    assert "Jamie Fox is enrolled" in listing.text and "***0143" in listing.text


@pytest.mark.parametrize(("change", "field_id", "words"), [
    ({"phone": "(202) 555-01"}, "phone", "not a valid phone number"),
    ({"phone": "call me"}, "phone", "not a phone number"),
    ({"phone": "(202) 555-0101"}, "phone", "already enrolled"),
    ({"nudge_time": "22:30"}, "nudge_time", "outside the hours texts are allowed (08:00-21:00)"),
    ({"timezone": "Mars/Olympus"}, "timezone", "not an IANA time zone"),
    ({"nudge_days": []}, "nudge_days", "at least one nudge day"),
    ({"admission_date": "2026-12-01", "discharge_date": "2026-11-01"}, "discharge_date", "before the admission"),
])
def test_enroll_form_refuses_with_the_message_next_to_the_field(dash: Any, dash_app: Any, store: Any, clock: Any,
                                                               fake_twilio: Any, staff: Any, change: dict[str, Any],
                                                               field_id: str, words: str) -> None:
    add_client(dash_app, clock, "+12025550101", BOB, "Already Here")
    dash.login(ALICE)
    before = count(store, Participant), count(store, Outbox), count(store, AuditLog)
    response = dash.submit("/clients/new", {**FORM_DEFAULTS, "phone": "(202) 555-0150", "name": "New Person",
                                            **change})
    assert response.status_code == 422
    assert words.lower() in field_error(response.text, field_id).lower()
    assert (count(store, Participant), count(store, Outbox), count(store, AuditLog)) == before
    assert fake_twilio.messages == []
    assert 'value="New Person"' in response.text  # what was typed stays


def test_enroll_form_shows_every_mistake_at_once(dash: Any, dash_app: Any, store: Any, clock: Any,
                                                staff: Any) -> None:
    add_client(dash_app, clock, "+12025550101", BOB, "Already Here")
    dash.login(ALICE)
    response = dash.submit("/clients/new", {**FORM_DEFAULTS, "phone": "202.555.0101", "admission_date": "someday",
                                            "nudge_time": "6am", "aftercare_days": "999"})
    assert response.status_code == 422
    assert "already enrolled" in field_error(response.text, "phone")
    assert "date" in field_error(response.text, "admission_date").lower()
    assert "outside the hours" in field_error(response.text, "nudge_time")
    assert "between 0 and 365" in field_error(response.text, "aftercare_days").lower()
    assert count(store, Participant) == 1


def test_admin_enrolls_for_another_counselor_and_a_counselor_cannot(dash: Any, store: Any, staff: Any) -> None:
    dash.login(ADMIN)
    page = dash.get("/clients/new")
    assert 'name="counselor"' in page.text and f"({BOB})" in page.text
    response = dash.submit("/clients/new", {**FORM_DEFAULTS, "phone": "202 555 0160", "counselor": staff[BOB]})
    assert response.status_code == 302
    person = store.run(lambda s: s.scalar(select(Participant)))
    assert person.counselor_id == staff[BOB]

    dash.client.post("/logout", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"',
                                                              page.text).group(1)})  # type: ignore[union-attr]
    dash.login(ALICE)
    assert 'name="counselor"' not in dash.get("/clients/new").text
    response = dash.submit("/clients/new", {**FORM_DEFAULTS, "phone": "202 555 0161", "counselor": staff[BOB]})
    assert response.status_code == 302  # the extra field is ignored: Alice enrolls for herself
    person = store.run(lambda s: s.scalar(select(Participant).where(Participant.phone == "+12025550161")))
    assert person.counselor_id == staff[ALICE]


def test_posts_without_a_csrf_token_are_refused(dash: Any, store: Any, staff: Any) -> None:
    dash.login(ALICE)
    response = dash.client.post("/clients/new", data={**FORM_DEFAULTS, "phone": "(202) 555-0143"})
    assert response.status_code == 400
    response = dash.client.post("/clients/import", data={"file": (io.BytesIO(b"phone\n2025550143\n"), "c.csv")},
                                content_type="multipart/form-data")
    assert response.status_code == 400
    assert count(store, Participant) == 0


def test_enrollment_errors_name_their_field() -> None:
    with pytest.raises(EnrollmentError) as caught:
        normalise_phone("12", "US")
    assert caught.value.field == "phone"


# --- CSV import ----------------------------------------------------------------------------------


def upload(dash: Any, data: bytes, filename: str = "clients.csv") -> Any:
    return dash.submit("/clients/import", {"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


HEADER = "phone,name,timezone,nudge_time,nudge_days,quiet_start,quiet_end,discreet,flags\r\n"


def test_csv_import_enrolls_every_row_and_sends_the_invitations(dash: Any, store: Any, fake_twilio: Any,
                                                                staff: Any) -> None:
    data = (HEADER
            + "(202) 555-0143,Alex Doe,America/Chicago,18:30,mon-fri,09:00,20:00,yes,heart_condition;pregnancy\r\n"
            + "\r\n"  # a blank line is skipped
            + '202-555-0144,"Doe, Sam",,,,,,,\r\n'
            + "+1 202 555 0145,,America/Denver,10:00:00,daily,,,no,eating_disorder|trauma_sensitive\r\n")
    dash.login(ALICE)
    response = upload(dash, data.encode())
    assert response.status_code == 200, response.text
    assert "Imported" in response.text and "3 clients enrolled" in response.text
    people = {p.phone: p for p in store.run(lambda s: list(s.scalars(select(Participant))))}
    assert set(people) == {"+12025550143", "+12025550144", "+12025550145"}
    alex, sam, third = people["+12025550143"], people["+12025550144"], people["+12025550145"]
    assert (alex.name, alex.timezone, alex.nudge_time, alex.nudge_days, alex.discreet) == (
        "Alex Doe", "America/Chicago", "18:30", "01234", True)
    assert alex.flags == ["heart_condition", "pregnancy"] and (alex.quiet_start, alex.quiet_end) == ("09:00", "20:00")
    assert (sam.name, sam.timezone, sam.nudge_time, sam.nudge_days) == ("Doe, Sam", "America/New_York", "10:00",
                                                                         "0123456")
    assert third.name is None and third.flags == ["eating_disorder", "trauma_sensitive"]
    assert all(p.counselor_id == staff[ALICE] and p.status == "invited" for p in people.values())
    for phone in people:
        assert len(fake_twilio.bodies_to(phone)) == 1
    report = response.text.split("<tbody>", 1)[1]
    assert [int(n) for n in re.findall(r'<th scope="row">(\d+)</th>', report)] == [2, 4, 5]  # spreadsheet rows
    assert "***0143" in report and "+12025550143" not in response.text


def test_csv_import_is_all_or_nothing(dash: Any, dash_app: Any, store: Any, clock: Any, fake_twilio: Any,
                                      staff: Any) -> None:
    add_client(dash_app, clock, "+12025550199", BOB, "Taken")
    data = ("phone,name,nudge_time\n"
            "2025550143,Good One,10:00\n"
            "2025550144,Late Nudge,23:00\n"
            "2025550143,Same Again,\n"
            "2025550199,Already,\n"
            "20255501,Short,\n"
            "2025550146,Good Two,\n"
            f"2025550147,{'N' * 121},\n")
    dash.login(ALICE)
    response = upload(dash, data.encode())
    assert response.status_code == 422
    assert "Nothing was imported" in response.text
    rows = dict(re.findall(r'<th scope="row">(\d+)</th>\s*<td>[^<]*</td>\s*<td>(.*?)</td>',
                           response.text.split("<tbody>", 1)[1], re.S))
    assert "OK" in rows["2"] and "OK" in rows["7"]
    assert "Refused" in rows["3"] and "outside the hours" in rows["3"]
    assert "same number as row 2" in rows["4"]
    assert "already enrolled" in rows["5"]
    assert "not a valid phone number" in rows["6"]
    assert "longer than 120 characters" in rows["8"]
    assert count(store, Participant) == 1  # only Bob's earlier client
    assert count(store, Outbox) == 1 and fake_twilio.messages == []


def test_csv_with_bom_semicolons_and_cp1252_is_read(dash: Any, store: Any, staff: Any) -> None:
    dash.login(ALICE)
    bom = codecs.BOM_UTF8 + "Phone;Name;Flags\r\n\"(202) 555-0143\";Zoë;heart_condition\r\n".encode()
    assert upload(dash, bom).status_code == 200
    cp1252 = "phone,name\r\n2025550144,Renée\r\n".encode("cp1252")
    assert upload(dash, cp1252).status_code == 200
    names = set(store.run(lambda s: list(s.scalars(select(Participant.name)))))
    assert names == {"Zoë", "Renée"}


@pytest.mark.parametrize(("data", "words"), [
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "spreadsheet workbook"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "not a text CSV file"),
    (b"", "Choose a CSV file"),
    (b"just some words\nand more\n", "header with a phone column"),
    (b"phone,shoe_size\n2025550143,9\n", "Unknown column(s) shoe_size"),
    (b"phone,counselor\n2025550143,bob@clinic.example\n", "Only an admin"),
    (b"phone,name\n", "no clients"),
    (b"phone,name\n\"2025550143,unterminated\n", None),
    (b"phone\n" + b"x" * (roster.MAX_BYTES + 10), "larger than 1 MB"),
    (b"phone\n" + b"".join(b"20255%05d\n" % i for i in range(roster.MAX_ROWS + 1)), f"more than {roster.MAX_ROWS:,}"),
])
def test_bad_files_are_refused_with_a_reason_and_nothing_imported(dash: Any, store: Any, staff: Any, data: bytes,
                                                                   words: str | None) -> None:
    dash.login(ALICE)
    response = upload(dash, data) if data else dash.submit("/clients/import", {}, content_type="multipart/form-data")
    assert response.status_code == 422
    if words:
        assert words in unescape(field_error(response.text, "file")) or words in unescape(response.text)
    assert count(store, Participant) == 0


def test_admin_assigns_counselors_by_email_in_the_file(dash: Any, store: Any, staff: Any) -> None:
    dash.login(ADMIN)
    response = upload(dash, b"phone,counselor\n2025550143,bob@clinic.example\n2025550144,\n")
    assert response.status_code == 200
    owners = dict(store.run(lambda s: list(s.execute(select(Participant.phone, Participant.counselor_id)))))
    assert owners == {"+12025550143": staff[BOB], "+12025550144": staff[ADMIN]}
    response = upload(dash, b"phone,counselor\n2025550145,nobody@clinic.example\n")
    assert response.status_code == 422 and "no active counselor with email nobody@clinic.example" in response.text


def test_sample_csv_imports_cleanly(dash: Any, staff: Any) -> None:
    dash.login(ALICE)
    sample = dash.get("/clients/import/sample.csv")
    assert sample.status_code == 200 and sample.mimetype == "text/csv"
    assert sample.text.startswith("phone,name,timezone")
    assert upload(dash, sample.data).status_code == 200
