"""Throughput of Matcher.classify on one core, single process.

Run: .venv/bin/python bench/classify.py [--repeat N]

Prints texts/s for: the first pass over tests/data/states_dev.tsv with a fresh Matcher (cold
per-word caches), the dev set repeated N times (warm caches: the steady state of a running
server), and GoEmotions dev comments (long Reddit texts, mostly unseen words) with a fresh
Matcher. Target: >= 5,000 texts/s on the repeated dev set. Also prints Matcher build time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from matching_eval import GOEMOTIONS, Matcher, goemotions_mapping, load_library, read_tsv  # noqa: E402


def rate(matcher, texts: list[str]) -> tuple[float, float]:
    """(texts per second, microseconds per text) for one pass over `texts`."""
    start = time.perf_counter()
    for text in texts:
        matcher.classify(text)
    elapsed = time.perf_counter() - start
    return len(texts) / elapsed, elapsed / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over the dev set (default 20)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, whatever else runs
    library, source = load_library()
    print(f"library: {source}")

    start = time.perf_counter()
    matcher = Matcher(library)
    print(f"Matcher build: {(time.perf_counter() - start) * 1000:.1f} ms")

    dev = [text for text, _ in read_tsv(ROOT / "tests" / "data" / "states_dev.tsv")]
    per_s, us = rate(matcher, dev)
    print(f"states_dev cold, 1 pass ({len(dev)} texts): {per_s:,.0f} texts/s ({us:.0f} us/text)")
    texts = dev * args.repeat
    per_s, us = rate(matcher, texts)
    verdict = "meets" if per_s >= 5000 else "MISSES"
    print(f"states_dev x{args.repeat} ({len(texts)} texts): {per_s:,.0f} texts/s ({us:.0f} us/text), "
          f"{verdict} the 5,000 texts/s target")

    reddit = [text for text, _ in goemotions_mapping().mapped_rows(str(GOEMOTIONS / "dev.tsv"))]
    fresh = Matcher(library)
    per_s, us = rate(fresh, reddit)
    mean_len = sum(map(len, reddit)) / len(reddit)
    print(f"GoEmotions dev cold ({len(reddit)} texts, mean {mean_len:.0f} chars): "
          f"{per_s:,.0f} texts/s ({us:.0f} us/text)")


if __name__ == "__main__":
    main()
