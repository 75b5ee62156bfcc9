"""Counselors and enrollment: validated phone numbers, zones and times, and the consent invitation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import outbox
from .conversation import allowed_time, parse_time
from .models import INVITED, AuditLog, Counselor, Participant
from .sms import mask_phone
from .vocabulary import FLAGS

_hasher = PasswordHasher()


class EnrollmentError(ValueError):
    """Input an operator must correct; the message says what and how, and `field` which input
    (an `EnrollmentRequest` field name, e.g. "phone") when it is about one, so a form can show the
    message next to it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def normalise_phone(raw: str, region: str = "US") -> str:
    """E.164 form of a phone number, or EnrollmentError when it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise EnrollmentError(f"{raw!r} is not a phone number ({exc})", "phone") from None
    if not phonenumbers.is_valid_number(number):
        raise EnrollmentError(f"{raw!r} is not a valid phone number for region {region}", "phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(text: str) -> str:
    """Nudge days as Monday=0 digits from "0123456", "mon,wed,fri", "mon-fri" or "weekdays"."""
    raw = text.strip().lower().replace(" ", "")
    aliases = {"daily": "0123456", "every": "0123456", "weekdays": "01234", "weekends": "56"}
    if raw in aliases:
        return aliases[raw]
    if raw.isdigit() and set(raw) <= set("0123456"):
        return "".join(sorted(set(raw)))
    days: set[int] = set()
    for part in filter(None, raw.split(",")):
        ends = part.split("-")
        try:
            first, last = (_DAY_NAMES.index(e[:3]) for e in (ends[0], ends[-1]))
        except ValueError:
            raise EnrollmentError(f"{text!r} is not a list of days (e.g. mon-fri or mon,wed,fri)",
                                  "nudge_days") from None
        span = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
        days.update(span)
    if not days:
        raise EnrollmentError("at least one nudge day is needed", "nudge_days")
    return "".join(str(d) for d in sorted(days))


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise EnrollmentError(f"{name!r} is not an IANA time zone (e.g. America/New_York)", "timezone") from None
    return name


def check_time(text: str, field: str) -> str:
    """"HH:MM" from "09:30" or "7pm"; EnrollmentError about `field` otherwise."""
    hhmm = parse_time(text)
    if hhmm is None:
        raise EnrollmentError("times must look like 09:30 or 7pm", field)
    return hhmm


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_counselor(session: Session, *, email: str, name: str, phone: str, password: str, region: str,
                     is_admin: bool = False) -> Counselor:
    email = email.strip().lower()
    if "@" not in email:
        raise EnrollmentError(f"{email!r} is not an email address")
    if len(password) < 10:
        raise EnrollmentError("the password must have at least 10 characters")
    if session.scalar(select(Counselor).where(Counselor.email == email)):
        raise EnrollmentError(f"a counselor with email {email} already exists")
    counselor = Counselor(email=email, name=name.strip(), phone=normalise_phone(phone, region),
                          password_hash=hash_password(password), is_admin=is_admin)
    session.add(counselor)
    session.flush()
    return counselor


@dataclass(frozen=True)
class EnrollmentRequest:
    phone: str
    counselor_email: str
    name: str | None = None
    timezone: str = "America/New_York"
    nudge_time: str = "10:00"
    quiet_start: str = "08:00"
    quiet_end: str = "21:00"
    flags: tuple[str, ...] = ()
    discreet: bool = False
    admission_date: date | None = None
    discharge_date: date | None = None
    aftercare_days: int = 0
    nudge_days: str = "0123456"


def enroll(session: Session, library: Any, request: EnrollmentRequest, *, now: datetime, region: str,
           program_name: str, actor: str = "cli") -> tuple[Participant, int]:
    """Create an invited participant and queue the consent invitation; returns (participant, outbox id)."""
    phone = normalise_phone(request.phone, region)
    counselor = session.scalar(select(Counselor).where(Counselor.email == request.counselor_email.strip().lower()))
    if counselor is None:
        raise EnrollmentError(f"no counselor with email {request.counselor_email}; create one first", "counselor")
    if session.scalar(select(Participant).where(Participant.phone == phone)):
        raise EnrollmentError(f"{mask_phone(phone)} is already enrolled", "phone")
    nudge_time = check_time(request.nudge_time, "nudge_time")
    quiet_start, quiet_end = check_time(request.quiet_start, "quiet_start"), check_time(request.quiet_end, "quiet_end")
    if not allowed_time(nudge_time, quiet_start, quiet_end):
        raise EnrollmentError(f"nudge time {nudge_time} is outside the allowed window {quiet_start}-{quiet_end}",
                              "nudge_time")
    unknown = sorted(set(request.flags) - set(FLAGS))
    if unknown:
        raise EnrollmentError(f"unknown flag(s) {', '.join(unknown)}; known: {', '.join(FLAGS)}", "flags")
    participant = Participant(
        phone=phone, name=(request.name or "").strip() or None, counselor_id=counselor.id, status=INVITED,
        timezone=check_zone(request.timezone), nudge_time=nudge_time, quiet_start=quiet_start,
        quiet_end=quiet_end, flags=sorted(set(request.flags)), discreet=request.discreet,
        admission_date=request.admission_date, discharge_date=request.discharge_date,
        aftercare_days=max(request.aftercare_days, 0), nudge_days=parse_days(request.nudge_days), created_at=now,
    )
    session.add(participant)
    session.flush()
    body = library.message("consent_invitation", program=program_name, counselor=counselor.name)
    row = outbox.enqueue(session, to=phone, body=body, kind="invitation", now=now, participant_id=participant.id,
                         dedupe_key=f"invitation:{participant.id}")
    session.add(AuditLog(actor=actor, action="enroll", participant_id=participant.id,
                         detail={"counselor": counselor.email}, created_at=now))
    return participant, row.id
