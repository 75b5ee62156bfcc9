"""Fuzz the signed Twilio webhook: generated form bodies through the real app, never a 5xx.

    python bench/fuzz_webhook.py [--examples 10000] [--seed 0] [--pg URL]

Hypothesis generates webhook posts: any unicode Body (emoji, control characters, NUL, invisible
and bidi characters, bodies of 1,600 characters and more, real texts and commands, mixes of
both, bytes that are not UTF-8), odd or missing From, MessageSid/SmsSid (fresh, reused from a
small pool so deliveries repeat, junk, empty), NumMedia, OptOutType, media fields, extra and
duplicated fields, query strings. Each is signed with twilio's RequestValidator for the URL the
app sees (sometimes with the explicit :80 Twilio also uses); some 7% are forged (no signature,
another token, a field added after signing, signed for another URL, garbage) and must get 403.
Posted with the Flask test client to the app from `create_app`, on a temporary SQLite database
made by the migrations (or PostgreSQL with --pg), with three enrolled participants and a local fake Twilio for the
counselor alerts.

Prints the number of requests, the status-code histogram and the number of 5xx. Exits 1 if any
answer is a 5xx, is not TwiML (text/xml with a <Response> root), a forged post is not refused
with 403 or a signed one not answered 200, or the app logged an error (the webhook answers
unexpected exceptions with 200 and spools the text: a crash hidden from the status code).
Then it shrinks the first failure to a minimal input and prints it with the traceback.

tests/test_fuzz_webhook.py runs the same generator (`webhook_posts`) on 200 derandomized examples.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, find, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402
from werkzeug.wrappers import Request  # noqa: E402

TOKEN = "fuzz-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "f" * 32
TWILIO_NUMBER = "+15005550006"
APP_URL = "http://localhost"  # what the Flask test client's requests look like to the app
ENROLLED = ("+12025550101", "+12025550102", "+12025550103")
SID_POOL = tuple(f"SM{n:032x}" for n in range(1, 9))  # reused: repeated deliveries
FORM = "application/x-www-form-urlencoded"

WORDS = (
    "hi", "STOP", "stop ", "Stop.", "START", "YES", "UNSTOP", "HELP", "INFO", "MENU", "menu!!", "MORE", "NEXT",
    "DONE", "SKIP", "PAUSE", "PAUSE 3 DAYS", "pause 99999999999 days", "PAUSE -1 days", "RESUME", "TIME 7pm",
    "TIME 25:99", "TIME", "time 0am", "PLAN", "SLIP", "what is this", "who is this", "0", "10", "11", "-1", "7.5",
    " 7 ", "٧", "７", "1e9", "99999999999999999999", "0x10", "im so anxious about court tomorrow",
    "really want a drink tonight", "cant sleep its 3am", "so mad at my mom", "been crying all morning",
    "nobody has texted me back all week and the apartment is so quiet", "i used again last night",
    "i wish i could go to sleep and not wake up", "i want to kill myself", "💊💊💊💊", "yes", "no", "idk maybe",
    "no but sometimes", "two years ago i wanted to die, doing so much better now", "gonna do it tonight", "its done",
)
ODD_CHARS = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\xa0\u200b\u200d\u200e\u202e\u2028\u2029\ufeff\ufffd\U0001f600"
PHONES = ("", " ", "+", "+1", "12025550101", "(202) 555-0101", "+1 202 555 0101", "+442071838750",
          "+999999999999999999999999", "whatsapp:+12025550101", "+1202555010１", "client:alice", "+12025550100")
NUM_MEDIA = ("0", "1", "3", "10", "-1", "", "abc", "1.5", "٣", " 2 ", "1_0", "99999999999999999999999")
QUERIES = ("", "", "", "", "?site=a%20b&x=%2B1", "?x=1&x=2", "?empty=", "?%F0%9F%99%82=1")
TAMPER_KEY = "ZZTampered"
FRESH = "SM<fresh>"  # stands for a MessageSid never sent before; `send` puts one in
_fresh_sids = itertools.count(1)


@dataclass
class Post:
    """One generated webhook post: its urlencoded body, where it goes and how it is signed."""

    pairs: list[tuple[str, str]]  # the intended form fields, in order (keys may repeat)
    raw_tail: bytes = b""  # appended to the Body's bytes: not always UTF-8
    query: str = ""
    signing: str = "valid"  # valid | port | missing | wrong_token | tampered | other_url | garbage
    garbage: str = ""

    def with_fresh_sids(self) -> Post:
        """A copy with every FRESH placeholder replaced by a MessageSid not used before."""
        if not any(value == FRESH for _, value in self.pairs):
            return self
        sid = f"SM{next(_fresh_sids):032x}"
        return replace(self, pairs=[(key, sid if value == FRESH else value) for key, value in self.pairs])

    def body_text(self) -> str:
        """The Body the app reads (the first one sent)."""
        return next((value for key, value in self.pairs if key == "Body"), "")

    @property
    def forged(self) -> bool:
        return self.signing not in ("valid", "port")

    def body(self, *, as_sent: bool = True) -> bytes:
        parts = []
        for key, value in self.pairs:
            raw = value.encode()
            if key == "Body" and self.raw_tail:
                raw += self.raw_tail
            parts.append(quote_from_bytes(key.encode(), safe="") + "=" + quote_from_bytes(raw, safe=""))
        if self.signing == "tampered" and as_sent:  # added after signing
            parts.append(urlencode({TAMPER_KEY: "1"}))
        return "&".join(parts).encode()


@dataclass
class Outcome:
    post: Post
    status: int
    content_type: str
    data: bytes
    errors: list[str] = field(default_factory=list)  # ERROR records the app logged meanwhile
    seconds: float = 0.0

    def problems(self) -> list[str]:
        found = []
        if self.status >= 500:
            found.append(f"status {self.status}")
        if self.post.forged and self.status != 403:
            found.append(f"forged ({self.post.signing}) answered {self.status}, not 403")
        if not self.post.forged and self.status != 200:
            found.append(f"signed post answered {self.status}, not 200")
        if not twiml_ok(self.content_type, self.data):
            found.append(f"not TwiML: {self.content_type!r} {self.data[:120]!r}")
        found.extend(f"logged: {e}" for e in self.errors)
        return found


def twiml_ok(content_type: str, data: bytes) -> bool:
    if not content_type.startswith("text/xml"):
        return False
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return False
    return root.tag == "Response" and all(child.tag == "Message" for child in root)


# --- the generator --------------------------------------------------------------------------------

long_bodies = st.one_of(
    st.tuples(st.text(min_size=1, max_size=6), st.integers(1590, 4000)),
    st.tuples(st.sampled_from(WORDS).map(lambda w: w + " "), st.integers(1590, 2000)),
).map(lambda t: (t[0] * (t[1] // len(t[0]) + 1))[: t[1]])
any_text = st.text(min_size=1, max_size=200)  # any unicode (no lone surrogates: a form cannot carry them)
SHORT_BODIES = (  # (strategy, how many of 20 draws): hypothesis's favourite draws land on any_text
    (st.sampled_from(WORDS), 5),
    (st.text(alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), min_size=1, max_size=40), 3),
    (st.text(alphabet=st.sampled_from(ODD_CHARS) | st.characters(max_codepoint=0x1F), min_size=1, max_size=40), 2),
    (st.lists(st.sampled_from(WORDS) | st.text(alphabet=ODD_CHARS, max_size=3) | st.text(max_size=8),
              min_size=2, max_size=6).map(" ".join), 4),
)
empty_bodies = st.sampled_from(["", " ", "\n", "\x00", "\x00" * 5, "\r\n\t"])
field_names = st.text(max_size=20)
field_values = st.text(max_size=40)


def either(draw: Any, common: st.SearchStrategy[Any], *rare: st.SearchStrategy[Any], n: int = 10) -> Any:
    """`common` most of the time; each of `rare` about once in `n` (drawn on values hypothesis
    does not favour: st.one_of and sampled_from lean hard towards their first choices)."""
    pick = draw(st.integers(0, n - 1))
    slots = {n // 2 + 2 * i - len(rare) + 1: strategy for i, strategy in enumerate(rare)}
    return draw(slots.get(pick, common))


def short_body(draw: Any) -> st.SearchStrategy[str]:
    pick, start = draw(st.integers(0, 19)), 2
    for strategy, weight in SHORT_BODIES:
        if start <= pick < start + weight:
            return strategy
        start += weight
    return any_text


def one_in(draw: Any, n: int) -> bool:
    """True about once in n draws. Hypothesis favours 0, 1 and the bounds (its simplest and its
    "nasty" values), so none of them means True: that would make the rare cases common."""
    return bool(draw(st.integers(0, n - 1)) == n // 2)


@st.composite
def webhook_posts(draw: Any) -> Post:
    sid = either(draw, st.just(FRESH), st.sampled_from(SID_POOL), st.text(max_size=80))
    phone = either(draw, st.sampled_from(ENROLLED), st.integers(0, 9999).map(lambda n: f"+1202555{n:04d}"),
                   st.sampled_from(PHONES), st.text(max_size=30), n=12)
    form: dict[str, str] = {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": draw(st.sampled_from(NUM_MEDIA)),
        "SmsSid": draw(st.sampled_from([sid, sid, "", "SM" + "0" * 32])), "SmsStatus": "received",
        "Body": draw(long_bodies if one_in(draw, 40) else empty_bodies if one_in(draw, 25) else short_body(draw)),
        "FromCountry": "US", "To": TWILIO_NUMBER, "NumSegments": "1", "MessageSid": sid,
        "AccountSid": ACCOUNT, "From": phone, "ApiVersion": "2010-04-01",
    }
    if one_in(draw, 10):
        form["OptOutType"] = draw(st.sampled_from(["STOP", "START", "HELP", "stop", ""]) | st.text(max_size=10))
    if one_in(draw, 10):
        form["MediaUrl0"] = draw(st.sampled_from(["https://api.twilio.com/2010-04-01/Media/ME1", "", "x"]))
        form["MediaContentType0"] = draw(st.sampled_from(["image/jpeg", "text/vcard", ""]))
    # Fields Twilio might leave out: now and then the ones the bot needs, more often the others.
    for key in ("Body", "From", "MessageSid"):
        if one_in(draw, 15):
            del form[key]
    optional = sorted(set(form) - {"Body", "From", "MessageSid"})
    for key in draw(st.sets(st.sampled_from(optional), max_size=4)):
        del form[key]
    extra = draw(st.dictionaries(field_names, field_values, max_size=3))
    pairs = list({**extra, **form}.items()) if draw(st.booleans()) else list({**form, **extra}.items())
    # Fields sent twice (request.form.get takes the first; the signature covers every value).
    pairs += draw(st.lists(st.tuples(st.sampled_from(["Body", "From", "MessageSid", "NumMedia"]), field_values),
                           max_size=2))
    raw_tail = draw(st.binary(min_size=1, max_size=6)) if one_in(draw, 15) else b""
    pick = draw(st.integers(0, 39))  # 0, 1 and 39 (hypothesis's favourites) mean "valid"
    signing = {11: "missing", 14: "wrong_token", 17: "tampered", 20: "other_url", 23: "garbage",
               26: "port", 29: "port"}.get(pick, "valid")
    garbage = draw(st.text(alphabet="ABCDEFabcdef0123456789+/= ", max_size=40)) if signing == "garbage" else ""
    if TAMPER_KEY in {k for k, _ in pairs}:
        signing = "valid" if signing == "tampered" else signing
    return Post(pairs=pairs, raw_tail=raw_tail, query=draw(st.sampled_from(QUERIES)), signing=signing,
                garbage=garbage)


# --- posting --------------------------------------------------------------------------------------


def signed_values(post: Post) -> MultiDict[str, str]:
    """The fields the signature covers: Twilio signs the values as decoded; for bytes that are
    not UTF-8 (never from Twilio) sign what the app's form parser makes of them."""
    if not post.raw_tail:
        return MultiDict(post.pairs)
    environ = EnvironBuilder(method="POST", data=post.body(as_sent=False), content_type=FORM).get_environ()
    return MultiDict(Request(environ).form.items(multi=True))


