"""Crises in the dashboard: a crisis texted by a client shows up in the open count, in the list
with what they wrote, and on its own page with the number to call; acknowledging it records who,
when, the outcome and the note, and resumes nudges. The counselor's alert links to that page and
never carries the client's text."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import select

from bot.models import AuditLog, CrisisEvent, Message, Participant
from tests.conftest import SmsPoster
from tests.dashboard_helpers import Dashboard, add_counselor

BASE = "https://iop.example.org"
CASEY = "casey@clinic.example"  # the `counselor` fixture: the participant's counselor
COUNSELOR_PHONE = "+12025550100"
PHONE = "+12025550101"  # the `participant` fixture's phone
CRISIS_TEXT = "i want to kill myself tonight"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Every app in this module has a public address: alerts link to the dashboard."""
    return {**app_config, "PUBLIC_BASE_URL": BASE}


@pytest.fixture
def sms(client: Any) -> SmsPoster:
    return SmsPoster(client, url=f"{BASE}/sms")  # Twilio signs the public address


@pytest.fixture
def casey(dash: Any, counselor: Any) -> Any:
    assert dash.login(CASEY).status_code == 302
    return dash


@pytest.fixture
def event_id(sms: SmsPoster, participant: Any, db: Any) -> int:
    """A crisis texted by the participant, as Twilio delivers it."""
    replies = sms(CRISIS_TEXT, from_=PHONE)
    assert any("988" in r for r in replies)
    with db.session() as s:
        return int(s.scalars(select(CrisisEvent.id).where(CrisisEvent.kind == "crisis")).one())


def event_row(db: Any, event_id: int) -> CrisisEvent:
    with db.session() as s:
        event = s.get_one(CrisisEvent, event_id)
        s.expunge(event)
        return event


def crisis_hold(db: Any) -> bool:
    with db.session() as s:
        return bool(s.scalar(select(Participant.crisis_hold).where(Participant.phone == PHONE)))


def audits(db: Any, action: str) -> list[AuditLog]:
    with db.session() as s:
        rows = list(s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))
        s.expunge_all()
        return rows


def open_badge(dash: Any) -> str | None:
    fragment = dash.get("/crises/count", headers={"HX-Request": "true"}).text
    match = re.search(r'<span class="badge" data-open="(\d+)">', fragment)
    return match.group(1) if match else None


def test_a_crisis_text_is_counted_listed_first_with_its_text_and_has_a_page_with_the_number(
    casey: Any, event_id: int, db: Any, sms: SmsPoster, clock: Any,
) -> None:
    assert open_badge(casey) == "1"
    with db.session() as s:  # the event points at the text that raised it
        assert s.scalar(select(Message.body).join(CrisisEvent, CrisisEvent.message_id == Message.id)) == CRISIS_TEXT

    # An older, acknowledged event of the same client lists after the open one, only under "all".
    clock.advance(minutes=1)
    older = db.run(lambda s: _acknowledged_event(s, clock.now))
    listing = casey.get("/crises")
    assert listing.status_code == 200
    page = html.unescape(listing.text)
    assert f"#{event_id}" in page and CRISIS_TEXT in page and "Pat" in page and "***0101" in page
    assert f"#{older}<" not in page  # open only by default
    assert 'href="/crises?show=all"' in listing.text
    everything = html.unescape(casey.get("/crises?show=all").text)
    assert everything.index(f">#{event_id}<") < everything.index(f">#{older}<")
    assert "acknowledged by Casey Counselor" in everything
    assert "EST" in page  # the client's local time, with its zone

    detail = casey.get(f"/crises/{event_id}")
    assert detail.status_code == 200
    assert f'<a class="crises-tel" href="tel:{PHONE}">' in detail.text
    assert CRISIS_TEXT in html.unescape(detail.text)
    assert 'name="outcome"' in detail.text and 'name="note"' in detail.text
    (view,) = audits(db, "view_crisis")
    assert (view.actor, view.detail) == (CASEY, {"event": event_id})


def _acknowledged_event(s: Any, now: Any) -> int:
    participant = s.scalars(select(Participant)).one()
    event = CrisisEvent(kind="crisis", participant_id=participant.id, phone=PHONE, level="imminent",
                        categories="suicide", created_at=now.replace(year=2025), acknowledged_at=now,
                        acknowledged_by=CASEY, ack_outcome="false_alarm", ack_note="ok")
    s.add(event)
    s.flush()
    return int(event.id)


