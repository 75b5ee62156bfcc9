"""The tables behind the bot's judgement: skills_library/rules/*.yaml, read and checked.

The vocabulary both readers use (SMS spellings, crisis rules, the matching lexicon) is data a
clinician can review; the engines stay in bot/safety.py and bot/matching.py. A `RulesFile`
reads one table file and checks it field by field, recording every problem as a
`bot.skills.Problem` instead of stopping at the first, so `flask skills check` can list them
all. Each engine loads its tables once, from the default library, at first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bot.skills import Problem

RULES_FOLDER = "rules"
SMS_SPELLINGS_FILE = "sms_spellings.yaml"
SMS_SECTIONS: tuple[str, ...] = ("both", "crisis_check", "matcher")

_PLACEHOLDER = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
_TABLE_WORD = re.compile(r"[a-z0-9]+")
_TABLE_WORDS = re.compile(r"[a-z0-9]+(?: [a-z0-9]+)*")

Fragment = str | list[str]
T = TypeVar("T")


def default_library_path() -> Path:
    from bot.skills import DEFAULT_LIBRARY_PATH  # late: bot.skills imports this module

    return DEFAULT_LIBRARY_PATH


Source = tuple[str | None, str | None]  # (the file's text, or None and why it could not be read)


def required(loaded: tuple[T | None, list[Problem]]) -> T:
    """Loaded tables, or `bot.skills.LibraryError` listing every problem in them: an engine
    refuses to run on tables with errors."""
    tables, problems = loaded
    if tables is None:
        from bot.skills import LibraryError  # late: bot.skills imports this module

        raise LibraryError(problems)
    return tables


def table_sources(root: Path | None, name: str) -> tuple[Source, Source]:
    """The texts of rules/sms_spellings.yaml and rules/`name` under `root` (default: the shipped
    library): what an engine's cached loader takes, so an edited file is read again."""
    root = Path(root) if root is not None else default_library_path()
    return read_rules_file(root, SMS_SPELLINGS_FILE), read_rules_file(root, name)


def read_rules_file(root: Path, name: str) -> Source:
    """The text of rules/`name` under the library `root`. Loaders cache on this text, not on the
    path, so an edited file is read again and identical copies of the library share one load."""
    try:
        return (Path(root) / RULES_FOLDER / name).read_text(encoding="utf-8"), None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read: {exc}"


