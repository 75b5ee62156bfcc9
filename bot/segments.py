"""GSM-7 encoding checks and SMS segment counting, with no third-party library.

Carriers bill and deliver SMS in segments. A message made only of GSM 03.38 characters is sent
as GSM-7: 160 septets in one segment, 153 per segment once it is split (the rest of each part
holds the concatenation header). One character outside that alphabet (a curly quote from a
phone keyboard, an em dash, an emoji, a-acute) turns the whole message into UCS-2: 70 UTF-16
code units in one segment, 67 per part. The tables follow Twilio's own segment calculator
(TwilioDevEd/message-segment-calculator, UnicodeToGSM.ts).
"""

from __future__ import annotations

# GSM 03.38 default alphabet (one septet each). Note the accented letters it does include
# (e-acute, e-grave, u-grave...) and the ones it does not (a-acute, i-acute, o-acute, u-acute).
_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

# Extension table: each is sent as ESC + character, so it costs two septets.
_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


def _is_gsm7_char(ch: str) -> bool:
    return ch in _BASIC or ch in _EXTENSION


def is_gsm7(text: str) -> bool:
    """True when every character of `text` can be sent in the GSM-7 alphabet."""
    return all(_is_gsm7_char(ch) for ch in text)


def non_gsm7_chars(text: str) -> list[str]:
    """The distinct characters that would force UCS-2, in order of first appearance."""
    seen: list[str] = []
    for ch in text:
        if not _is_gsm7_char(ch) and ch not in seen:
            seen.append(ch)
    return seen


def _septet_cost(ch: str) -> int:
    return 2 if ch in _EXTENSION else 1


def septets(text: str) -> int:
    """GSM-7 slots `text` occupies: extension characters count 2, all others 1.

    Raises ValueError if `text` is not GSM-7, because a septet count is meaningless then.
    """
    bad = non_gsm7_chars(text)
    if bad:
        raise ValueError(f"not GSM-7: {bad!r}")
    return sum(_septet_cost(ch) for ch in text)


def _utf16_units(ch: str) -> int:
    # Characters beyond the Basic Multilingual Plane (most emoji) are surrogate pairs.
    return 2 if ord(ch) > 0xFFFF else 1


def _pack(costs: list[int], single: int, part: int) -> int:
    """Segments needed for characters of the given costs.

    A character is never split across two parts (an escape sequence or a surrogate pair
    stays whole), which is why a long message can need one more part than a plain division.
    """
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:
            count += 1
            used = 0
        used += cost
    return count


def segments(text: str) -> int:
    """Number of SMS segments `text` is sent as (0 for the empty string).

    GSM-7 when every character allows it (160 septets single, 153 per part), otherwise UCS-2
    counted in UTF-16 code units (70 single, 67 per part), so an emoji counts 2.
    """
    if is_gsm7(text):
        return _pack([_septet_cost(ch) for ch in text], GSM7_SINGLE, GSM7_PART)
    return _pack([_utf16_units(ch) for ch in text], UCS2_SINGLE, UCS2_PART)


def encoding(text: str) -> str:
    """"GSM-7" or "UCS-2": the encoding `text` will be sent in."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"
