"""SMS encoding and segment counting, checked against GSM 03.38 and Twilio's segment rules."""

from __future__ import annotations

import pytest

from bot.segments import encoding, is_gsm7, non_gsm7_chars, segments, septets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x" * 160, 1),
        ("x" * 161, 2),
        ("x" * 306, 2),
        ("x" * 307, 3),
        ("", 0),
        # 70 UCS-2 code units fit one segment, 71 need two (67 per part).
        ("\u00e1" * 70, 1),
        ("\u00e1" * 71, 2),
        ("\u00e1" * 134, 2),
        ("\u00e1" * 135, 3),
        # Emoji are surrogate pairs: 35 emoji = 70 units = 1 segment, 36 = 2.
        ("\U0001f60a" * 35, 1),
        ("\U0001f60a" * 36, 2),
        # Extension characters cost two septets: 80 of them fill one segment exactly.
        ("[" * 80, 1),
        ("[" * 81, 2),
        ("\u20ac" * 80, 1),
    ],
)
def test_segments_match_twilio_vectors(text: str, expected: int) -> None:
    assert segments(text) == expected


@pytest.mark.parametrize(
    "char",
    ["\u2019", "\u201c", "\u201d", "\u2014", "\u2013", "\u2026", "\u00a0", "\U0001f60a", "`", "\u00e7",
     "\u00e1", "\u00ed", "\u00f3", "\u00fa"],
)
def test_characters_that_force_ucs2(char: str) -> None:
    text = "x" * 100 + char
    assert not is_gsm7(text)
    assert encoding(text) == "UCS-2"
    assert non_gsm7_chars(text) == [char]
    # 101 characters fit one GSM-7 segment but need two in UCS-2.
    assert segments(text) == 2


@pytest.mark.parametrize(
    "char", ["\u00e9", "\u00e8", "\u00f1", "\u00fc", "\u00e0", "\u00c7", "\u00a3", "@", "\n"]
)
def test_characters_that_stay_gsm7(char: str) -> None:
    text = "caf" + char
    assert is_gsm7(text)
    assert septets(text) == 4


def test_curly_quote_forces_ucs2_and_straight_quote_does_not() -> None:
    assert segments("Don\u2019t worry, you are doing fine" + "." * 100) == 2
    assert segments("Don't worry, you are doing fine" + "." * 100) == 1


@pytest.mark.parametrize("char", ["^", "{", "}", "\\", "[", "~", "]", "|", "\u20ac", "\f"])
def test_extension_characters_cost_two_septets(char: str) -> None:
    assert is_gsm7(char)
    assert septets("a" + char) == 3


def test_extension_character_is_not_split_across_parts() -> None:
    # 152 plain septets then an escape pair: the pair cannot straddle the 153 boundary, so the
    # first part holds 152 septets and the second starts with the pair (161 septets, 2 parts).
    assert segments("x" * 152 + "[" + "x" * 7) == 2
    # 159 septets + a 2-septet character = 161: over one segment although only 160 characters.
    assert segments("x" * 158 + "[") == 1
    assert segments("x" * 159 + "[") == 2


def test_surrogate_pair_is_not_split_across_parts() -> None:
    # 66 units + emoji (2) = 68 > 67 in the first part: the emoji moves to part two.
    text = "\u00e1" * 66 + "\U0001f60a" + "\u00e1" * 66
    assert segments(text) == 3


def test_septets_rejects_non_gsm7() -> None:
    with pytest.raises(ValueError, match="not GSM-7"):
        septets("caf\u00e1")


def test_non_gsm7_chars_lists_each_offender_once_in_order() -> None:
    text = "\u201cHi\u201d \u2014 it\u2019s \u201cme\u201d"
    assert non_gsm7_chars(text) == ["\u201c", "\u201d", "\u2014", "\u2019"]