class RulesFile:
    """One table file under `rules/`, read once; typed getters check each field.

    A getter records a problem when its field is missing or malformed and returns an empty value
    of the right type, so the caller can go on checking the rest of the file. `problems` holds
    `bot.skills.Problem` objects with the file relative to the library ("rules/lexicon.yaml") and
    the field ("rules[suicide.kill_self].pattern").
    """

    def __init__(self, name: str, source: Source) -> None:
        from bot.skills import Problem  # late: bot.skills imports this module

        self._problem = Problem
        self.file = f"{RULES_FOLDER}/{name}"
        self.problems: list[Problem] = []
        self.data: dict[str, Any] = {}
        text, read_error = source
        if text is None:
            self.error("", read_error or "cannot read")
            return
        data = _load_yaml(text, self)
        if data is None and not self.problems:
            self.error("", "file is empty")
        elif data is not None and not isinstance(data, dict):
            self.error("", "must be a mapping of field: value")
        elif isinstance(data, dict):
            self.data = data

    @property
    def ok(self) -> bool:
        return not self.problems

    def error(self, field: str, message: str) -> None:
        self.problems.append(self._problem(self.file, field, message))

    # ---- plain values --------------------------------------------------------------------
    def get(self, field: str, data: Mapping[str, Any] | None = None, *, path: str | None = None) -> Any:
        """`data[field]` (the file's top level by default); None, with a problem, when missing."""
        source = self.data if data is None else data
        where = path or field
        if field not in source:
            self.error(where, "missing")
            return None
        return source[field]

    def text(self, field: str, data: Mapping[str, Any] | None = None, *, path: str | None = None) -> str:
        value = self.get(field, data, path=path)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.error(path or field, f"must be non-empty text, not {_kind(value)}")
            return ""
        return value

    def flag(self, field: str, data: Mapping[str, Any], default: bool, *, path: str) -> bool:
        if field not in data:
            return default
        value = data[field]
        if not isinstance(value, bool):
            self.error(path, f"must be true or false, not {_kind(value)}")
            return default
        return value

    def number(self, field: str, data: Mapping[str, Any] | None = None, *, path: str | None = None,
               integer: bool = False) -> float:
        value = self.get(field, data, path=path)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            self.error(path or field, f"must be {'a whole number' if integer else 'a number'}, not {_kind(value)}")
            return 0
        if value < 0:
            self.error(path or field, "must not be negative")
            return 0
        return value

    def words(self, field: str, data: Mapping[str, Any] | None = None, *, path: str | None = None,
              single: bool = False) -> list[str]:
        """A list of lower-case words or phrases (a-z, 0-9, single spaces); single=True: one word each."""
        where = path or field
        items = self.strings(field, data, path=where)
        shape = _TABLE_WORD if single else _TABLE_WORDS
        good = []
        for i, item in enumerate(items):
            if shape.fullmatch(item):
                good.append(item)
            else:
                what = "one lower-case word" if single else "lower-case words (a-z, 0-9) separated by single spaces"
                self.error(f"{where}[{i}]", f"{item!r} must be {what}")
        return good

    def strings(self, field: str, data: Mapping[str, Any] | None = None, *, path: str | None = None) -> list[str]:
        """A non-empty list of non-empty strings."""
        where = path or field
        value = self.get(field, data, path=where)
        if value is None:
            return []
        if not isinstance(value, list) or not value:
            self.error(where, f"must be a non-empty list, not {_kind(value)}")
            return []
        good = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item:
                good.append(item)
            else:
                self.error(f"{where}[{i}]", f"must be non-empty text, not {_kind(item)}")
        return good

    def mapping(self, field: str, data: Mapping[str, Any] | None = None, *, path: str | None = None) -> dict[Any, Any]:
        where = path or field
        value = self.get(field, data, path=where)
        if value is None:
            return {}
        if not isinstance(value, dict) or not value:
            self.error(where, f"must be a non-empty mapping, not {_kind(value)}")
            return {}
        return value

    def records(self, field: str) -> list[tuple[str, dict[str, Any]]]:
        """A list of mappings, each with its index path ("rules[3]")."""
        value = self.get(field)
        if value is None:
            return []
        if not isinstance(value, list) or not value:
            self.error(field, f"must be a non-empty list, not {_kind(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                out.append((f"{field}[{i}]", item))
            else:
                self.error(f"{field}[{i}]", f"must be a mapping of field: value, not {_kind(item)}")
        return out

    def spellings(self, field: str, data: Mapping[str, Any] | None = None, *, path: str | None = None,
                  required: bool = True) -> dict[str, str]:
        """A mapping of one lower-case word to its plain form (lower-case words)."""
        where = path or field
        source = self.data if data is None else data
        if not required and field not in source:
            return {}
        out: dict[str, str] = {}
        for key, value in self.mapping(field, data, path=where).items():
            if not isinstance(key, str) or not _TABLE_WORD.fullmatch(key):
                self.error(f"{where}.{key}", f"{key!r} must be one lower-case word (a-z, 0-9)")
            elif not isinstance(value, str) or not _TABLE_WORDS.fullmatch(value):
                self.error(f"{where}.{key}", f"{value!r} must be lower-case words separated by single spaces")
            elif value == key:
                self.error(f"{where}.{key}", "maps to itself")
            else:
                out[key] = value
        return out

    def unknown_fields(self, data: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                self.error(f"{path}.{key}" if path else str(key), f"unknown field (expected one of: {expected})")

    # ---- placeholders and patterns ------------------------------------------------------
    def fragments(
        self, field: str, data: Mapping[str, Any] | None = None, *, path: str | None = None
    ) -> dict[str, Fragment]:
        """Named fragments: NAME -> text, or NAME -> list of alternatives."""
        where = path or field
        out: dict[str, Fragment] = {}
        for name, value in self.mapping(field, data, path=where).items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
                self.error(f"{where}.{name}", "fragment names are upper case (A-Z, 0-9, _), like INTENT")
            elif isinstance(value, str) and value:
                out[name] = value
            elif isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
                out[name] = list(value)
            else:
                self.error(f"{where}.{name}", f"must be text or a non-empty list of texts, not {_kind(value)}")
        return out

    def expand(self, text: str, fragments: Mapping[str, Fragment], where: str,
               group: tuple[str, str] = ("(?:", ")")) -> str:
        """`text` with every {NAME} replaced by its fragment (a list goes in as one group)."""
        unknown: list[str] = []
        result = expand_placeholders(text, fragments, group, unknown)
        # Unknown names inside a fragment are reported at the fragment; here only this text's own
        # names, and fragments that refer back to themselves.
        direct = [name for name in _PLACEHOLDER.findall(text) if name not in fragments]
        known = ", ".join(sorted(fragments)) or "none"
        for name in dict.fromkeys(direct):
            self.error(where, f"unknown placeholder {{{name}}} (known: {known})")
        for name in dict.fromkeys(n for n in unknown if n.endswith("(refers to itself)")):
            self.error(where, f"placeholder {{{name}}}")
        return result

    def pattern_text(self, value: Any, where: str) -> str | None:
        """A pattern written as text, or as a list of alternatives (joined with "|")."""
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return "|".join(value)
        self.error(where, f"must be a regular expression or a non-empty list of them, not {_kind(value)}")
        return None

    def regex(self, field: str, fragments: Mapping[str, Fragment], data: Mapping[str, Any] | None = None, *,
              path: str | None = None, prefix: str = "", suffix: str = "") -> re.Pattern[str] | None:
        """The compiled pattern of `field` (placeholders expanded); None, with a problem, if it is bad."""
        where = path or field
        value = self.get(field, data, path=where)
        if value is None:
            return None
        text = self.pattern_text(value, where)
        if text is None:
            return None
        return self.compile(prefix + self.expand(text, fragments, where) + suffix, where)

    def compile(self, pattern: str, where: str) -> re.Pattern[str] | None:
        try:
            return re.compile(pattern)
        except re.error as exc:
            self.error(where, f"regular expression does not compile: {exc}")
            return None


def expand_placeholders(text: str, fragments: Mapping[str, Fragment], group: tuple[str, str] = ("(?:", ")"),
                        unknown: list[str] | None = None, _seen: tuple[str, ...] = ()) -> str:
    """Replace {NAME} by fragments[NAME], recursively; a list fragment becomes group[0] a|b group[1].

    Unknown names (and names that refer back to themselves) are left in place and added to
    `unknown`.
    """

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = fragments.get(name)
        if value is None or name in _seen:
            if unknown is not None:
                unknown.append(name if value is None else f"{name} (refers to itself)")
            return match.group(0)
        inner = _seen + (name,)
        if isinstance(value, str):
            return expand_placeholders(value, fragments, group, unknown, inner)
        return group[0] + "|".join(expand_placeholders(v, fragments, group, unknown, inner) for v in value) + group[1]

    return _PLACEHOLDER.sub(one, text)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


@cache
def _yaml_loader() -> Any:
    """A safe YAML loader (libyaml's when installed) that refuses duplicate keys, as the library's does."""
    import yaml

    from bot.skills import _construct_unique_mapping  # late: bot.skills imports this module

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
    return Loader


def _load_yaml(text: str, report: RulesFile) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # a safe loader: no object tags
    except yaml.YAMLError as exc:
        report.error("", f"not valid YAML: {' '.join(str(exc).split())}")
        return None


@dataclass(frozen=True)
class SmsSpellings:
    """sms_spellings.yaml: spelling -> plain form, by who reads it."""

    both: Mapping[str, str]
    crisis_check: Mapping[str, str]
    matcher: Mapping[str, str]

    def for_crisis_check(self, overrides: Mapping[str, str] = {}) -> dict[str, str]:  # noqa: B006 - read only
        return {**self.both, **self.crisis_check, **overrides}

    def for_matcher(self, overrides: Mapping[str, str] = {}) -> dict[str, str]:  # noqa: B006 - read only
        return {**self.both, **self.matcher, **overrides}


def load_sms_spellings(root: Path) -> tuple[SmsSpellings, list[Problem]]:
    """The shared SMS spellings under `root`/rules and every problem in the file."""
    return sms_spellings_from(read_rules_file(root, SMS_SPELLINGS_FILE))


@lru_cache(maxsize=8)
def sms_spellings_from(source: Source) -> tuple[SmsSpellings, list[Problem]]:
    """The SMS spellings in `source` (see `read_rules_file`) and every problem in them."""
    f = RulesFile(SMS_SPELLINGS_FILE, source)
    sections: dict[str, dict[str, str]] = {}
    if f.ok:
        f.unknown_fields(f.data, SMS_SECTIONS, "")
        seen: dict[str, str] = {}
        for section in SMS_SECTIONS:
            sections[section] = f.spellings(section)
            for key in sections[section]:
                if key in seen:
                    f.error(f"{section}.{key}", f"also listed under {seen[key]}: list a spelling once")
                seen.setdefault(key, section)
    spellings = SmsSpellings(*(sections.get(s, {}) for s in SMS_SECTIONS))
    return spellings, list(f.problems)


def check_rules_tables(root: Path) -> list[Problem]:
    """Every problem in the rules tables under `root`/rules, file by file (used by `skills check`)."""
    from bot import matching, safety  # late: both engines import this module

    problems = [*safety.load_tables(root)[1], *matching.load_tables(root)[1]]
    return list(dict.fromkeys(problems))  # sms_spellings.yaml is read by both
