"""Text normalisation shared by crisis detection and matching.

People text in lower case, without apostrophes, with curly quotes from their phone's keyboard,
with elongations ("sooo") and sometimes with leetspeak or spelled-out letters ("s.u.i.c.i.d.e").
Both the safety check and the matcher compare against plain ASCII lower-case words, so they
normalise through the same functions. Their vocabulary (SMS spellings, crisis rules, the matching
lexicon) is data, read by `bot.tables`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Typographic characters phones insert, mapped to their plain ASCII forms.
_TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "`": "'",
        "\u00b4": "'",
        "\u02bc": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u200b": "",
        "\u200c": "",
        "\u200d": "",
        "\ufeff": "",
    }
)

# Digits and symbols used as letters. Applied only where the token is clearly a word written in
# leetspeak (see `unleet`), so "5 kms", "800mg", "x10", "10/10" and "help!" keep their meaning.
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)

_ELONGATION = re.compile(r"([a-z])\1{2,}")
_SPACES = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z0-9]+")
# Runs of word characters that contain at least one digit or symbol (plain words never need
# the callback, which keeps `normalise` fast).
_LEET_RUN = re.compile(r"[a-z0-9@$!]*[0-9@$!][a-z0-9@$!]*")
# A leet character with letters on both sides ("k1ll", "su1c1de", "k!ll", "h3ll0").
_LEET_INSIDE = re.compile(r"[a-z][0-9@$!]+[a-z]")
# A word opened by a symbol that stands for a letter ("$uicidal", "@ss").
_LEET_LEAD = re.compile(r"[@$]+[a-z]{2,}")
# Letters closed by one or two leet digits ("di3", "d13", "t0"); "x10" (a count), "b12" and
# "covid19" (a digit that is no letter) stay.
_LEET_TAIL = re.compile(r"(?!x\d)[a-z]+[013457]{1,2}")
# Four or more single letters separated by spaces after punctuation was removed
# ("s u i c i d e", "k i l l"). Shorter runs are left alone: "i m a" is more likely words.
_SPELLED = re.compile(r"\b[a-z](?: [a-z]\b){3,}")
_NOT_WORD = re.compile(r"[^a-z0-9\s]")


def fold(text: str) -> str:
    """Lower-case ASCII-ish text: typographic quotes and dashes made plain, accents removed.

    Characters without an ASCII form (emoji) are kept, so callers can still look for them.
    """
    if text.isascii():  # the common case: nothing to decompose
        return text.translate(_TYPOGRAPHY).lower()
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.lower()


def squeeze_elongations(text: str) -> str:
    """Collapse three or more repeated letters to two ("sooo" -> "soo", "dieee" -> "diee")."""
    return _ELONGATION.sub(r"\1\1", text)


def unleet(text: str) -> str:
    """Undo leetspeak inside words ("k1ll mys3lf" -> "kill myself", "$uicidal" -> "suicidal").

    Numbers with units or counts ("800mg", "5kms", "x10", "3am") and trailing punctuation
    ("help!") are left as they are: only tokens that read as a word spelled with symbols change.
    """

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        # Trailing symbols are punctuation ("help!", "a0$"): leave them out of the decision, so
        # that normalising twice gives the same text.
        core = word.rstrip("!@$")
        tail = word[len(core) :]
        if not any(ch.isalpha() for ch in core):
            return word
        if _LEET_INSIDE.search(core) or _LEET_LEAD.fullmatch(core) or _LEET_TAIL.fullmatch(core):
            return core.translate(_LEET) + tail
        return word

    return _LEET_RUN.sub(fix, text)


def join_spelled_out(text: str) -> str:
    """Join runs of four or more single letters ("s u i c i d e" -> "suicide").

    Expects text whose punctuation has already become spaces, as inside `normalise`.
    """
    return _SPELLED.sub(lambda m: m.group(0).replace(" ", ""), text)


@lru_cache(maxsize=2048)  # one text is normalised by safety, compliance, commands and matching
def normalise(text: str) -> str:
    """The canonical form both matchers work on.

    Lower case, plain quotes, no apostrophes ("don't" -> "dont"), elongations squeezed,
    leetspeak undone inside words, punctuation turned into single spaces, spelled-out letters
    joined. The result contains only a-z, 0-9 and single spaces, without leading or trailing
    space.
    """
    text = fold(text)
    text = text.replace("'", "")
    text = unleet(text)
    text = _NOT_WORD.sub(" ", text)
    # Once symbols are gone a token may newly read as leetspeak ("$a0" -> "a0"): undo it now,
    # so normalising twice gives the same text.
    text = unleet(_SPACES.sub(" ", text).strip())
    # Squeeze after joining, so "s o o o" and "sooo" end the same and a second pass is a no-op.
    return squeeze_elongations(join_spelled_out(text))


def tokens(text: str) -> list[str]:
    """Words of the normalised text."""
    return _TOKEN.findall(normalise(text))
