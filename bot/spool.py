"""A local, durable spool for what could not be written to the database when it happened.

Three kinds of entries, one JSON file each, written atomically (temporary file, fsync, rename) so a
crash never leaves half an entry:

- `inbound/`: a text received while the database was down. The webhook answered it at once (a
  5xx answer's body never reaches the texter, so it answers 200 with the fallback reply), and the
  entry is replayed once the database is back: a crisis text then alerts the counselor.
- `sent/`: a message the provider accepted but whose sending could not be recorded. It must
  never be sent again as if it had failed: claims skip the outbox rows named here, and the
  replay marks them sent.
- `status/`: a delivery status callback received while the database was down (Twilio does not
  post it again: bot/statuses.py). Its replay applies it, a carrier opt-out (21610) included.
- `failed/`: entries that could not be replayed after MAX_TRIES, for a person to look at. They
  hold the same data, so the scheduler's retention step deletes those older than
  MESSAGE_RETENTION_DAYS (`forget_failed`).

The directory holds phone numbers and message text, like the database: it is created 0700 and
its files 0600. Web and scheduler processes share it (`SPOOL_DIR`, default instance/spool: the
same host, or a volume they all mount); every process replays it, and the database's unique keys
(MessageSid, outbox id) make a replay by two processes at once harmless.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INBOUND = "inbound"
SENT = "sent"
STATUS = "status"
FAILED = "failed"
# An entry that cannot be replayed after this many tries is moved to failed/ (and logged as an
# error) so one bad entry cannot block the others.
MAX_TRIES = 20


@dataclass
class InboundEntry:
    sid: str
    phone: str
    body: str
    received_at: str  # ISO 8601, aware UTC
    replies: list[str]  # what the texter was answered at the time
    opt_out_type: str | None = None
    num_media: int = 0
    tries: int = 0

    @property
    def received(self) -> datetime:
        return datetime.fromisoformat(self.received_at)


@dataclass
class SentEntry:
    outbox_id: int
    sid: str | None
    status: str | None
    sent_at: str  # ISO 8601, aware UTC
    tries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sent(self) -> datetime:
        return datetime.fromisoformat(self.sent_at)


@dataclass
class StatusEntry:
    sid: str  # the MessageSid the callback is about
    status: str
    error_code: str | None
    received_at: str  # ISO 8601, aware UTC
    tries: int = 0

    @property
    def received(self) -> datetime:
        return datetime.fromisoformat(self.received_at)


class Spool:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = Path(directory)

    def _dir(self, kind: str) -> Path:
        path = self.root / kind
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _write(self, kind: str, name: str, data: dict[str, Any]) -> Path:
        folder = self._dir(kind)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            target = folder / f"{name}.json"
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    # --- writing ----------------------------------------------------------------------------

    def put_inbound(self, entry: InboundEntry) -> Path:
        # One file per MessageSid: a second delivery of the same text overwrites, never doubles.
        return self._write(INBOUND, _safe_name(entry.sid), asdict(entry))

    def put_sent(self, entry: SentEntry) -> Path:
        return self._write(SENT, str(int(entry.outbox_id)), asdict(entry))

    def put_status(self, entry: StatusEntry) -> Path:
        # One file per MessageSid and status: a repeated callback overwrites, never doubles.
        return self._write(STATUS, f"{_safe_name(entry.sid)}-{_safe_name(entry.status)}", asdict(entry))

    # --- reading ----------------------------------------------------------------------------

    def inbound(self) -> Iterator[tuple[Path, InboundEntry]]:
        """Entries oldest first."""
        for path in self._files(INBOUND):
            data = _read(path)
            if data is not None:
                yield path, InboundEntry(**data)

    def sent(self) -> Iterator[tuple[Path, SentEntry]]:
        for path in self._files(SENT):
            data = _read(path)
            if data is not None:
                yield path, SentEntry(**data)

    def statuses(self) -> Iterator[tuple[Path, StatusEntry]]:
        """Entries oldest first."""
        for path in self._files(STATUS):
            data = _read(path)
            if data is not None:
                yield path, StatusEntry(**data)

    def unrecorded_outbox_ids(self) -> frozenset[int]:
        """Outbox rows that went out but are not yet recorded as sent: never claim them."""
        folder = self.root / SENT
        if not folder.is_dir():
            return frozenset()
        return frozenset(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())

    def has_entries(self) -> bool:
        return any(any((self.root / kind).glob("*.json")) for kind in (INBOUND, SENT, STATUS)
                   if (self.root / kind).is_dir())

    def _files(self, kind: str) -> list[Path]:
        folder = self.root / kind
        if not folder.is_dir():
            return []
        files = list(folder.glob("*.json"))
        return sorted(files, key=lambda p: (_mtime(p), p.name))

    # --- finishing --------------------------------------------------------------------------

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def retry_later(self, path: Path, entry: InboundEntry | SentEntry | StatusEntry) -> None:
        """Count a failed replay; after MAX_TRIES the entry moves to failed/ for a person to look at."""
        entry.tries += 1
        kind = path.parent.name
        if entry.tries >= MAX_TRIES:
            target = self._dir(FAILED) / f"{kind}-{path.stem}-{uuid.uuid4().hex[:6]}.json"
            os.replace(path, target)
            log.error("spool entry %s/%s could not be replayed after %d tries: moved to %s", kind,
                      path.stem[-6:], entry.tries, target.parent)
            return
        self._write(kind, path.stem, asdict(entry))

    def forget_failed(self, before: datetime) -> int:
        """Delete the entries in failed/ last written before `before` (aware); returns how many.

        They hold phone numbers and message text like the database's messages, so they age out
        with the same retention (MESSAGE_RETENTION_DAYS), by the time they were moved there.
        """
        folder = self.root / FAILED
        if not folder.is_dir():
            return 0
        cutoff = before.timestamp()
        removed = 0
        for path in folder.glob("*.json"):
            if _mtime(path) < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _safe_name(value: str) -> str:
    cleaned = "".join(c for c in value if c.isalnum())[:64]
    return cleaned or uuid.uuid4().hex


def _read(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:  # replayed by another process meanwhile
        return None
    except (OSError, ValueError):
        log.error("unreadable spool entry %s", path.name)
        return None
    return data if isinstance(data, dict) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
