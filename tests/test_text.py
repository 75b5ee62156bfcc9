"""Normalisation shared by the crisis check and the matcher."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text import fold, join_spelled_out, normalise, squeeze_elongations, tokens, unleet


def test_fold_makes_phone_typography_plain_and_keeps_emoji() -> None:
    assert fold("I’m “fine” – really…") == "i'm \"fine\" - really..."
    assert fold("Café NIÑO") == "cafe nino"
    assert fold("ok\u00a0then\u200b") == "ok then"
    assert fold("\U0001f48a") == "\U0001f48a"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Don’t", "dont"),
        ("I'm NOT ok!!!", "im not ok"),
        ("soooo tired", "soo tired"),
        ("i want to dieeee", "i want to diee"),
        ("k1ll mys3lf", "kill myself"),
        ("su1c1de", "suicide"),
        ("$uicidal", "suicidal"),
        ("k!ll", "kill"),
        ("di3", "die"),
        ("s.u.i.c.i.d.e", "suicide"),
        ("K I L L  M Y S E L F", "killmyself"),
        ("s o o o", "soo"),
        ("help!", "help"),
        ("800mg x10", "800mg x10"),
        ("walked 5 kms", "walked 5 kms"),
        ("10/10", "10 10"),
        ("at 3am", "at 3am"),
        ("covid19 and b12", "covid19 and b12"),
        ("i m a mess", "i m a mess"),
        ("  spaced\tout\n", "spaced out"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_unleet_only_touches_words_spelled_with_symbols() -> None:
    assert unleet("k1ll 5 kms 800mg x10 help!") == "kill 5 kms 800mg x10 help!"
    assert unleet("h3ll0!") == "hello!"


def test_squeeze_keeps_double_letters() -> None:
    assert squeeze_elongations("good feeel") == "good feel"
    assert squeeze_elongations("aaaa") == "aa"


def test_join_spelled_out_needs_four_letters() -> None:
    assert join_spelled_out("s u i c i d e") == "suicide"
    assert join_spelled_out("i m a") == "i m a"
    assert join_spelled_out("call me a b c d now") == "call me abcd now"


def test_tokens_are_the_words_of_normalise() -> None:
    assert tokens("I’m so done... 3am again!!") == ["im", "so", "done", "3am", "again"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_normalise_output_is_plain_and_stable(text: str) -> None:
    once = normalise(text)
    assert re.fullmatch(r"(?:[a-z0-9]+(?: [a-z0-9]+)*)?", once)
    assert normalise(once) == once
