"""Evaluate risk tiers (`bot.risk`: rules, recovery guard and learned layer) on the labelled sets.

Usage:
    python bench/crisis_eval.py                 # figures for the dev, held-out and blind sets
    python bench/crisis_eval.py --errors        # also list misclassified rows (dev set only)
    python bench/crisis_eval.py --explain TEXT  # the canonical form, rules, model and tier for one text

Figures per set: caught (crisis rows given `crisis` or `check`), crisis-tier recall, `crisis` on
safe rows, `check` or `crisis` on safe rows, per category, by layer (rules alone, then rules +
recovery guard + learned layer), and throughput. Texts are judged on their own, without
conversation context.

The sets:
- dev (tests/data/crisis_cases.tsv): written with the rules and tuned on;
- holdout (tests/data/crisis_holdout.tsv): written before the rules, never tuned on;
- blind (bench/blind/crisis_blind.tsv, crisis_blind_2.tsv ... crisis_blind_4.tsv): each written by
  someone who had seen neither the rules, the tuned sets nor the training texts; the first before
  the learned layer was built, the second, third and fourth each before a later round of rule
  changes and training. The first has since been read row by row (it is a tuning set now, kept for
  comparison). Only aggregate figures are printed, never rows, so that reading them cannot turn a
  blind set into a tuning set.
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

from bot import risk, safety  # noqa: E402
from bot.matching import Matcher  # noqa: E402
from bot.skills import load_library  # noqa: E402

MATCHER = Matcher(load_library())

DATA = ROOT / "tests" / "data"
SETS = {"dev": DATA / "crisis_cases.tsv", "holdout": DATA / "crisis_holdout.tsv"}
# Blind sets, each reported apart, each written later than the one before by someone who had seen
# nothing of the project, before the rules and models it measures were changed again.
BLIND = tuple(ROOT / "bench" / "blind" / name
              for name in ("crisis_blind.tsv", "crisis_blind_2.tsv", "crisis_blind_3.tsv",
                           "crisis_blind_4.tsv"))


@dataclass(frozen=True)
class Case:
    text: str
    crisis: bool
    category: str  # gold category ("suicide", "plan_means", "recovery_talk", ...)
    note: str


def load_cases(path: Path) -> list[Case]:
    """Rows of a labelled TSV: (text, label, note) with the category at the start of the note,
    or the blind set's (label, category, text)."""
    cases = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            crisis = row["label"] == "crisis"
            if "category" in row:
                category = row["category"]
            else:
                head = row["note"].split(":", 1)[0].strip()
                category = head.partition("/")[0] if crisis else (head if head and " " not in head else "safe")
            cases.append(Case(row["text"], crisis, category or "?", row.get("note", "")))
    return cases


def _rate(hit: int, total: int) -> str:
    return f"{hit}/{total} = {hit / max(total, 1):.3f}"


def evaluate(name: str, cases: list[Case], show_errors: bool) -> None:
    states = [MATCHER.classify(c.text).lexicon_state for c in cases]  # as the webhook reads a text
    tiers = {"rules": [risk.assess(c.text, model=False).tier for c in cases],
             "rules+model": [risk.assess(c.text, state=s).tier for c, s in zip(cases, states, strict=True)]}
    crisis_n = sum(c.crisis for c in cases)
    safe_n = len(cases) - crisis_n
    print(f"== {name}: {len(cases)} rows ({crisis_n} crisis, {safe_n} safe)")
    for layer, got in tiers.items():
        caught = sum(c.crisis and t != risk.NONE for c, t in zip(cases, got, strict=True))
        crisis_tier = sum(c.crisis and t == risk.CRISIS for c, t in zip(cases, got, strict=True))
        alarm = sum(not c.crisis and t == risk.CRISIS for c, t in zip(cases, got, strict=True))
        asked = sum(not c.crisis and t != risk.NONE for c, t in zip(cases, got, strict=True))
        print(f"  {layer:12s} caught {_rate(caught, crisis_n)}  (as crisis {_rate(crisis_tier, crisis_n)})  "
              f"safe->crisis {_rate(alarm, safe_n)}  safe->check|crisis {_rate(asked, safe_n)}")
    got = tiers["rules+model"]
    by_category: dict[tuple[bool, str], list[str]] = defaultdict(list)
    for case, tier in zip(cases, got, strict=True):
        by_category[case.crisis, case.category].append(tier)
    print("  per category (rules+model): crisis rows caught / safe rows flagged")
    for (crisis, category), found in sorted(by_category.items(), key=lambda kv: (not kv[0][0], kv[0][1])):
        flagged = sum(t != risk.NONE for t in found)
        as_crisis = sum(t == risk.CRISIS for t in found)
        print(f"    {'crisis' if crisis else 'safe':6s} {category:20s} {_rate(flagged, len(found))}"
              f"   (crisis tier {as_crisis})")
    if show_errors:
        for case, tier in zip(cases, got, strict=True):
            if case.crisis == (tier == risk.NONE):
                kind = "MISS" if case.crisis else f"FALSE ALARM ({tier})"
                print(f"    {kind}: {case.text!r} [{case.note}] -> {risk.assess(case.text).reasons}")


def throughput(cases: list[Case], seconds: float = 2.0) -> None:
    texts = [c.text for c in cases]
    for text in texts:  # warm the caches, as a running server would be
        risk.assess(text)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for text in texts:
            risk.assess(text)
        done += len(texts)
    elapsed = time.perf_counter() - start
    rules_done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds / 2:
        for text in texts:
            safety.assess(text)
        rules_done += len(texts)
    rules_elapsed = time.perf_counter() - start
    print(f"== throughput: {done / elapsed:,.0f} texts/s with the learned layer ({elapsed / done * 1e3:.3f} ms/text); "
          f"rules alone {rules_done / rules_elapsed:,.0f} texts/s")


def explain(text: str) -> None:
    result = risk.assess(text, explain=True)
    print(f"canonical: {safety.canonical(text)!r}")
    print(f"tier={result.tier} rules: level={result.rules.level} categories={result.rules.categories}")
    for reason in result.reasons:
        print(f"  {reason}")
    if result.model_probability is not None:
        print(f"  model probability {result.model_probability:.3f}; strongest cues {list(result.model_cues)}")
    print(f"  vague (crisis only within the context window): {result.vague}")


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
    for blind in BLIND:
        if blind.exists():
            evaluate(f"blind {blind.name} (nobody tuned on it)", load_cases(blind), show_errors=False)
    throughput(everything)


if __name__ == "__main__":
    main()