def test_another_counselor_gets_404_for_the_page_and_the_acknowledgement(
    dash: Any, event_id: int, db: Any,
) -> None:
    add_counselor(db, "bea@clinic.example", phone="+12025550178")
    assert dash.login("bea@clinic.example").status_code == 302
    assert open_badge(dash) is None
    assert f"#{event_id}" not in dash.get("/crises?show=all").text
    assert dash.get(f"/crises/{event_id}").status_code == 404
    answer = dash.post(f"/crises/{event_id}/ack", {"outcome": "reached_safe", "note": "x"}, token_from="/crises")
    assert answer.status_code == 404
    assert dash.get(f"/crises/{event_id + 1000}").status_code == 404  # unknown: the same answer
    assert event_row(db, event_id).acknowledged_at is None and crisis_hold(db) is True
    assert audits(db, "view_crisis") == [] and audits(db, "crisis_ack") == []


def test_acknowledging_records_who_when_outcome_and_note_and_resumes_nudges(
    casey: Any, event_id: int, db: Any, clock: Any,
) -> None:
    assert crisis_hold(db) is True
    clock.advance(minutes=7)
    note = "Called her at 10:05, she is with her sister tonight. Safety plan reviewed."
    response = casey.submit(f"/crises/{event_id}", {"outcome": "reached_safe", "note": note},
                            action=f"/crises/{event_id}/ack")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/crises/{event_id}")

    event = event_row(db, event_id)
    assert (event.acknowledged_by, event.acknowledged_at) == (CASEY, clock.now)
    assert (event.ack_outcome, event.ack_note) == ("reached_safe", note)
    assert crisis_hold(db) is False
    assert open_badge(casey) is None
    (ack,) = audits(db, "crisis_ack")
    assert (ack.actor, ack.participant_id, ack.detail["event"]) == (CASEY, event.participant_id, event_id)
    assert "sister" not in str(ack.detail)  # the note stays on the event

    page = html.unescape(casey.get(f"/crises/{event_id}").text)
    assert "Nudges resume for Pat" in page and note in page and "safe for now" in page
    assert 'name="note"' not in page  # no second acknowledgement form
    assert f">#{event_id}<" not in casey.get("/crises").text  # no longer open

    # A second acknowledgement (another tab) changes nothing, and says so.
    acknowledged_at = clock.now
    clock.advance(minutes=1)
    again = casey.post(f"/crises/{event_id}/ack", {"outcome": "false_alarm", "note": "overwrite?"},
                       token_from="/crises")
    assert again.status_code == 302
    assert "already acknowledged" in casey.get(f"/crises/{event_id}").text
    event = event_row(db, event_id)
    assert (event.ack_outcome, event.ack_note, event.acknowledged_at) == ("reached_safe", note, acknowledged_at)
    assert len(audits(db, "crisis_ack")) == 1


def test_the_note_is_required_and_bounded_and_the_outcome_must_be_one_of_the_list(
    casey: Any, event_id: int, db: Any,
) -> None:
    path, action = f"/crises/{event_id}", f"/crises/{event_id}/ack"
    empty = casey.submit(path, {"outcome": "reached_safe", "note": "  "}, action=action)
    assert empty.status_code == 400 and "Write what happened." in empty.text and 'aria-invalid="true"' in empty.text
    long = casey.submit(path, {"outcome": "reached_safe", "note": "a" * 2001}, action=action)
    assert long.status_code == 400 and "2000" in long.text
    odd = casey.submit(path, {"outcome": "nothing", "note": "called"}, action=action)
    assert odd.status_code == 400
    assert event_row(db, event_id).acknowledged_at is None and crisis_hold(db) is True


def test_an_acknowledgement_without_the_csrf_token_is_refused(casey: Any, event_id: int, db: Any) -> None:
    response = casey.client.post(f"/crises/{event_id}/ack", data={"outcome": "reached_safe", "note": "called"})
    assert response.status_code == 400
    assert event_row(db, event_id).acknowledged_at is None and crisis_hold(db) is True


