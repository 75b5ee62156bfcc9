"""The safety plan editor: a counselor writes the Stanley-Brown plan, the client texts PLAN and
gets exactly the texts the page previews, each within the SMS size limit, in order."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import select

from bot.conversation import plan_texts, split_words
from bot.models import AuditLog, SafetyPlan
from bot.segments import is_gsm7, segments, septets
from bot.skills import MAX_SEPTETS
from tests.dashboard_helpers import add_counselor

CASEY = "casey@clinic.example"  # the `counselor` fixture: the participant's counselor
PHONE = "+12025550101"  # the `participant` fixture's phone

SECTIONS = {
    "warning_signs": "Not sleeping, skipping meals, pulling away from friends",
    "coping_strategies": "Cold water on my face, a walk around the block, paced breathing",
    "distractions": "Coffee shop on Main St, my sister Dana 555-0101",
    "contacts": "Sam 555-0142, Aunt Rosa 555-0177",
    "professionals": "Dr. Lee 555-0199, call or text 988",
    "safe_environment": "Pills stay with Sam; no car keys at night",
    "reasons_for_living": "My daughter Maya",
}
LABELS = ["Warning signs:", "Things I can do on my own:", "People and places that help:",
          "People I can ask for help:", "Professionals and crisis lines:", "Keeping my space safe:",
          "What I live for:"]
_PART = re.compile(r" \((\d+)/(\d+)\)$")


def plan_path(participant_id: int) -> str:
    return f"/clients/{participant_id}/plan"


def stored_plan(db: Any, participant_id: int) -> SafetyPlan | None:
    with db.session() as s:
        plan = s.scalar(select(SafetyPlan).where(SafetyPlan.participant_id == participant_id))
        if plan is not None:
            s.expunge(plan)
        return plan


def audits(db: Any, action: str) -> list[AuditLog]:
    with db.session() as s:
        rows = list(s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))
        s.expunge_all()
        return rows


def preview(page_html: str) -> list[str]:
    """The texts the page previews, as the client would read them."""
    return [html.unescape(t) for t in re.findall(r'<p class="sms-text">(.*?)</p>', page_html, re.S)]


def within_sms_limit(text: str) -> bool:
    """At most two segments (what `skills check` allows any message): 306 septets in GSM-7,
    otherwise UCS-2 at 67 UTF-16 units a part."""
    if is_gsm7(text):
        return septets(text) <= MAX_SEPTETS and segments(text) <= 2
    return segments(text) <= 2


def save(dash: Any, participant_id: int, **fields: str) -> Any:
    data = {name: "" for name in SECTIONS} | fields
    page = dash.get(plan_path(participant_id))
    version = re.search(r'name="version" type="hidden" value="([^"]*)"', page.text)
    assert version, "the form carries the version it was loaded from"
    return dash.submit(plan_path(participant_id), {**data, "version": html.unescape(version.group(1))})


@pytest.fixture
def casey(dash: Any, counselor: Any) -> Any:
    assert dash.login(CASEY).status_code == 302
    return dash


def test_a_plan_written_on_the_page_is_what_the_client_gets_by_texting_plan(
    casey: Any, participant: Any, db: Any, sms: Any, clock: Any,
) -> None:
    assert "don't have a safety plan" in sms("PLAN", from_=PHONE)[0]
    response = save(casey, participant.id, **SECTIONS)
    assert response.status_code == 302 and response.headers["Location"].endswith(plan_path(participant.id))

    plan = stored_plan(db, participant.id)
    assert plan is not None
    assert {name: getattr(plan, name) for name in SECTIONS} == SECTIONS
    assert plan.updated_by == CASEY and plan.updated_at == clock.now

    page = casey.get(plan_path(participant.id)).text
    assert "Last updated by Casey Counselor (casey@clinic.example) at" in page and "2026-11-27 15:00 UTC" in page
    for name, text in SECTIONS.items():  # the form shows what is stored
        assert re.search(rf'<textarea[^>]*name="{name}"[^>]*>\s*{re.escape(html.escape(text))}</textarea>', page)

    replies = sms("PLAN", from_=PHONE)
    assert replies[0] == "Your safety plan:"
    assert replies[1:] == [f"{label} {SECTIONS[name]}" for label, name in zip(LABELS, SECTIONS, strict=True)]
    assert all(within_sms_limit(r) for r in replies)
    assert preview(page) == replies  # the preview is exactly what was sent


def test_a_long_section_arrives_as_numbered_parts_cut_between_words(
    casey: Any, participant: Any, sms: Any,
) -> None:
    words = [f"step{i:02d}" for i in range(70)]
    long_text = " ".join(words)[:500].rsplit(" ", 1)[0]
    assert 480 <= len(long_text) <= 500
    emoji_text = ("Mum \U0001F49B 555-0123, " * 12).strip()  # one emoji: UCS-2, 67 units a part
    assert save(casey, participant.id, warning_signs="Not sleeping", coping_strategies=long_text,
                contacts=emoji_text, reasons_for_living="My daughter").status_code == 302

    replies = sms("PLAN", from_=PHONE)
    assert all(within_sms_limit(r) for r in replies), [(segments(r), len(r)) for r in replies]
    assert replies[0] == "Your safety plan:" and replies[1] == "Warning signs: Not sleeping"
    assert replies[-1] == "What I live for: My daughter"  # the sections stay in order

    parts = _section_parts(replies, "Things I can do on my own: ")
    assert len(parts) >= 2
    assert " ".join(parts).split() == words[:len(long_text.split())]  # every word, whole and in order

    contacts = _section_parts(replies, "People I can ask for help: ")
    assert len(contacts) >= 2 and " ".join(contacts) == emoji_text and not is_gsm7(emoji_text)
    assert preview(casey.get(plan_path(participant.id)).text) == replies


def _section_parts(replies: list[str], label: str) -> list[str]:
    """The texts of one split section without its label and "(n/total)" numbers, checked in order."""
    start = next(i for i, r in enumerate(replies) if r.startswith(label))
    first = _PART.search(replies[start])
    assert first and first.group(1) == "1", replies[start]
    total = int(first.group(2))
    parts = replies[start:start + total]
    for n, part in enumerate(parts, 1):
        assert _PART.search(part).groups() == (str(n), str(total))
    texts = [_PART.sub("", p) for p in parts]
    texts[0] = texts[0].removeprefix(label)
    return texts


def test_typographic_characters_are_made_plain_so_the_texts_stay_gsm7(dash_app: Any) -> None:
    library = dash_app.extensions["library"]
    texts = plan_texts(library, SafetyPlan(contacts="Sam\u2019s cell \u2013 555-0142,\u00a0\u201cany time\u201d"))
    assert texts == ["Your safety plan:", 'People I can ask for help: Sam\'s cell - 555-0142, "any time"']
    assert all(is_gsm7(t) for t in texts)
    assert plan_texts(library, SafetyPlan(contacts=" \r\n ", warning_signs="")) == []
    assert plan_texts(library, None) == []


def test_splitting_breaks_only_between_words_unless_a_word_is_longer_than_a_part() -> None:
    assert split_words("one two three four", lambda t: len(t) <= 9) == ["one two", "three", "four"]
    assert split_words("ab " + "x" * 12 + " cd", lambda t: len(t) <= 5) == ["ab xx", "xxxxx", "xxxxx", "cd"]


def test_another_counselors_client_is_a_404_for_every_plan_request(
    dash: Any, counselor: Any, participant: Any, db: Any,
) -> None:
    add_counselor(db, "bea@clinic.example", phone="+12025550178")
    assert dash.login("bea@clinic.example").status_code == 302
    path = plan_path(participant.id)
    assert dash.get(path).status_code == 404
    assert dash.post(path, {**SECTIONS, "version": "new"}).status_code == 404
    assert dash.post(path + "/clear", {"confirm": "y"}).status_code == 404
    assert dash.get(plan_path(participant.id + 1000)).status_code == 404  # unknown: the same answer
    assert stored_plan(db, participant.id) is None
    assert audits(db, "view_plan") == [] and audits(db, "plan_update") == []


def test_an_admin_may_open_any_clients_plan(dash: Any, participant: Any, db: Any) -> None:
    add_counselor(db, "ada@clinic.example", admin=True, phone="+12025550179")
    assert dash.login("ada@clinic.example").status_code == 302
    assert save(dash, participant.id, contacts="Sam 555-0142").status_code == 302
    assert stored_plan(db, participant.id).updated_by == "ada@clinic.example"


def test_an_over_long_section_is_refused_next_to_its_field(casey: Any, participant: Any, db: Any) -> None:
    response = save(casey, participant.id, warning_signs="a" * 501, contacts="Sam 555-0142")
    assert response.status_code == 200
    error = re.search(r'<label for="warning_signs">.*?</label>', response.text, re.S)
    assert error and 'aria-invalid="true"' in error.group(0)
    assert 'class="field-error">Field cannot be longer than 500 characters.' in error.group(0)
    contacts = re.search(r'<label for="contacts">.*?</label>', response.text, re.S)
    assert contacts and "field-error" not in contacts.group(0) and "Sam 555-0142" in contacts.group(0)
    assert stored_plan(db, participant.id) is None

    # 500 characters as the browser counts them: its CR LF line breaks count one each.
    lines = "\r\n".join(["b" * 99] * 5)
    assert len(lines.replace("\r\n", "\n")) == 499 and len(lines) == 503
    assert save(casey, participant.id, warning_signs=lines + "c").status_code == 302
    assert stored_plan(db, participant.id).warning_signs == ("b" * 99 + "\n") * 4 + "b" * 99 + "c"


def test_deleting_the_plan_needs_the_box_ticked(casey: Any, participant: Any, db: Any, sms: Any) -> None:
    assert save(casey, participant.id, **SECTIONS).status_code == 302
    clear = plan_path(participant.id) + "/clear"
    unconfirmed = casey.post(clear, {}, token_from=plan_path(participant.id))
    assert unconfirmed.status_code == 200
    box = re.search(r'<label for="confirm">.*?</label>', unconfirmed.text, re.S)
    assert box and 'aria-invalid="true"' in box.group(0) and "Tick the box to confirm" in box.group(0)
    assert stored_plan(db, participant.id) is not None and audits(db, "plan_clear") == []

    confirmed = casey.post(clear, {"confirm": "y"}, token_from=plan_path(participant.id))
    assert confirmed.status_code == 302
    assert stored_plan(db, participant.id) is None
    (row,) = audits(db, "plan_clear")
    assert (row.actor, row.participant_id) == (CASEY, participant.id)
    assert "don't have a safety plan" in sms("PLAN", from_=PHONE)[0]
    assert "Nothing is saved yet" in casey.get(plan_path(participant.id)).text


def test_views_and_saves_are_audited_without_the_plans_words(casey: Any, participant: Any, db: Any) -> None:
    casey.get(plan_path(participant.id))
    (view,) = audits(db, "view_plan")
    assert (view.actor, view.participant_id) == (CASEY, participant.id)
    save(casey, participant.id, contacts="Sam 555-0142", reasons_for_living="My daughter")
    save(casey, participant.id, contacts="Sam 555-0142, Rosa 555-0177", reasons_for_living="My daughter")
    first, second = audits(db, "plan_update")
    assert (first.actor, first.participant_id) == (CASEY, participant.id)
    assert first.detail == {"sections": ["contacts", "reasons_for_living"]}
    assert second.detail == {"sections": ["contacts"]}
    assert "Sam" not in str(first.detail) + str(second.detail)


def test_a_post_without_the_csrf_token_is_refused(casey: Any, participant: Any, db: Any) -> None:
    path = plan_path(participant.id)
    assert casey.client.post(path, data={**SECTIONS, "version": "new"}).status_code == 400
    assert stored_plan(db, participant.id) is None
    assert save(casey, participant.id, **SECTIONS).status_code == 302
    assert casey.client.post(path + "/clear", data={"confirm": "y"}).status_code == 400
    assert stored_plan(db, participant.id) is not None


def test_a_save_over_a_plan_changed_meanwhile_is_stopped_until_repeated(
    dash_app: Any, casey: Any, participant: Any, db: Any,
) -> None:
    from tests.dashboard_helpers import Dashboard

    add_counselor(db, "ada@clinic.example", admin=True, phone="+12025550179")
    admin = Dashboard(dash_app.test_client())
    admin.login("ada@clinic.example")
    save(casey, participant.id, contacts="Sam 555-0142")
    stale = casey.get(plan_path(participant.id)).text  # Casey opens the page...
    save(admin, participant.id, contacts="Rosa 555-0177")  # ...an admin saves first
    data = {**{name: "" for name in SECTIONS}, "contacts": "Sam 555-0142, Lee 555-0199"}
    stopped = save_from(casey, plan_path(participant.id), stale, data)
    assert stopped.status_code == 200 and "changed this plan while you were editing" in stopped.text
    assert stored_plan(db, participant.id).contacts == "Rosa 555-0177"
    assert "Sam 555-0142, Lee 555-0199" in stopped.text  # Casey's words are kept in the form
    assert save_from(casey, plan_path(participant.id), stopped.text, data).status_code == 302
    assert stored_plan(db, participant.id).contacts == "Sam 555-0142, Lee 555-0199"


def save_from(dash: Any, path: str, page_html: str, data: dict[str, str]) -> Any:
    """Post `data` with the version and token of a page already shown."""
    version = re.search(r'name="version" type="hidden" value="([^"]*)"', page_html).group(1)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page_html).group(1)
    return dash.client.post(path, data={**data, "version": html.unescape(version), "csrf_token": token})


def test_an_emptied_plan_is_no_plan_for_the_client(casey: Any, participant: Any, sms: Any) -> None:
    assert save(casey, participant.id, contacts="Sam 555-0142").status_code == 302
    assert save(casey, participant.id).status_code == 302  # every section cleared
    assert "don't have a safety plan" in sms("PLAN", from_=PHONE)[0]
    crisis = sms("i want to kill myself", from_=PHONE)
    assert not any("text PLAN" in r for r in crisis)  # no pointer to an empty plan
