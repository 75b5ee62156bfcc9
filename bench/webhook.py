"""Webhook throughput under wrk: the bot's signed `POST /sms` under gunicorn vs a bare Flask endpoint.

    python bench/webhook.py [--seconds 15] [--warmup 5] [--connections 16] [--participants 400]
                            [--pg URL | --no-pg] [--only NAME,NAME] [--json FILE] [--max-rps N]

`make bench` installs wrk first (scripts/ensure-wrk, Debian's package). Configurations, each
on a fresh database (migrated with `flask --app wsgi init-db`, then a counselor and
--participants active participants inserted), each a fresh gunicorn (sync workers) with the real
app, `wsgi:app` (BOT_ENV=development, as production refuses SQLite; no simulator):

    bare-2w    a bare Flask app returning a fixed TwiML answer, 2 workers (the ceiling)
    sqlite-2w  the bot on SQLite, 2 workers
    pg-2w      the bot on PostgreSQL, 2 workers   (--pg URL; a database created afresh)
    bare-4w    the bare app, 4 workers
    pg-4w      the bot on PostgreSQL, 4 workers

wrk (one thread, --connections connections) replays requests pre-generated here: every one a
distinct Twilio webhook (its own MessageSid, Twilio's full set of form fields) signed with
twilio's RequestValidator for exactly the URL wrk hits (PUBLIC_BASE_URL is that origin). The
mix: active participants each walking through SCRIPT in order, each from its own starting line
(skills, ratings, commands, texts only the learned layers place, one possible-risk text and its
answer, one crisis text whose counselor alert goes to a local fake Twilio), and one text in 50
from numbers nobody enrolled. The warm-up and the measured run use different MessageSids, and a
run that would need more requests than were generated stops sending webhooks and is reported as
exhausted: nothing is delivered twice.

One line per configuration: req/s, p50/p99 latency, non-2xx answers, socket errors, the ratio to
the bare endpoint with the same number of workers, and the workers' RSS after the run; then one
summary line. Targets: ratio >= 0.30, p99 <= 100 ms, RSS <= 250 MB a worker. Exits 1 when a
configuration failed to run, any answer was non-2xx, any socket error occurred, a run was
exhausted, or the database holds fewer inbound texts than wrk got answers for (a duplicate
delivery): the figures are then not to be trusted. Missing a target is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, make_url, text  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from tests.fake_twilio import FakeTwilio  # noqa: E402

TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "b" * 32
TWILIO_NUMBER = "+15005550006"
COUNSELOR_PHONE = "+12025550100"
LUA = Path(__file__).with_suffix(".lua")
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
# Requests generated per second of run: above what the bare endpoint does on this machine under
# wrk (~4,500/s with 2 workers), so the bot never runs out (and if it did, the run says so).
MAX_RPS = 7000

SCRIPT = [
    "hi", "im so anxious about court tomorrow", "7", "next", "next", "next", "done", "4",
    "really want a drink tonight", "skip", "next", "DONE", "skip", "MENU", "2", "8", "next", "done", "6",
    "cant sleep its 3am", "more", "5", "next", "done", "3",
    # texts only the learned layers place (the e5 state model runs; the risk model runs on every text)
    "nobody has texted me back all week and the apartment is so quiet", "menu",
    "the room looks flat like a photo and i keep staring", "menu", "thanks", "so mad at my mom", "9", "next",
    "next", "done", "5", "PLAN", "been crying all morning", "6", "next", "done", "5",
    # possible risk: the direct question, and a no-like answer (a skill follows)
    "i wish i could go to sleep and not wake up", "no im ok, just exhausted", "next", "done", "4",
    # crisis: the crisis reply, an event, and an SMS alert to the counselor (through the outbox)
    "i want to kill myself",
]
UNKNOWN_TEXTS = ["hello is this the program", "who is this", "wrong number sorry", "ok"]
UNKNOWN_EVERY = 50  # one request in 50 comes from a number nobody enrolled

BARE_APP = '''
from flask import Flask, Response
app = Flask(__name__)
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks, got it.</Message></Response>'
@app.post("/sms")
def sms():
    return Response(TWIML, mimetype="text/xml")
@app.get("/healthz")
def healthz():
    return {"status": "ok"}
'''


@dataclass(frozen=True)
class Config:
    name: str
    app: str  # "bare" or "bot"
    database: str  # "none", "sqlite" or "pg"
    workers: int


CONFIGS = (
    Config("bare-2w", "bare", "none", 2),
    Config("sqlite-2w", "bot", "sqlite", 2),
    Config("pg-2w", "bot", "pg", 2),
    Config("bare-4w", "bare", "none", 4),
    Config("pg-4w", "bot", "pg", 4),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- requests -------------------------------------------------------------------------------------


def participant_phones(count: int) -> list[str]:
    return [f"+1555{7000000 + i:07d}" for i in range(count)]


def twilio_form(sid: str, phone: str, body: str) -> dict[str, str]:
    """The fields Twilio posts for an inbound SMS (same names and order as a real webhook)."""
    return {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
        "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "", "Body": body,
        "FromCountry": "US", "To": TWILIO_NUMBER, "ToZip": "", "NumSegments": "1", "MessageSid": sid,
        "AccountSid": ACCOUNT, "From": phone, "ApiVersion": "2010-04-01",
    }


def signed_requests(url: str, phones: list[str], count: int, tag: int) -> Iterator[tuple[str, str]]:
    """`count` distinct webhooks as (X-Twilio-Signature, urlencoded body); MessageSids carry `tag`."""
    validator = RequestValidator(TOKEN)
    enrolled = 0
    for i in range(count):
        sid = f"SM{tag:x}{i:031x}"
        if i % UNKNOWN_EVERY == UNKNOWN_EVERY - 1:
            n = i // UNKNOWN_EVERY
            phone, body = f"+1555{8000000 + n % 5000:07d}", UNKNOWN_TEXTS[n % len(UNKNOWN_TEXTS)]
        else:
            # Participant k starts at line k of SCRIPT, so every part of it is in the mix from
            # the first second; each participant then walks through it in order.
            k = enrolled % len(phones)
            phone, body = phones[k], SCRIPT[(k + enrolled // len(phones)) % len(SCRIPT)]
            enrolled += 1
        form = twilio_form(sid, phone, body)
        yield validator.compute_signature(url, form), urlencode(form)


def write_requests(path: Path, url: str, phones: list[str], count: int, tag: int) -> None:
    """The requests for wrk (bench/webhook.lua), one a line: "<signature>\t<body>"."""
    with path.open("w") as out:
        for signature, body in signed_requests(url, phones, count, tag):
            out.write(signature + "\t" + body + "\n")


# --- databases ------------------------------------------------------------------------------------


def fresh_postgres(url: str) -> None:
    """Drop and create the database named in `url` (connecting to the server's `postgres` db)."""
    target = make_url(url)
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        engine.dispose()


def prepare_database(url: str, phones: list[str], env: dict[str, str]) -> None:
    """Migrate with the operator command, then a counselor and the participants, all active."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "init-db"], cwd=ROOT,
                          env={**env, "DATABASE_URL": url}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("flask init-db failed:\n" + done.stdout + done.stderr)
    from bot.db import Database
    from bot.enrollment import create_counselor
    from bot.models import Participant

    def work(session):  # type: ignore[no-untyped-def]
        counselor = create_counselor(session, email="bench@clinic.example", name="Bench", phone=COUNSELOR_PHONE,
                                     password="bench-password", region="US")
        session.add_all([Participant(phone=p, name=f"P{i}", counselor_id=counselor.id, status="active")
                         for i, p in enumerate(phones)])

    db = Database(url)
    try:
        db.run(work)
    finally:
        db.dispose()


# --- gunicorn and wrk -----------------------------------------------------------------------------


def start_gunicorn(directory: Path, target: str, port: int, workers: int, env: dict[str, str],
                   log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
           "--log-level", "warning", "--chdir", str(directory), target]
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def worker_rss_mb(master: subprocess.Popen[bytes]) -> list[float]:
    out = subprocess.run(["ps", "-o", "pid=,rss=", "--ppid", str(master.pid)], capture_output=True, text=True)
    return sorted(int(line.split()[1]) / 1024 for line in out.stdout.splitlines() if line.strip())


def run_wrk(port: int, requests: Path, seconds: float, connections: int, threads: int, mode: str) -> dict:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s",
           "-s", str(LUA), f"http://127.0.0.1:{port}/sms", "--", str(requests), str(threads), mode]
    done = subprocess.run(cmd, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("WRK-RESULT "):
            result: dict = json.loads(line.removeprefix("WRK-RESULT "))
            # "cycle" mode leaves the counting to wrk, whose `status` errors are the 4xx/5xx answers.
            result["non2xx"] = max(result["non2xx"], result["errors"]["status"])
            return result
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def measure(config: Config, port: int, args: argparse.Namespace, files: dict[str, Path], env: dict[str, str],
            tmp: Path) -> dict:
    if config.app == "bare":
        directory, target, mode = tmp / "bare", "bare_app:app", "cycle"
    else:
        directory, target, mode = ROOT, "wsgi:app", "once"
    proc = start_gunicorn(directory, target, port, config.workers, env, tmp / f"{config.name}.log")
    try:
        # The warm-up loads the learned models in every worker; its MessageSids are not reused.
        warm = run_wrk(port, files["warmup"], args.warmup, args.connections, args.threads, mode)
        result = run_wrk(port, files["measure"], args.seconds, args.connections, args.threads, mode)
        result["rss_mb"] = worker_rss_mb(proc)
    finally:
        stop(proc)
    seconds = result["duration_us"] / 1e6
    errors = result["errors"]
    result.update(
        name=config.name, workers=config.workers, rps=result["requests"] / seconds,
        p50_ms=result["p50_us"] / 1000, p99_ms=result["p99_us"] / 1000,
        socket_errors=sum(errors[k] + warm["errors"][k] for k in ("connect", "read", "write", "timeout")),
        warmup=warm,
    )
    result["non2xx"] += warm["non2xx"]
    result["exhausted"] = max(result["exhausted"], warm["exhausted"])
    if config.app == "bot":
        # Every answered webhook has its own MessageSid, so each one stored exactly one inbound row:
        # fewer rows than answers would mean a duplicate delivery (or a lost text).
        engine = create_engine(env["DATABASE_URL"])
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM messages WHERE direction = 'in'")).scalar()
        result["stored_inbound"] = int(stored or 0)
        engine.dispose()
        result["answered"] = warm["requests"] + result["requests"]
    return result


def line(result: dict, ratio: float | None) -> str:
    rss = ",".join(f"{r:.0f}" for r in result["rss_mb"])
    flags = "  EXHAUSTED (generate more: raise --max-rps)" if result["exhausted"] else ""
    return (f"{result['name']:<10} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:6.1f} ms  "
            f"p99 {result['p99_ms']:6.1f} ms  non-2xx {result['non2xx']}  socket-errors {result['socket_errors']}  "
            f"ratio {'-' if ratio is None else f'{ratio:.2f}'}  rss {rss} MB  ({result['requests']} requests){flags}")


def postgres_reachable(url: str) -> str | None:
    try:
        engine = create_engine(make_url(url).set(database="postgres"))
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: skip PostgreSQL, say why
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=5, help="warm-up seconds per configuration")
    parser.add_argument("--participants", type=int, default=400)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the machine has 2 cores)")
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG),
                        help=f"PostgreSQL URL; its database is dropped and created afresh (default {DEFAULT_PG})")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL configurations")
    parser.add_argument("--only", help="comma-separated configuration names, e.g. bare-2w,sqlite-2w")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--max-rps", type=int, default=MAX_RPS,
                        help="requests generated per second of run (more than the fastest configuration does)")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print("wrk is not installed: run scripts/ensure-wrk (as root) or `make bench`", file=sys.stderr)
        return 2
    configs = [c for c in CONFIGS if not args.only or c.name in args.only.split(",")]
    skipped: dict[str, str] = {}
    if any(c.database == "pg" for c in configs):
        problem = postgres_reachable(args.pg) if not args.no_pg else None
        why = "--no-pg" if args.no_pg else problem and f"PostgreSQL not reachable at {args.pg} ({problem})"
        if why:
            skipped = {c.name: why for c in configs if c.database == "pg"}
            configs = [c for c in configs if c.database != "pg"]

    fake = FakeTwilio(account_sid=ACCOUNT, auth_token=TOKEN).start()
    fake.reset()
    port = free_port()  # one port for every configuration, so one set of signed requests serves all
    phones = participant_phones(args.participants)
    results: dict[str, dict] = {}
    failed: dict[str, str] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmpdir:
            tmp = Path(tmpdir)
            (tmp / "bare").mkdir()
            (tmp / "bare" / "bare_app.py").write_text(BARE_APP)
            url = f"http://127.0.0.1:{port}/sms"
            files = {"warmup": tmp / "warmup.tsv", "measure": tmp / "measure.tsv"}
            write_requests(files["warmup"], url, phones, int(args.warmup * args.max_rps), tag=0xA)
            write_requests(files["measure"], url, phones, int(args.seconds * args.max_rps), tag=0xB)
            base_env = {
                **os.environ, "BOT_ENV": "development", "SECRET_KEY": "bench-secret", "LOG_LEVEL": "WARNING",
                "SIMULATOR_ENABLED": "0",
                "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": TWILIO_NUMBER,
                "TWILIO_API_BASE_URL": fake.base_url, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "PYTHONPATH": str(ROOT), "SPOOL_DIR": str(tmp / "spool"),
            }
            for config in configs:
                env = dict(base_env)
                if config.database == "sqlite":
                    env["DATABASE_URL"] = f"sqlite:///{tmp}/{config.name}.sqlite3"
                elif config.database == "pg":
                    env["DATABASE_URL"] = args.pg
                    fresh_postgres(args.pg)
                try:
                    if config.app == "bot":
                        prepare_database(env["DATABASE_URL"], phones, env)
                    results[config.name] = measure(config, port, args, files, env, tmp)
                except RuntimeError as exc:
                    failed[config.name] = str(exc)
                    print(f"{config.name:<10} FAILED: {exc}", flush=True)
                    continue
                bare = results.get(f"bare-{config.workers}w")
                ratio = None if config.app == "bare" or bare is None else results[config.name]["rps"] / bare["rps"]
                results[config.name]["ratio"] = ratio
                print(line(results[config.name], ratio), flush=True)
    finally:
        fake.stop()

    for name, why in skipped.items():
        print(f"{name:<10} skipped: {why}")
    bots = [r for r in results.values() if r["ratio"] is not None]
    if bots:
        ratios = ", ".join(f"{r['name']} {r['ratio']:.2f}" for r in bots)
        print(f"summary    ratio to bare (same workers): {ratios} (target >= 0.30); "
              f"worst bot p99 {max(r['p99_ms'] for r in bots):.1f} ms (target <= 100 ms at {args.connections} "
              f"connections); largest worker {max(max(r['rss_mb']) for r in bots):.0f} MB (target <= 250 MB); "
              f"counselor alerts sent to the fake Twilio {len(fake.messages)}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "skipped": skipped, "failed": failed}, indent=2))
    bad = [r["name"] for r in results.values() if r["non2xx"] or r["socket_errors"] or r["exhausted"]
           or r.get("stored_inbound", 0) < r.get("answered", 0)] + list(failed)
    if bad:
        print(f"INVALID runs (failed, non-2xx, socket errors, exhausted, or fewer texts stored than answered): "
              f"{', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
