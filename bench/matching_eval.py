"""Accuracy of bot.matching on the labelled SMS sets and on GoEmotions (mapped to our states).

Run: .venv/bin/python bench/matching_eval.py [--errors] [--goemotions-errors N] [--tuning] [--no-library]

Prints top-1 accuracy (overall and per state) and a confusion table for tests/data/states_dev.tsv,
tests/data/states_holdout.tsv and the blind sets bench/blind/states_blind.tsv, states_blind_2.tsv,
states_blind_3.tsv and states_blind_4.tsv (each written by someone who had seen neither the lexicon
nor the training texts; only their figures are printed, never their rows),
then macro recall over five classes on GoEmotions dev and test. Figures are given for the lexicon
alone and with the learned fallback (texts in which the lexicon finds nothing).
Tune on states_dev.tsv and GoEmotions dev.tsv only; the holdout, blind and GoEmotions test are reported.
The matcher is built with the real skills_library (its trigger phrases vote) when bot.skills loads
it, else with an empty library; --no-library forces the lexicon alone.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import sys
import types
from collections import Counter
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
# GoEmotions (Demszky et al. 2020, https://arxiv.org/abs/2005.00547; the data:
# https://github.com/google-research/google-research/tree/master/goemotions), kept outside this
# repository: its dev.tsv and test.tsv splits and a mapping.py whose `mapped_rows(path)` returns
# (text, state) for the rows with a single mapped label: fear, nervousness -> anxiety; anger,
# annoyance -> anger; sadness, grief, disappointment -> sadness; embarrassment, remorse -> shame;
# neutral and the positive emotions -> none; anything else is left out.
GOEMOTIONS = Path("/work/shared/data/goemotions")


def import_core(name: str) -> types.ModuleType:
    """`bot.<name>`, imported normally if possible, else without running bot/__init__.py."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module(f"bot.{name}")
    except Exception as exc:  # noqa: BLE001 - any failure elsewhere in the app package
        print(f"note: `import bot` failed ({exc.__class__.__name__}: {exc}); "
              f"loading bot.{name} without the app package", file=sys.stderr)
    for key in [k for k in sys.modules if k == "bot" or k.startswith("bot.")]:
        del sys.modules[key]
    package = types.ModuleType("bot")
    package.__path__ = [str(ROOT / "bot")]
    sys.modules["bot"] = package
    return importlib.import_module(f"bot.{name}")


matching = import_core("matching")
NONE, STATES, Matcher = matching.NONE, matching.STATES, matching.Matcher
LABELS = (*STATES, NONE)


class _EmptyLibrary:
    """No trigger phrases: measures the lexicon alone, independent of library content."""

    skills: dict = {}

    def for_state(self, state: str) -> list:
        return []


def load_library():
    """The real skills library when bot.skills can load it, else an empty one."""
    try:
        skills = import_core("skills")
    except Exception:  # noqa: BLE001 - any import failure means: measure the lexicon alone
        return _EmptyLibrary(), "empty (bot.skills not importable)"
    for name in ("load_library", "load"):
        loader = getattr(skills, name, None)
        if loader is not None:
            try:
                return loader(ROOT / "skills_library"), f"skills_library via bot.skills.{name}"
            except Exception as exc:  # noqa: BLE001 - report and fall back, this is a benchmark
                return _EmptyLibrary(), f"empty (bot.skills.{name} failed: {exc.__class__.__name__})"
    return _EmptyLibrary(), "empty (no loader found in bot.skills)"


