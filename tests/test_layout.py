"""The domain core loads without the web stack: Flask and Twilio belong to the edges."""

from __future__ import annotations

import subprocess
import sys

CORE = ("bot.conversation", "bot.matching", "bot.risk", "bot.safety", "bot.nudges", "bot.skills",
        "bot.outbox", "bot.inbound", "bot.crises", "bot.enrollment", "bot.accounts", "bot.roster", "bot.records",
        "bot.reports", "bot.cohorts", "bot.broadcast", "bot.diary", "bot.privacy", "bot.spool", "bot.statuses",
        "bot.heartbeat")


def test_domain_core_imports_neither_flask_nor_twilio() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {CORE!r}: importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'twilio', 'werkzeug', 'flask_wtf'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_wsgi_entry_point_builds_the_app() -> None:
    code = "import wsgi; print(type(wsgi.app).__name__, sorted(r.rule for r in wsgi.app.url_map.iter_rules())[:3])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "DATABASE_URL": "sqlite://"})
    assert done.stdout.startswith("Flask ")