def signature_header(post: Post, token: str) -> dict[str, str]:
    validator = RequestValidator(token)
    url = APP_URL + "/sms" + post.query
    values = signed_values(post)
    if post.signing == "missing":
        return {}
    if post.signing == "garbage":
        return {"X-Twilio-Signature": post.garbage}
    if post.signing == "wrong_token":
        validator = RequestValidator(token + "x")
    elif post.signing == "other_url":
        url = "https://attacker.example/sms" + post.query
    elif post.signing == "port":
        url = APP_URL + ":80/sms" + post.query
    return {"X-Twilio-Signature": validator.compute_signature(url, values)}


class ErrorRecords(logging.Handler):
    """Collects ERROR records (with their tracebacks) that the app logs under `bot`."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.records.append(text)


@contextmanager
def app_errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    logger = logging.getLogger("bot")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def send(client: Any, post: Post, token: str) -> Outcome:
    post = post.with_fresh_sids()
    started = time.perf_counter()
    with app_errors() as errors:
        response = client.post("/sms" + post.query, data=post.body(), content_type=FORM,
                               headers=signature_header(post, token))
        data = response.get_data()
        response.close()  # runs call_on_close work (counselor alerts) as a WSGI server would
    return Outcome(post, response.status_code, response.content_type or "", data, errors.records,
                   time.perf_counter() - started)


# --- the app --------------------------------------------------------------------------------------


@contextmanager
def fuzz_app(tmp: Path, database_url: str | None = None) -> Iterator[Any]:
    """The real app on a migrated database (SQLite in `tmp`, or `database_url`'s PostgreSQL
    database dropped and created afresh), three enrolled participants, a fake Twilio."""
    from sqlalchemy import create_engine, make_url, text

    from bot.app import create_app
    from bot.cli import migrate
    from bot.enrollment import EnrollmentRequest, create_counselor, enroll
    from tests.fake_twilio import FakeTwilio

    url = database_url or f"sqlite:///{tmp / 'fuzz.sqlite3'}"
    if database_url:
        target = make_url(database_url)
        engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        engine.dispose()
    migrate(url)
    fake = FakeTwilio(account_sid=ACCOUNT, auth_token=TOKEN).start()
    fake.reset()
    app = create_app({
        "DATABASE_URL": url, "SECRET_KEY": "fuzz", "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM_NUMBER": TWILIO_NUMBER, "TWILIO_API_BASE_URL": fake.base_url, "PUBLIC_BASE_URL": None,
        "SPOOL_DIR": str(tmp / "spool"), "LOG_LEVEL": "ERROR",
    })
    db, now = app.extensions["db"], app.extensions["clock"]()

    def work(session: Any) -> None:
        counselor = create_counselor(session, email="fuzz@clinic.example", name="Fuzz", phone="+12025550100",
                                     password="fuzz-password", region="US")
        for phone in ENROLLED:
            participant, _ = enroll(session, app.extensions["library"],
                                    EnrollmentRequest(phone=phone, counselor_email=counselor.email, name="Pat"),
                                    now=now, region="US", program_name=app.config["PROGRAM_NAME"])
            participant.status, participant.consent_at = "active", now

    db.run(work)
    try:
        yield app
    finally:
        db.dispose()
        fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL instead of SQLite; the database is dropped and "
                        "created afresh, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/fuzz")
    args = parser.parse_args()

    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="fuzz-webhook-") as tmpdir, fuzz_app(Path(tmpdir), args.pg) as app:
        client = app.test_client()
        app.extensions["matcher"].classify("the room looks flat like a photo")  # loads the learned layers

        @seed(args.seed)
        @settings(max_examples=args.examples, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(webhook_posts())
        def run(post: Post) -> None:
            outcomes.append(send(client, post, TOKEN))

        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        spooled = sum(1 for _ in (Path(tmpdir) / "spool" / "inbound").glob("*")) \
            if (Path(tmpdir) / "spool" / "inbound").is_dir() else 0

        statuses = Counter(o.status for o in outcomes)
        failed = [o for o in outcomes if o.problems()]
        forged = sum(o.post.forged for o in outcomes)
        distinct = len({o.post.body_text() for o in outcomes})
        print(f"requests      {len(outcomes)} ({len(outcomes) - forged} signed, {forged} forged; {distinct} distinct "
              f"bodies) in {elapsed:.0f} s")
        print(f"status codes  {', '.join(f'{code}: {n}' for code, n in sorted(statuses.items()))}")
        print(f"5xx           {sum(n for code, n in statuses.items() if code >= 500)}")
        print(f"not TwiML     {sum(not twiml_ok(o.content_type, o.data) for o in outcomes)}")
        print(f"errors logged {sum(len(o.errors) for o in outcomes)}; texts spooled {spooled}")
        slow = sorted(outcomes, key=lambda o: o.seconds, reverse=True)
        print(f"latency       median {slow[len(slow) // 2].seconds * 1000:.0f} ms, "
              f"{sum(o.seconds > 1 for o in slow)} requests over 1 s, slowest: " + "; ".join(
                  f"{o.seconds:.1f} s ({len(o.post.body_text())} chars)" for o in slow[:3]))
        print(f"problems      {len(failed)}")
        if not failed:
            return 0
        for outcome in failed[:5]:
            print(f"- {outcome.post!r}\n  " + "\n  ".join(outcome.problems()))
        print("shrinking the first kind of failure to a minimal input...")
        try:
            minimal = find(webhook_posts(), lambda p: bool(send(client, p, TOKEN).problems()),
                           settings=settings(database=None, deadline=None, max_examples=args.examples,
                                             suppress_health_check=list(HealthCheck)))
            print(f"minimal input: {minimal!r}")
            print("\n".join(send(client, minimal, TOKEN).problems()))
        except Exception as exc:  # noqa: BLE001 - shrinking is best effort (state-dependent failures)
            print(f"could not shrink: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
