"""A local HTTP server that speaks enough of Twilio's Messages API for the real twilio Client.

Tests point `TWILIO_API_BASE_URL` at it. Knobs: per-number errors (e.g. 21610), a failure
rate of 500/429 answers from a seeded RNG, a latency per request, and a queue of scripted
answers. Every accepted message is recorded in `messages`.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


@dataclass
class Accepted:
    sid: str
    to: str
    body: str
    sender: str
    status_callback: str | None


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[Accepted] = field(default_factory=list)
    requests: int = 0
    failure_rate: float = 0.0
    failure_statuses: tuple[int, ...] = (500, 429)
    latency: float = 0.0
    errors_for: dict[str, tuple[int, int]] = field(default_factory=dict)  # to -> (http status, code)
    scripted: deque[tuple[int, int | None]] = field(default_factory=deque)  # next answers
    seed: int = 1234
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.requests = 0
            self.failure_rate = 0.0
            self.latency = 0.0
            self.errors_for.clear()
            self.scripted.clear()
            self._rng = random.Random(self.seed)

    def bodies_to(self, to: str) -> list[str]:
        with self._lock:
            return [m.body for m in self.messages if m.to == to]

    # -- server
    def start(self) -> FakeTwilio:
        self._rng = random.Random(self.seed)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each keep-alive answer waits ~40 ms for an ACK

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw_bytes = self.rfile.read(length)
                if len(raw_bytes) < length:  # the client died mid-request: a real API never sees it
                    self.close_connection = True
                    return
                raw = raw_bytes.decode()
                status, payload = fake._answer(self.path, self.headers.get("Authorization", ""), raw)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(self, path: str, authorization: str, raw: str) -> tuple[int, dict[str, Any]]:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if authorization != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return 404, {"code": 20404, "message": "not found", "status": 404}
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            self.requests += 1
            to = form.get("To", "")
            if not to:
                return 400, {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}
            if not form.get("Body") and not form.get("MediaUrl"):
                return 400, {"code": 21602, "message": "Message body is required.", "status": 400}
            if self.scripted:
                status, code = self.scripted.popleft()
                if status >= 300:
                    return status, {"code": code or status, "message": "scripted failure", "status": status}
            if to in self.errors_for:
                status, code = self.errors_for[to]
                return status, {"code": code, "message": f"error {code}", "status": status}
            if self.failure_rate and self._rng.random() < self.failure_rate:
                status = self._rng.choice(self.failure_statuses)
                code = 20429 if status == 429 else status
                return status, {"code": code, "message": "injected failure", "status": status}
            sid = "SM" + uuid.uuid4().hex
            sender = form.get("From") or form.get("MessagingServiceSid", "")
            self.messages.append(Accepted(sid, to, form.get("Body", ""), sender, form.get("StatusCallback")))
        return 201, {
            "sid": sid, "account_sid": self.account_sid, "to": to, "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"), "body": form.get("Body", ""),
            "status": "queued", "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
            "date_created": "Fri, 27 Nov 2026 10:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
