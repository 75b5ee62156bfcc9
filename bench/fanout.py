"""Nudge fan-out: planning 100,000 due participants, then delivery throughput.

Run: .venv/bin/python bench/fanout.py [--participants N] [--pg URL] [--history-days D]

1. Planning: N active participants (default 100,000) spread over 24 time zones, every one due
   in the same minute. Prints the time of the first tick's planning (target <= 10 s) and of the
   next minute's (nothing due: the steady-state cost of a tick), on SQLite and on PostgreSQL
   when reachable (--pg, else TEST_DATABASE_URL, else the local default; a private schema that
   is dropped afterwards). --history-days adds that many days of past nudges per participant,
   which the skill rotation reads.
2. Delivery: the real twilio Client (bot.sms.TwilioSender) against a fast fake Twilio (an asyncio
   HTTP server in its own process), outbox rows claimed, sent and recorded exactly as a tick does.
   Prints messages/s at zero latency (target >= 500/s) and at 200 ms per request
   (target >= 150/s: concurrent sends within the rate limit), and checks the fake received each
   message once.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, delete, func, insert, select, text  # noqa: E402

from bot.cli import migrate  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.models import ACTIVE, PENDING, Counselor, NudgeLog, Outbox, Participant  # noqa: E402
from bot.nudges import NudgeConfig, plan_due_nudges  # noqa: E402
from bot.outbox import deliver, thread_count  # noqa: E402
from bot.skills import load_library  # noqa: E402
from bot.sms import TwilioSender  # noqa: E402

ZONES = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Halifax",
    "America/Sao_Paulo",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Paris",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Pacific/Auckland",
)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday: practice prompts, not check-ins
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# --------------------------------------------------------------------------------------------
# Fake Twilio: asyncio, keep-alive, one process


def _serve(port_queue: Any, latency: float) -> None:
    count = itertools.count(1)
    prefix = uuid.uuid4().hex[:16]  # SIDs unique across servers (messages.twilio_sid is unique)
    received = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET /count"):
                    out = json.dumps({"received": received}).encode()
                    status = b"200 OK"
                else:
                    if latency:
                        await asyncio.sleep(latency)
                    received += 1
                    out = json.dumps({"sid": f"SM{prefix}{next(count):016x}", "status": "queued"}).encode()
                    status = b"201 Created"
                writer.write(
                    b"HTTP/1.1 "
                    + status
                    + b"\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(out)).encode()
                    + b"\r\n\r\n"
                    + out
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_queue.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class FakeTwilioProcess:
    def __init__(self, latency: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        ports = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(ports, latency), daemon=True)
        self.process.start()
        self.base_url = f"http://127.0.0.1:{ports.get(timeout=30)}"

    def received(self) -> int:
        with urllib.request.urlopen(self.base_url + "/count", timeout=5) as response:
            return int(json.load(response)["received"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


# --------------------------------------------------------------------------------------------
# Data


def populate(db: Database, participants: int, history_days: int) -> None:
    """N active participants, each due at NOW in its zone; nudges allowed all day (night zones)."""

    def work(session: Any) -> int:
        counselor = Counselor(email="bench@clinic.example", name="Bench", phone="+15550000000", password_hash="x")
        session.add(counselor)
        session.flush()
        return int(counselor.id)

    counselor_id = db.run(work)
    local = {z: NOW.astimezone(ZoneInfo(z)).strftime("%H:%M") for z in ZONES}
    batch = 10_000
    for start in range(0, participants, batch):
        rows = [
            {
                "phone": f"+1{2_000_000_000 + i}",
                "status": ACTIVE,
                "timezone": ZONES[i % len(ZONES)],
                "nudge_time": local[ZONES[i % len(ZONES)]],
                "quiet_start": "00:00",
                "quiet_end": "23:59",
                "counselor_id": counselor_id,
                "created_at": NOW,
                "conv_data": {},
                "flags": [],
                "discreet": i % 10 == 0,
            }
            for i in range(start, min(start + batch, participants))
        ]
        db.run(lambda s, rows=rows: s.execute(insert(Participant), rows))
    if history_days:
        skills = sorted(load_library().skills)
        ids = db.run(lambda s: list(s.scalars(select(Participant.id))))
        for day in range(1, history_days + 1):
            local_date = (NOW - timedelta(days=day)).date()
            rows = [
                {
                    "participant_id": pid,
                    "local_date": local_date,
                    "kind": "daily",
                    "content": "practice",
                    "skill_id": skills[(pid + day) % len(skills)],
                    "planned_at": NOW - timedelta(days=day),
                }
                for pid in ids
            ]
            for part in range(0, len(rows), batch):
                db.run(lambda s, r=rows[part : part + batch]: s.execute(insert(NudgeLog), r))


def bench_planning(db: Database, label: str, participants: int, history_days: int) -> None:
    library = load_library()
    t = time.perf_counter()
    populate(db, participants, history_days)
    print(
        f"[{label}] inserted {participants:,} participants ({history_days} days of history) "
        f"in {time.perf_counter() - t:.1f} s"
    )
    cfg = NudgeConfig(backoff_after=5)
    t = time.perf_counter()
    planned = plan_due_nudges(db, library, NOW, cfg)
    first = time.perf_counter() - t
    t = time.perf_counter()
    again = plan_due_nudges(db, library, NOW + timedelta(minutes=1), cfg)
    steady = time.perf_counter() - t
    print(
        f"[{label}] plan: {planned:,} nudges planned in {first:.2f} s "
        f"({planned / first:,.0f}/s; target <= 10 s) {'OK' if first <= 10 else 'SLOW'}"
    )
    print(f"[{label}] next tick (nothing due): {again} planned in {steady:.2f} s")


def bench_delivery(db: Database, label: str, latency: float, messages: int, threads: int, rate: float) -> None:
    """Deliver `messages` outbox rows through the real twilio Client; prints msgs/s."""
    # Start from a clean outbox of exactly `messages` due rows.
    db.run(lambda s: s.execute(delete(NudgeLog)))  # (no index on nudge_log.outbox_id: clear it first)
    db.run(lambda s: s.execute(delete(Outbox)))
    rows = [
        {
            "to_phone": f"+1{3_000_000_000 + i}",
            "body": f"bench message {i}",
            "kind": "invitation",
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": NOW,
            "created_at": NOW,
        }
        for i in range(messages)
    ]
    db.run(lambda s: s.execute(insert(Outbox), rows))
    fake = FakeTwilioProcess(latency)
    try:
        sender = TwilioSender("AC" + "0" * 32, "token", from_number="+15005550006", base_url=fake.base_url)
        t = time.perf_counter()
        report = deliver(db, sender, NOW, rate=rate, threads=threads)
        elapsed = time.perf_counter() - t
        received = fake.received()
    finally:
        fake.stop()
    sent = db.run(lambda s: s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "sent")))
    speed = report.sent / elapsed
    if rate < 500:  # a check of the limiter, not a throughput target
        verdict = f"(the limit holds: {'OK' if speed <= rate * 1.02 else 'EXCEEDED'})"
    else:
        target = 150 if latency else 500
        verdict = f"(target >= {target}) {'OK' if speed >= target else 'SLOW'}"
    exact = "each once" if received == sent == messages else "MISMATCH"
    print(
        f"[{label}] deliver {messages:,} at {latency * 1000:.0f} ms/request, {threads} threads, rate limit "
        f"{rate:g}/s: {speed:,.0f} msgs/s {verdict}; fake received {received:,}, outbox sent {sent:,} "
        f"({exact}), retrying {report.retrying}, failed {report.failed}"
    )


def delivery_suite(db: Database, label: str) -> None:
    rate = 2000.0
    bench_delivery(db, label, 0.0, 5000, 8, rate)
    bench_delivery(db, label, 0.0, 5000, 32, rate)
    bench_delivery(db, label, 0.2, 3000, thread_count(rate, 64), rate)
    bench_delivery(db, label, 0.2, 2000, 32, 150.0)  # the limiter holds it at the configured rate


def postgres_schema_url(url: str) -> tuple[str, str] | None:
    from urllib.parse import quote

    try:
        engine = create_engine(url)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        print(f"[postgres] not reachable ({type(exc).__name__}); skipped")
        return None
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}", schema


def drop_schema(url: str, schema: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--history-days", type=int, default=0)
    parser.add_argument("--pg", default=os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG)
    parser.add_argument("--no-delivery", action="store_true")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.participants:,} participants over {len(ZONES)} zones, due at {NOW:%H:%M} UTC")

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/fanout.sqlite3"
        migrate(url)
        db = Database(url)
        bench_planning(db, "sqlite", args.participants, args.history_days)
        if not args.no_delivery:
            delivery_suite(db, "sqlite")
        db.dispose()

    if args.no_pg or not args.pg.startswith("postgresql"):
        return
    scoped = postgres_schema_url(args.pg)
    if scoped is None:
        return
    pg_url, schema = scoped
    try:
        migrate(pg_url)
        db = Database(pg_url, pool_size=20, max_overflow=50)
        bench_planning(db, "postgres", args.participants, args.history_days)
        if not args.no_delivery:
            delivery_suite(db, "postgres")
        db.dispose()
    finally:
        drop_schema(args.pg, schema)


if __name__ == "__main__":
    main()
