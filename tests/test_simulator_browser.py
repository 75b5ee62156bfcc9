"""The browser simulator in Debian's Chromium, driven by Playwright, against a real local server."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def page(live_server: str, tmp_path: Any) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        yield context.new_page()
        context.close()
        browser.close()


def send(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.click("button[type=submit]")


def test_simulator_walks_a_participant_through_an_exercise(page: Any, live_server: str, participant: Any,
                                                            tmp_path: Any) -> None:
    page.goto(f"{live_server}/simulator")
    # The consent invitation sent at enrollment is already in the thread.
    page.wait_for_selector(".bubble.out >> text=/YES/")
    send(page, "im so anxious about court tomorrow")
    page.wait_for_selector(".bubble.out >> text=/0-10/")
    send(page, "8")
    page.wait_for_selector(".bubble.out >> text=/\\(1\\//")
    bubbles = page.locator(".bubble").all_inner_texts()
    assert "im so anxious about court tomorrow" in bubbles
    page.screenshot(path=str(tmp_path / "simulator.png"))


def test_simulator_shows_crisis_resources(page: Any, live_server: str, participant: Any) -> None:
    page.goto(f"{live_server}/simulator")
    send(page, "i want to kill myself")
    page.wait_for_selector(".bubble.out >> text=/988/")


def test_simulator_is_off_when_disabled(app: Any, client: Any) -> None:
    app.config["SIMULATOR_ENABLED"] = False
    assert client.get("/simulator").status_code == 404
    assert client.post("/simulator/send", json={"phone": "+12025550101", "text": "hi"}).status_code == 404
