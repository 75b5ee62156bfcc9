"""Where a signed `POST /sms` spends its time: cProfile over the Flask test client, in-process.

    python bench/profile_webhook.py [--requests 2000] [--warmup 500] [--participants 400] [--top 25] [--pg URL]

The same requests as bench/webhook.py (its mix of participants, texts, unknown numbers and
signatures), on SQLite made by the migrations (or, with --pg, a PostgreSQL database dropped and
created afresh), through the real app. Prints the mean time per
request, the share of it under the bot's main steps (cumulative), and the functions with the most
own time. No HTTP server: gunicorn's share (about the bare endpoint's cost) is not in here.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webhook import (  # noqa: E402
    ACCOUNT,
    DEFAULT_PG,
    TOKEN,
    TWILIO_NUMBER,
    FakeTwilio,
    fresh_postgres,
    participant_phones,
    prepare_database,
    signed_requests,
)

ORIGIN = "http://127.0.0.1:8000"
# (label, file suffix, function name): the steps of one request, outermost first.
STEPS = (
    ("Flask/Werkzeug request handling", "flask/app.py", "wsgi_app"),
    ("  form parsing", "werkzeug/formparser.py", "parse"),
    ("  signature check", "bot/webhook.py", "signature_ok"),
    ("  inbound.receive", "bot/inbound.py", "receive"),
    ("    conversation.read (no database)", "bot/conversation.py", "read"),
    ("      matcher.classify", "bot/matching.py", "classify"),
    ("        e5 embedding (learned state layer)", "bot/learned.py", "embed"),
    ("      risk.assess", "bot/risk.py", "assess"),
    ("    db.run (the transaction)", "bot/db.py", "run"),
    ("      checkout + BEGIN (+flock/pre-ping)", "sqlalchemy/orm/session.py", "connection"),
    ("      participant load", "bot/db.py", "load"),
    ("      conversation.handle", "bot/conversation.py", "handle"),
    ("      SQLAlchemy statement execution", "sqlalchemy/engine/base.py", "_execute_clauseelement"),
    ("        of which sqlite3 cursor.execute", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("        of which psycopg cursor.execute", "psycopg/cursor.py", "execute"),
    ("      COMMIT (sqlite3)", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("      COMMIT (psycopg)", "psycopg/connection.py", "commit"),
    ("  TwiML rendering", "bot/webhook.py", "twiml"),
    ("  outbox delivery after the response", "bot/inbound.py", "deliver_now"),
)


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    total = 0.0
    for (filename, _line, function), (_cc, _nc, _tt, ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if function == name and (suffix in filename):
            # Count only entries from outside the function itself (recursion would double-count).
            if not any(caller[2] == name and caller[0] == filename for caller in callers):
                total += ct
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--participants", type=int, default=400)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pg", nargs="?", const=DEFAULT_PG, help=f"profile on PostgreSQL (default {DEFAULT_PG})")
    parser.add_argument("--save", type=Path, help="write the raw profile here (for snakeviz, pstats)")
    args = parser.parse_args()

    fake = FakeTwilio(account_sid=ACCOUNT, auth_token=TOKEN).start()
    fake.reset()
    with tempfile.TemporaryDirectory(prefix="profile-webhook-") as tmpdir:
        tmp = Path(tmpdir)
        url = args.pg or f"sqlite:///{tmp / 'profile.sqlite3'}"
        if args.pg:
            fresh_postgres(url)
        phones = participant_phones(args.participants)
        prepare_database(url, phones, {**os.environ, "PYTHONPATH": str(ROOT)})
        from bot.app import create_app

        app = create_app({
            "DATABASE_URL": url, "SECRET_KEY": "profile", "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_FROM_NUMBER": TWILIO_NUMBER, "TWILIO_API_BASE_URL": fake.base_url, "PUBLIC_BASE_URL": ORIGIN,
            "SIMULATOR_ENABLED": False, "LOG_LEVEL": "ERROR", "SPOOL_DIR": str(tmp / "spool"),
        })
        client = app.test_client()
        requests = list(signed_requests(ORIGIN + "/sms", phones, args.warmup + 2 * args.requests, tag=0xC))

        def post(signature: str, body: str) -> None:
            response = client.post("/sms", data=body, content_type="application/x-www-form-urlencoded",
                                   headers={"X-Twilio-Signature": signature}, base_url=ORIGIN)
            response.close()
            if response.status_code != 200:
                raise SystemExit(f"unexpected {response.status_code}: {response.get_data()[:200]!r}")

        for signature, body in requests[: args.warmup]:
            post(signature, body)
        started = time.perf_counter()  # the same number of requests without the profiler, first
        for signature, body in requests[args.warmup: args.warmup + args.requests]:
            post(signature, body)
        plain = time.perf_counter() - started
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for signature, body in requests[args.warmup + args.requests:]:
            post(signature, body)
        profile.disable()
        elapsed = time.perf_counter() - started
        app.extensions["db"].dispose()
    fake.stop()

    stats = pstats.Stats(profile)
    total = cumulative(stats, "flask/app.py", "wsgi_app")
    per_request = total / args.requests * 1000
    print(f"{args.requests} requests: {plain / args.requests * 1000:.2f} ms each without the profiler (test client "
          f"included); profiled: {elapsed / args.requests * 1000:.2f} ms each, {per_request:.2f} ms inside the app")
    print("share of the app's time under each step (cumulative):")
    for label, suffix, name in STEPS:
        spent = cumulative(stats, suffix, name)
        if not spent:
            continue
        print(f"  {label:<44} {spent / total * 100:5.1f}%  {spent / args.requests * 1000:6.2f} ms/request")
    print(f"top {args.top} functions by own time:")
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    for (filename, line, function), (_cc, calls, own, cum, _callers) in rows[: args.top]:
        where = filename.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        print(f"  {own / total * 100:5.1f}% own {cum / total * 100:5.1f}% cum  {calls / args.requests:7.1f} calls/req"
              f"  {function} ({where}:{line})")
    if args.save:
        stats.dump_stats(str(args.save))
    return 0


if __name__ == "__main__":
    sys.exit(main())
