"""SmsSender implementations: the official Twilio client, and a console sender for local use.

Everything the bot sends outside a TwiML reply goes through one SmsSender (see bot/outbox.py).
A sender never raises for a delivery problem: it returns a SendResult saying whether the
message left, and if not, whether trying again later can help.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

log = logging.getLogger(__name__)

# Environment variables requests honours only when trust_env is on.
_REQUESTS_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

# Twilio error codes (https://www.twilio.com/docs/api/errors).
UNSUBSCRIBED = 21610
INVALID_NUMBER = 21211
NOT_MOBILE = 21614
UNVERIFIED_TRIAL = 21608
TOO_MANY_REQUESTS = 20429


@dataclass(frozen=True)
class SendResult:
    ok: bool
    sid: str | None = None
    status: str | None = None
    error_code: int | None = None
    retryable: bool = False
    detail: str | None = None

    @property
    def opted_out(self) -> bool:
        return self.error_code == UNSUBSCRIBED

    @property
    def invalid_number(self) -> bool:
        return self.error_code in (INVALID_NUMBER, NOT_MOBILE)


class SmsSender(Protocol):
    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult: ...


def mask_phone(phone: str | None) -> str:
    """A phone number safe for logs: only the last four digits."""
    if not phone:
        return "-"
    return "***" + phone[-4:]


def classify_error(http_status: int | None, code: int | None) -> SendResult:
    """Map a Twilio REST error to a SendResult: 429/20429 and 5xx retry, other 4xx are final."""
    retryable = code == TOO_MANY_REQUESTS or http_status == 429 or (http_status or 0) >= 500
    return SendResult(ok=False, error_code=code if code is not None else http_status, retryable=retryable)


class TwilioSender:
    """Sends through the official twilio Client with a timeout and an optional base-URL override."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        if not (from_number or messaging_service_sid):
            raise ValueError("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID is required to send")
        self._from = from_number
        self._service = messaging_service_sid
        self._local = threading.local()
        def make_client() -> Any:
            http = TwilioHttpClient(timeout=timeout, pool_connections=True)
            if http.session is not None and not any(os.environ.get(k) for k in _REQUESTS_ENV):
                # requests re-reads proxy settings from the environment on every call (~0.35 ms)
                http.session.trust_env = False
            return Client(account_sid, auth_token, http_client=http)

        self._factory = make_client
        self._base_url = base_url.rstrip("/") if base_url else None

    def _client(self) -> Any:  # a twilio.rest.Client: twilio ships no type information
        # One client (and connection pool) per thread: requests sessions are not thread-safe.
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            if self._base_url:
                client.api.base_url = self._base_url
            self._local.client = client
        return client

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        from requests.exceptions import RequestException
        from twilio.base.exceptions import TwilioException, TwilioRestException

        kwargs: dict[str, str] = {"to": to, "body": body}
        if self._service:
            kwargs["messaging_service_sid"] = self._service
        else:
            kwargs["from_"] = self._from or ""
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self._client().messages.create(**kwargs)
        except TwilioRestException as exc:
            result = classify_error(exc.status, exc.code)
            log.warning("twilio refused a message to %s: code %s", mask_phone(to), result.error_code)
            return result
        except (RequestException, TwilioException, OSError) as exc:
            # Timeouts and connection failures: the message may or may not have left; retry.
            log.warning("twilio request to %s failed: %s", mask_phone(to), type(exc).__name__)
            return SendResult(ok=False, retryable=True, detail=type(exc).__name__)
        return SendResult(ok=True, sid=message.sid, status=message.status)


class ConsoleSender:
    """The embedded default: prints each message to the terminal and keeps it in `sent`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        with self._lock:
            self.sent.append((to, body))
        stream = self._stream or sys.stderr  # stdout stays clean for commands that print JSON
        print(f"[console sms -> {to}] {body}", file=stream, flush=True)
        # Unique across processes and restarts (each CLI command is a new process): a repeated id
        # would make recording the send fail.
        return SendResult(ok=True, sid=f"SM{uuid.uuid4().hex}", status="sent")
