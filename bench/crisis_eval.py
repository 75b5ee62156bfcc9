"""Evaluate `bot.safety.assess` on the labelled crisis sets and measure its speed.

Usage:
    python bench/crisis_eval.py                 # figures for the dev and held-out sets
    python bench/crisis_eval.py --errors        # also list misclassified rows (dev set only)
    python bench/crisis_eval.py --explain TEXT  # the canonical form and rules for one text

Figures: recall (crisis rows flagged), false-alarm rate (share of not_crisis rows flagged),
precision, per-category recall (by the gold category at the start of the note), category
agreement (the gold category is among the predicted ones) and throughput. The held-out set was
written before the rules were tuned and is never used to tune them; only its figures are printed,
so that reading them does not turn it into a second dev set.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import safety  # noqa: E402

DATA = ROOT / "tests" / "data"
SETS = {"dev": DATA / "crisis_cases.tsv", "holdout": DATA / "crisis_holdout.tsv"}


@dataclass(frozen=True)
class Case:
    text: str
    crisis: bool
    category: str | None  # gold category for crisis rows ("suicide", "third_party", ...)
    level: str | None  # gold level when the note gives one ("suicide/imminent: ...")
    note: str


def load_cases(path: Path) -> list[Case]:
    """Rows of a crisis TSV (text, label, note); the note starts with "category[/level]:"."""
    cases = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            crisis = row["label"] == "crisis"
            head = row["note"].split(":", 1)[0].strip() if crisis else ""
            category, _, level = head.partition("/")
            cases.append(Case(row["text"], crisis, category or None, level or None, row["note"]))
    return cases


def evaluate(name: str, cases: list[Case], show_errors: bool) -> None:
    tp = fp = fn = tn = 0
    cat_total: dict[str, int] = defaultdict(int)
    cat_hit: dict[str, int] = defaultdict(int)
    cat_agree: dict[str, int] = defaultdict(int)
    errors = []
    for case in cases:
        result = safety.assess(case.text)
        if case.crisis:
            cat = case.category or "?"
            cat_total[cat] += 1
            if result.is_crisis:
                tp += 1
                cat_hit[cat] += 1
                if cat in result.categories:
                    cat_agree[cat] += 1
            else:
                fn += 1
                errors.append(("MISS", case, result))
        elif result.is_crisis:
            fp += 1
            errors.append(("FALSE ALARM", case, result))
        else:
            tn += 1
    crisis_n, calm_n = tp + fn, fp + tn
    print(f"== {name}: {len(cases)} rows ({crisis_n} crisis, {calm_n} not_crisis)")
    print(f"recall           {tp}/{crisis_n} = {tp / max(crisis_n, 1):.3f}")
    print(f"false-alarm rate {fp}/{calm_n} = {fp / max(calm_n, 1):.3f}")
    print(f"precision        {tp}/{tp + fp} = {tp / max(tp + fp, 1):.3f}")
    for cat in sorted(cat_total):
        print(
            f"  {cat:15s} recall {cat_hit[cat]}/{cat_total[cat]} = {cat_hit[cat] / cat_total[cat]:.3f}"
            f"   category agreement {cat_agree[cat]}/{cat_total[cat]}"
        )
    if show_errors:
        for kind, case, result in errors:
            got = f"{result.level} {result.categories} {result.reasons}"
            print(f"  {kind}: {case.text!r} [{case.note}] -> {got}")


def throughput(cases: list[Case], seconds: float = 2.0) -> None:
    texts = [c.text for c in cases]
    for text in texts:  # warm the token cache, as a running server would be
        safety.assess(text)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for text in texts:
            safety.assess(text)
        done += len(texts)
    elapsed = time.perf_counter() - start
    cold_start = time.perf_counter()
    safety._canon_token.cache_clear()
    safety._canon_word.cache_clear()
    for text in texts:
        safety.assess(text)
    cold = time.perf_counter() - cold_start
    print(f"== throughput: {done / elapsed:,.0f} texts/s warm ({elapsed / done * 1e3:.3f} ms/text); "
          f"cold cache {cold / len(texts) * 1e3:.3f} ms/text")


def explain(text: str) -> None:
    result = safety.assess(text)
    print(f"canonical: {safety.canonical(text)!r}")
    print(f"crisis={result.is_crisis} level={result.level} categories={result.categories}")
    for reason in result.reasons:
        print(f"  {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--errors", action="store_true", help="list misclassified dev rows")
    parser.add_argument("--explain", metavar="TEXT", help="show how one text is read")
    args = parser.parse_args()
    if args.explain is not None:
        explain(args.explain)
        return
    everything = []
    for name, path in SETS.items():
        cases = load_cases(path)
        everything.extend(cases)
        evaluate(name, cases, show_errors=args.errors and name == "dev")
    throughput(everything)


if __name__ == "__main__":
    main()
