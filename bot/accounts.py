"""Counselor accounts: sign-in with a per-account and per-address limit, two-factor, roles.

Failed sign-ins are rows in the database, so the limit holds across every web process and host.
Passwords are argon2 hashes (argon2-cffi); two-factor is TOTP (RFC 6238) through pyotp.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .models import AuditLog, Counselor, LoginFailure

_hasher = PasswordHasher()

# At most this many failures in FAILURE_WINDOW per account, and per address (an office NAT shares
# one address, so its limit is higher), before sign-in is refused until the window has passed.
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
MIN_PASSWORD_LENGTH = 10

# A hash to verify against when the email is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """Something a person must correct; the message says what."""


@dataclass(frozen=True)
class SignIn:
    counselor: Counselor | None
    # None: signed in. "totp": the password was right and a code is needed next. "invalid",
    # "locked", "inactive": refused.
    error: str | None = None


def _keys(email: str, address: str) -> tuple[str, str]:
    return f"email:{email.strip().lower()}", f"ip:{address}"


def _failures(session: Session, key: str, now: datetime) -> int:
    return int(session.scalar(select(func.count(LoginFailure.id)).where(
        LoginFailure.key == key, LoginFailure.created_at > now - FAILURE_WINDOW)) or 0)


def locked(session: Session, email: str, address: str, now: datetime) -> bool:
    email_key, address_key = _keys(email, address)
    return (_failures(session, email_key, now) >= MAX_FAILURES_PER_ACCOUNT
            or _failures(session, address_key, now) >= MAX_FAILURES_PER_ADDRESS)


def _fail(session: Session, email: str, address: str, now: datetime) -> None:
    for key in _keys(email, address):
        session.add(LoginFailure(key=key, created_at=now))
    # Old rows serve no limit: keep the table small.
    session.execute(delete(LoginFailure).where(LoginFailure.created_at < now - 2 * FAILURE_WINDOW))


def authenticate(session: Session, email: str, password: str, *, address: str, now: datetime) -> SignIn:
    """Check an email and password. Every failure counts towards the limit; while the limit holds,
    not even the right password opens the account. Two-factor, when set, is the next step."""
    email = email.strip().lower()
    if locked(session, email, address, now):
        return SignIn(None, "locked")
    counselor = session.scalar(select(Counselor).where(Counselor.email == email))
    if not _password_ok(counselor.password_hash if counselor else _DUMMY_HASH, password) or counselor is None:
        _fail(session, email, address, now)
        return SignIn(None, "invalid")
    if not counselor.active:
        _fail(session, email, address, now)
        return SignIn(None, "inactive")
    if _hasher.check_needs_rehash(counselor.password_hash):
        counselor.password_hash = _hasher.hash(password)
    if counselor.totp_secret:
        return SignIn(counselor, "totp")
    return SignIn(_signed_in(session, counselor, address, now))


def second_factor(session: Session, counselor_id: int, code: str, *, address: str, now: datetime) -> SignIn:
    """The TOTP step after a right password; failures count like wrong passwords."""
    counselor = session.get(Counselor, counselor_id)
    if counselor is None or not counselor.active or not counselor.totp_secret:
        return SignIn(None, "invalid")
    if locked(session, counselor.email, address, now):
        return SignIn(None, "locked")
    step = totp_step(counselor.totp_secret, code, now)
    # A code works once (RFC 6238, section 5.2): a step at or before the last one used is refused,
    # so a code seen over someone's shoulder cannot be replayed within its window.
    if step is None or (counselor.totp_last_step is not None and step <= counselor.totp_last_step):
        _fail(session, counselor.email, address, now)
        return SignIn(None, "totp")
    counselor.totp_last_step = step
    return SignIn(_signed_in(session, counselor, address, now))


def _signed_in(session: Session, counselor: Counselor, address: str, now: datetime) -> Counselor:
    if not counselor.session_token:
        counselor.session_token = secrets.token_hex(16)
    session.execute(delete(LoginFailure).where(LoginFailure.key == _keys(counselor.email, address)[0]))
    session.add(AuditLog(actor=counselor.email, action="login", detail={}, created_at=now))
    return counselor


def _password_ok(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def change_password(session: Session, counselor: Counselor, current: str, new: str, now: datetime, *,
                    address: str) -> None:
    """Replace the password and end every other session. A wrong current password counts like a
    failed sign-in, so a session left open cannot be used to guess it: commit after an AccountError."""
    if locked(session, counselor.email, address, now):
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        raise AccountError(f"too many wrong passwords: try again in {minutes} minutes")
    if not _password_ok(counselor.password_hash, current):
        _fail(session, counselor.email, address, now)
        raise AccountError("the current password is not right")
    check_password_rules(new)
    counselor.password_hash = _hasher.hash(new)
    counselor.session_token = secrets.token_hex(16)  # other sessions end
    session.add(AuditLog(actor=counselor.email, action="password_change", detail={}, created_at=now))


def set_active(session: Session, counselor: Counselor, active: bool, *, by: str, now: datetime) -> None:
    counselor.active = active
    counselor.session_token = secrets.token_hex(16)
    session.add(AuditLog(actor=by, action="counselor_" + ("activate" if active else "deactivate"),
                         detail={"counselor": counselor.email}, created_at=now))


# --- two-factor (TOTP) ---------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (30 s) a six-digit code belongs to: now, or one step either side (clocks on
    phones drift); None when it matches none of them."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(secret: str, code: str, now: datetime) -> bool:
    return totp_step(secret, code, now) is not None


def enable_totp(session: Session, counselor: Counselor, secret: str, code: str, now: datetime) -> None:
    step = totp_step(secret, code, now)
    if step is None:
        raise AccountError("that code is not right: check the phone's clock and try the newest code")
    counselor.totp_secret = secret
    counselor.totp_last_step = step
    session.add(AuditLog(actor=counselor.email, action="totp_enable", detail={}, created_at=now))
