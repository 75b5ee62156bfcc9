"""Text normalisation shared by crisis detection and matching.

People text in lower case, without apostrophes, with curly quotes from their phone's keyboard,
with elongations ("sooo") and sometimes with leetspeak. Both the safety check and the matcher
compare against plain ASCII lower-case words, so they normalise through the same functions.
"""

from __future__ import annotations

import re
import unicodedata

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

# Digits and symbols used as letters. Applied only inside tokens that also contain letters,
# so "5 kms" and "10/10" keep their numbers.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})

_ELONGATION = re.compile(r"([a-z])\1{2,}")
_SPACES = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z0-9]+")
_LEET_TOKEN = re.compile(r"[a-z0-9@$!]*[a-z][a-z0-9@$!]*|[a-z0-9@$!]*[0-9@$!][a-z][a-z0-9@$!]*")


def fold(text: str) -> str:
    """Lower-case ASCII-ish text: typographic quotes and dashes made plain, accents removed."""
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.lower()


def squeeze_elongations(text: str) -> str:
    """Collapse three or more repeated letters to two ("sooo" -> "soo", "dieee" -> "diee")."""
    return _ELONGATION.sub(r"\1\1", text)


def unleet(text: str) -> str:
    """Undo leetspeak inside words that mix letters and digits ("k1ll mys3lf" -> "kill myself")."""

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if any(ch.isalpha() for ch in word) and any(not ch.isalpha() for ch in word):
            return word.translate(_LEET)
        return word

    return _LEET_TOKEN.sub(fix, text)


def normalise(text: str) -> str:
    """The canonical form both matchers work on.

    Lower case, plain quotes, no apostrophes ("don't" -> "dont"), elongations squeezed,
    leetspeak undone inside words, punctuation turned into single spaces.
    """
    text = fold(text)
    text = text.replace("'", "")
    text = unleet(text)
    text = squeeze_elongations(text)
    text = re.sub(r"[^a-z0-9\s]", " ", text)
    return _SPACES.sub(" ", text).strip()


def tokens(text: str) -> list[str]:
    """Words of the normalised text."""
    return _TOKEN.findall(normalise(text))
