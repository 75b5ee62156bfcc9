"""Webhook throughput: the bot under gunicorn (2 workers, SQLite) vs a bare Flask TwiML endpoint.

Enrolls many participants, then drives `POST /sms` with signed, realistic conversations (each
participant's texts in order) over 16 concurrent connections, and does the same against a bare
Flask app that returns fixed TwiML. Prints both throughputs, the ratio, p50/p99 latency, and the
web workers' RSS. Targets: ratio >= 0.30, p99 <= 100 ms, RSS <= 250 MB with the learned layers on.

    python bench/webhook.py [--seconds 15] [--participants 400] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twilio.request_validator import RequestValidator  # noqa: E402

TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "b" * 32
SCRIPT = [
    "hi", "im so anxious about court tomorrow", "7", "next", "next", "next", "done", "4",
    "really want a drink tonight", "skip", "next", "DONE", "skip", "MENU", "2", "8", "next", "done", "6",
    "cant sleep its 3am", "more", "5", "next", "done", "3",
    # texts only the learned layers place (the e5 state model runs; the risk model runs on every text)
    "nobody has texted me back all week and the apartment is so quiet", "menu",
    "the room looks flat like a photo and i keep staring", "menu", "thanks", "so mad at my mom", "9", "next",
    "next", "done", "5", "PLAN", "been crying all morning", "6", "next", "done", "5",
]

BARE_APP = '''
from flask import Flask, Response
app = Flask(__name__)
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks, got it.</Message></Response>'
@app.post("/sms")
def sms():
    return Response(TWIML, mimetype="text/xml")
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_database(url: str, participants: int) -> list[str]:
    os.environ["DATABASE_URL"] = url
    from bot.app import create_app
    from bot.cli import migrate
    from bot.enrollment import create_counselor
    from bot.models import Participant

    migrate(url)
    app = create_app({"DATABASE_URL": url, "SMS_SENDER": object()})
    phones = [f"+1555{7000000 + i:07d}" for i in range(participants)]

    def work(session):  # type: ignore[no-untyped-def]
        counselor = create_counselor(session, email="bench@clinic.example", name="Bench", phone="+12025550100",
                                     password="bench-password", region="US")
        session.add_all([Participant(phone=p, name=f"P{i}", counselor_id=counselor.id, status="active")
                         for i, p in enumerate(phones)])

    app.extensions["db"].run(work)
    app.extensions["db"].dispose()
    return phones


def start_gunicorn(module_dir: Path, target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    workers = os.environ.get("BENCH_WORKERS", "2")
    cmd = [sys.executable, "-m", "gunicorn", "-w", workers, "-b", f"127.0.0.1:{port}", "--log-level", "warning",
           "--chdir", str(module_dir), target]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gunicorn did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))


def worker_rss_mb(master: subprocess.Popen[bytes]) -> list[float]:
    out = subprocess.run(["ps", "-o", "pid=,rss=", "--ppid", str(master.pid)], capture_output=True, text=True)
    return [int(line.split()[1]) / 1024 for line in out.stdout.splitlines() if line.strip()]


def build_request(port: int, params: dict[str, str]) -> bytes:
    url = f"http://127.0.0.1:{port}/sms"
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    body = urlencode(params).encode()
    head = (f"POST /sms HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


async def drive(port: int, phones: list[str], seconds: float, concurrency: int, tag: str) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop_at = time.perf_counter() + seconds

    async def one(conn_index: int) -> None:
        nonlocal errors, counter
        mine = phones[conn_index::concurrency]
        step = 0
        while time.perf_counter() < stop_at:
            phone = mine[step % len(mine)]
            text = SCRIPT[(step // len(mine)) % len(SCRIPT)]
            counter += 1
            params = {"MessageSid": f"SM{tag}{counter:030d}", "AccountSid": ACCOUNT, "From": phone,
                      "To": "+15005550006", "Body": text, "NumMedia": "0", "NumSegments": "1",
                      "SmsStatus": "received", "ApiVersion": "2010-04-01"}
            raw = build_request(port, params)
            started = time.perf_counter()
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(raw)
                await writer.drain()
                response = await reader.read()
                writer.close()
                if not response.startswith(b"HTTP/1.1 200") and not response.startswith(b"HTTP/1.0 200"):
                    errors += 1
            except OSError:
                errors += 1
            latencies.append(time.perf_counter() - started)
            step += 1

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--participants", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        phones = prepare_database(url, args.participants)
        env = {**os.environ, "DATABASE_URL": url, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
               "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
               "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        results = {}
        rss: list[float] = []
        bare_dir = Path(tmp) / "bare"
        bare_dir.mkdir()
        (bare_dir / "bare_app.py").write_text(BARE_APP)
        for name, directory, target in (("bare", bare_dir, "bare_app:app"), ("bot", ROOT, "wsgi:app")):
            port = free_port()
            proc = start_gunicorn(directory, target, port, env)
            try:
                asyncio.run(drive(port, phones, 2, args.concurrency, name + "w"))  # warm-up
                results[name] = asyncio.run(drive(port, phones, args.seconds, args.concurrency, name))
                if name == "bot":
                    rss = worker_rss_mb(proc)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)

    bare, bot = results["bare"], results["bot"]
    ratio = bot["rps"] / bare["rps"]
    print(f"bare Flask TwiML : {bare['rps']:8.1f} req/s  p50 {bare['p50_ms']:6.1f} ms  p99 {bare['p99_ms']:6.1f} ms"
          f"  ({bare['requests']} requests, {bare['errors']} errors)")
    print(f"bot /sms webhook : {bot['rps']:8.1f} req/s  p50 {bot['p50_ms']:6.1f} ms  p99 {bot['p99_ms']:6.1f} ms"
          f"  ({bot['requests']} requests, {bot['errors']} errors)")
    print(f"ratio bot/bare   : {ratio:.2f}  (target >= 0.30); p99 target <= 100 ms at {args.concurrency} connections")
    print(f"web worker RSS   : {', '.join(f'{r:.0f} MB' for r in rss)}  (target <= 250 MB)")
    print(json.dumps({"bare": bare, "bot": bot, "ratio": ratio, "worker_rss_mb": rss}))


if __name__ == "__main__":
    main()
