"""Real-browser fixtures and helpers: Debian's Chromium driven by Playwright against a live local
server, axe-core accessibility checks, screenshots and Content-Security-Policy reports.

Loaded as a plugin by conftest.py, so `live_server` and `browser_page` are fixtures everywhere.
Playwright drives the system Chromium (`/usr/bin/chromium`, installed by `make test` through
scripts/ensure-chromium); it downloads no browser. Without Chromium the browser tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).resolve().parent / "assets" / "axe-4.14.1.min.js"
AXE_PATH = "/__test-assets__/axe.min.js"  # served by a Playwright route, so script-src 'self' allows it
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 10_000  # an explicit wait's ceiling; the crisis badge polls every 5 s

# Console lines and uncaught errors of every page `browser_page` opened, for `csp_violations`.
_LOGS: dict[int, list[str]] = {}


@pytest.fixture
def live_server(dash_app: Any) -> Iterator[str]:
    """The app as counselors use it (CSRF on) served by werkzeug on a free local port."""
    server = make_server("127.0.0.1", 0, dash_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def _chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(_chromium: Any) -> Iterator[Any]:
    """A fresh page (own cookies) at desktop size that records console lines and page errors."""
    context = _chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    log = _LOGS.setdefault(id(page), [])
    page.on("console", lambda message: log.append(f"console.{message.type}: {message.text}"))
    page.on("pageerror", lambda exc: log.append(f"pageerror: {exc}"))
    yield page
    _LOGS.pop(id(page), None)
    context.close()


def console_log(page: Any) -> list[str]:
    return list(_LOGS.get(id(page), []))


def csp_violations(page: Any) -> list[str]:
    """What Chromium reported as blocked by the Content-Security-Policy since the page opened."""
    return [line for line in console_log(page) if "Content Security Policy" in line]


def page_errors(page: Any) -> list[str]:
    return [line for line in console_log(page) if line.startswith("pageerror:")]


def login(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(lambda url: "/login" not in url)
    page.wait_for_selector("nav form button[type=submit]")  # the sign-out button: signed in


def _origin(page: Any) -> str:
    parts = urlsplit(page.url)
    return f"{parts.scheme}://{parts.netloc}"


def axe_check(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is; the violations of the given impacts, each with its rule
    id, impact, help text and the CSS targets of the offending nodes."""
    url = _origin(page) + AXE_PATH
    page.route(url, lambda route: route.fulfill(path=str(AXE), content_type="application/javascript"))
    page.add_script_tag(url=url)
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => {
             const result = await axe.run(document, {resultTypes: ["violations"]});
             return result.violations.map((v) => ({
               id: v.id, impact: v.impact, help: v.help,
               targets: v.nodes.map((n) => n.target.join(" ")),
             }));
           }""")
    page.unroute(url)
    return [v for v in violations if v["impact"] in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['impact']} {v['id']}: {v['help']} at {', '.join(v['targets'])}" for v in violations)


def screenshot(page: Any, name: str) -> list[Path]:
    """Full-page screenshots at desktop (1280x800) and phone (390x844) widths in
    test-artifacts/screenshots/; the viewport is put back afterwards."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size or DESKTOP
    paths = []
    for label, size in (("desktop", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    page.set_viewport_size(before)
    return paths