def read_tsv(path: Path) -> list[tuple[str, str]]:
    """(text, state) rows of a labelled file with a header naming its `text` and `state` columns."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["state"]) for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


def goemotions_mapping() -> ModuleType:
    spec = importlib.util.spec_from_file_location("goemotions_mapping", GOEMOTIONS / "mapping.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report_sms(matcher: Matcher, name: str, rows: list[tuple[str, str]], show_errors: bool) -> float:
    confusion: Counter[tuple[str, str]] = Counter()
    errors = []
    for text, gold in rows:
        got = matcher.classify(text)
        confusion[gold, got.state] += 1
        if got.state != gold:
            errors.append((gold, got.state, text, got.evidence))
    correct = sum(n for (g, p), n in confusion.items() if g == p)
    acc = correct / len(rows)
    print(f"\n== {name}: top-1 accuracy {acc:.3f} ({correct}/{len(rows)})")
    print("per state: " + "  ".join(
        f"{s} {sum(n for (g, p), n in confusion.items() if g == s and p == s)}/"
        f"{sum(n for (g, _), n in confusion.items() if g == s)}"
        for s in LABELS
    ))
    short = {s: s[:5] for s in LABELS}
    print("confusion (rows gold, columns predicted):")
    print(" " * 13 + " ".join(f"{short[s]:>5}" for s in LABELS))
    for g in LABELS:
        print(f"{g:>12} " + " ".join(f"{confusion[g, p] or '.':>5}" for p in LABELS))
    if show_errors:
        for gold, got, text, evidence in errors:
            print(f"  [{gold} -> {got}] {text!r}  {list(evidence)}")
    return acc


def report_goemotions(matcher: Matcher, split: str, show_errors: int) -> float:
    mapping = goemotions_mapping()
    rows = mapping.mapped_rows(str(GOEMOTIONS / f"{split}.tsv"))
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    predicted: Counter[tuple[str, str]] = Counter()
    errors: list[tuple[str, str, str]] = []
    for text, gold in rows:
        got = matcher.classify(text).state
        totals[gold] += 1
        predicted[gold, got] += 1
        if got in mapping.ACCEPT[gold]:
            hits[gold] += 1
        elif len(errors) < show_errors:
            errors.append((gold, got, text))
    classes = sorted(totals)
    recalls = {c: hits[c] / totals[c] for c in classes}
    macro = sum(recalls.values()) / len(recalls)
    print(f"\n== GoEmotions {split}.tsv ({len(rows)} rows): macro recall {macro:.3f}")
    print("per class: " + "  ".join(f"{c} {recalls[c]:.3f} ({hits[c]}/{totals[c]})" for c in classes))
    for c in classes:
        top = Counter({p: n for (g, p), n in predicted.items() if g == c}).most_common(6)
        print(f"  {c:>8} predicted as: " + ", ".join(f"{p} {n}" for p, n in top))
    for gold, got, text in errors:
        print(f"  [{gold} -> {got}] {text[:140]!r}")
    return macro


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list misclassified SMS rows")
    parser.add_argument("--goemotions-errors", type=int, default=0, metavar="N",
                        help="list the first N misclassified GoEmotions dev rows")
    parser.add_argument("--tuning", action="store_true",
                        help="report the tuning sets only (states_dev, GoEmotions dev): no holdout, no test")
    parser.add_argument("--no-library", action="store_true", help="lexicon only, no trigger phrases")
    args = parser.parse_args()
    library, source = (_EmptyLibrary(), "empty (--no-library)") if args.no_library else load_library()
    print(f"library: {source}")
    data = ROOT / "tests" / "data"
    blinds = [ROOT / "bench" / "blind" / name
              for name in ("states_blind.tsv", "states_blind_2.tsv", "states_blind_3.tsv",
                           "states_blind_4.tsv")]
    for label, model in (("lexicon alone", False), ("lexicon + learned fallback", True)):
        matcher = Matcher(library, model=model)
        print(f"\n######## {label}")
        report_sms(matcher, "states_dev.tsv", read_tsv(data / "states_dev.tsv"), args.errors)
        if not args.tuning:
            report_sms(matcher, "states_holdout.tsv", read_tsv(data / "states_holdout.tsv"), args.errors)
            for blind in blinds:
                if blind.exists():
                    report_sms(matcher, f"blind {blind.name} (nobody tuned on it)", read_tsv(blind), False)
        report_goemotions(matcher, "dev", args.goemotions_errors)
        if not args.tuning:
            report_goemotions(matcher, "test", 0)


if __name__ == "__main__":
    main()