def test_nudges_stay_held_while_another_crisis_event_is_open(
    casey: Any, event_id: int, db: Any, sms: SmsPoster, clock: Any,
) -> None:
    clock.advance(hours=2)
    sms("i took 30 pills", from_=PHONE)
    assert open_badge(casey) == "2"
    response = casey.submit(f"/crises/{event_id}", {"outcome": "reached_referred", "note": "called"},
                            action=f"/crises/{event_id}/ack")
    assert response.status_code == 302
    assert crisis_hold(db) is True and open_badge(casey) == "1"
    assert "another crisis event is open" in casey.get(f"/crises/{event_id}").text


def test_an_admin_sees_and_acknowledges_an_unknown_numbers_event(
    dash_app: Any, casey: Any, sms: SmsPoster, db: Any,
) -> None:
    sms("i want to end my life", from_="+12025550199")
    with db.session() as s:
        unknown = int(s.scalars(select(CrisisEvent.id).where(CrisisEvent.participant_id.is_(None))).one())
    assert casey.get(f"/crises/{unknown}").status_code == 404  # nobody's client: not Casey's
    add_counselor(db, "ada@clinic.example", admin=True, phone="+12025550179")
    dash = Dashboard(dash_app.test_client())
    assert dash.login("ada@clinic.example").status_code == 302
    assert "Unknown number" in dash.get("/crises").text
    page = dash.get(f"/crises/{unknown}")
    assert page.status_code == 200 and 'href="tel:+12025550199"' in page.text
    response = dash.submit(f"/crises/{unknown}", {"outcome": "false_alarm", "note": "wrong number, a song lyric"},
                           action=f"/crises/{unknown}/ack")
    assert response.status_code == 302
    assert event_row(db, unknown).acknowledged_by == "ada@clinic.example"


def test_the_alert_links_to_the_event_page_and_never_carries_the_text(
    event_id: int, fake_twilio: Any,
) -> None:
    (alert,) = fake_twilio.bodies_to(COUNSELOR_PHONE)
    assert f"{BASE}/crises/{event_id}" in alert and f"ACK {event_id}" in alert
    assert "kill myself" not in alert.lower() and "tonight" not in alert.lower()


def test_repeat_alerts_link_to_the_event_and_stop_once_it_is_acknowledged(
    app: Any, casey: Any, event_id: int, db: Any, clock: Any, fake_twilio: Any, sms: SmsPoster,
) -> None:
    from bot.scheduler import tick

    app.config["CRISIS_REALERT_MINUTES"] = 15
    clock.advance(minutes=16)
    tick(app)
    reminders = [b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "reminder" in b]
    assert len(reminders) == 1 and f"{BASE}/crises/{event_id}" in reminders[0]
    assert casey.submit(f"/crises/{event_id}", {"outcome": "reached_safe", "note": "called"},
                        action=f"/crises/{event_id}/ack").status_code == 302
    clock.advance(minutes=60)
    tick(app)
    assert len([b for b in fake_twilio.bodies_to(COUNSELOR_PHONE) if "reminder" in b]) == 1


def test_the_cli_acknowledges_with_an_outcome_and_a_note_and_keeps_ownership(
    runner: Any, event_id: int, db: Any, counselor: Any,
) -> None:
    add_counselor(db, "bea@clinic.example", phone="+12025550178")
    refused = runner.invoke(args=["crisis", "ack", str(event_id), "--by", "bea@clinic.example"])
    assert refused.exit_code != 0 and event_row(db, event_id).acknowledged_at is None
    assert runner.invoke(args=["crisis", "ack", str(event_id), "--by", CASEY, "--outcome", "bogus"]).exit_code != 0
    result = runner.invoke(args=["crisis", "ack", str(event_id), "--by", CASEY, "--outcome", "not_reached",
                                 "--note", "voicemail twice"])
    assert result.exit_code == 0 and f"#{event_id} acknowledged by {CASEY}" in result.output
    event = event_row(db, event_id)
    assert (event.ack_outcome, event.ack_note) == ("not_reached", "voicemail twice") and crisis_hold(db) is False
    again = runner.invoke(args=["crisis", "ack", str(event_id), "--by", CASEY, "--note", "other"])
    assert again.exit_code == 0 and "already acknowledged" in again.output
    assert event_row(db, event_id).ack_note == "voicemail twice"
