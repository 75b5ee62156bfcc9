#!/usr/bin/env python3
"""Fit the learned layer's models on the labelled texts in skills_library/training/.

    .venv/bin/pip install -r requirements-train.txt
    .venv/bin/python scripts/train_models.py            # cross-validate, fit, write the artifacts
    .venv/bin/python scripts/train_models.py --cv-only  # only the cross-validated figures

Texts come in paraphrase families (one situation, several wordings): cross-validation holds out
whole families (GroupKFold), never rows, so a figure is not inflated by near-duplicates of test
texts in training. The risk model's threshold is chosen on the held-out folds: the lowest
probability whose false-alarm rate on safe texts stays within --max-false-alarms.

Output: skills_library/models/risk.json.gz and states.json.gz (see bot/learned.py), each with
the SHA-256 of the files it was trained on. Training is deterministic: the same texts give the
same bytes. The state model's embeddings are cached in .cache/e5-embeddings.npz (not committed;
delete it to re-embed).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import risk, safety  # noqa: E402
from bot.learned import E5, NGRAMS, LinearModel, embed, features, training_digest, write_model  # noqa: E402
from bot.matching import NONE  # noqa: E402
from bot.vocabulary import STATES  # noqa: E402

TRAINING = ROOT / "skills_library" / "training"
MODELS = ROOT / "skills_library" / "models"
# Risk: the positive and hard-negative families, plus every state text as a further negative
# (ordinary distress is not risk). Sorted, so the digest does not depend on directory order.
STATE_FILES = tuple(sorted(TRAINING.glob("states*.tsv")))
RISK_FILES = tuple(sorted(TRAINING.glob("risk_*.tsv"))) + STATE_FILES
MIN_DF = 2
EMBEDDING_CACHE = ROOT / ".cache" / "e5-embeddings.npz"


def embed_cached(texts: list[str]) -> np.ndarray:
    """e5 embeddings of `texts` (one row each), reusing the cache for texts embedded before."""
    cached: dict[str, np.ndarray] = {}
    if EMBEDDING_CACHE.exists():
        with np.load(EMBEDDING_CACHE, allow_pickle=False) as data:
            cached = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))
    missing = sorted({t for t in texts if t not in cached})
    if missing:
        print(f"  embedding {len(missing)} new texts (cached: {len(cached)})")
        for start in range(0, len(missing), 256):
            chunk = missing[start:start + 256]
            cached.update(zip(chunk, np.array(embed(chunk)), strict=True))
        EMBEDDING_CACHE.parent.mkdir(exist_ok=True)
        keys = sorted(cached)
        np.savez(EMBEDDING_CACHE, texts=np.array(keys), vectors=np.array([cached[k] for k in keys]))
    return np.array([cached[t] for t in texts])


def read_rows(files: tuple[Path, ...]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for file in files:
        with file.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                if row.get("text", "").strip():
                    rows.append({k: (v or "").strip() for k, v in row.items()})
    return rows


def fit(texts: list[str], labels: list[str], c: float) -> LinearModel:
    """TF-IDF over `features` (df >= MIN_DF) + logistic regression, as a LinearModel."""
    counted = [features(t) for t in texts]
    df = Counter(f for counts in counted for f in counts)
    vocabulary = sorted(f for f, n in df.items() if n >= MIN_DF)
    index = {f: i for i, f in enumerate(vocabulary)}
    data, indices, indptr = [], [], [0]
    for counts in counted:
        for f, n in counts.items():
            i = index.get(f)
            if i is not None:
                indices.append(i)
                data.append(float(n))
        indptr.append(len(indices))
    matrix = csr_matrix((data, indices, indptr), shape=(len(texts), len(vocabulary)))
    tfidf = TfidfTransformer(sublinear_tf=True, smooth_idf=True, norm="l2")
    x = tfidf.fit_transform(matrix)
    classes = sorted(set(labels))
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    model.fit(x, labels)
    assert list(model.classes_) == classes
    coef = model.coef_  # (1, n) for two classes, (k, n) otherwise
    weights = np.ascontiguousarray(coef.T).ravel()
    from array import array

    meta = {"classes": classes, "c": c}
    return LinearModel(meta, vocabulary, array("d", tfidf.idf_), array("d", weights), list(model.intercept_))


def fit_dense(vectors: np.ndarray, labels: list[str], c: float, encoder: str) -> LinearModel:
    """Logistic regression over fixed embeddings, as a LinearModel (idf 1, one "feature" a dimension)."""
    from array import array

    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(vectors, labels)
    dims = vectors.shape[1]
    weights = np.ascontiguousarray(model.coef_.T).ravel()
    meta = {"classes": list(model.classes_), "c": c, "encoder": encoder}
    return LinearModel(meta, [f"d{i}" for i in range(dims)], array("d", [1.0] * dims), array("d", weights),
                       list(model.intercept_))


def cross_validate(texts: list[str], labels: list[str], groups: list[str], c: float, folds: int = 5):
    """Out-of-fold predictions (one per text), holding out whole families."""
    predictions = [None] * len(texts)
    for train, test in GroupKFold(n_splits=folds).split(texts, labels, groups):
        model = fit([texts[i] for i in train], [labels[i] for i in train], c)
        for i in test:
            predictions[i] = model.predict(texts[i])
    return predictions


def choose_threshold(scores: list[float], rules: list[bool], hard: list[bool], max_false_alarms: float) -> float:
    """The lowest threshold at which rules OR model flag at most `max_false_alarms` of the hard
    negatives (safe texts written to look like risk), on held-out families."""
    for step in range(10, 200):
        threshold = step / 200
        flagged = sum(1 for s, r, h in zip(scores, rules, hard, strict=True) if h and (r or s >= threshold))
        if flagged <= max_false_alarms * sum(hard):
            return threshold
    return 0.99


def train_risk(args: argparse.Namespace) -> None:
    rows = read_rows(RISK_FILES)
    texts = [safety.canonical(r["text"]) for r in rows]  # the risk model reads canonical text
    labels = ["risk" if r.get("tier") in ("crisis", "check") else "none" for r in rows]
    groups = [r["family"] for r in rows]
    positive = [label == "risk" for label in labels]
    hard = [not p and "tier" in r for r, p in zip(rows, positive, strict=True)]  # risk_negative*.tsv rows
    # What the rules (with the recovery guard) already flag, without any model.
    rules = [risk.assess(r["text"], model=False).tier != risk.NONE for r in rows]
    print(f"risk: {len(texts)} texts, {len(set(groups))} families, {sum(positive)} risk, {sum(hard)} hard negatives")
    print(f"  rules alone: recall {_share(rules, positive)}, false alarms on hard negatives {_share(rules, hard)}")
    best = None
    for c in args.c:
        oof = cross_validate(texts, labels, groups, c)
        scores = [p.of("risk") for p in oof]
        threshold = choose_threshold(scores, rules, hard, args.max_false_alarms)
        either = [r or s >= threshold for r, s in zip(rules, scores, strict=True)]
        recall, fa = _share(either, positive), _share(either, hard)
        print(f"  C={c:<5} held-out families, rules OR model at {threshold}: recall {recall:.3f}, "
              f"false alarms on hard negatives {fa:.3f}")
        if best is None or recall > best[0]:
            best = (recall, c, threshold, fa)
    assert best is not None
    recall, c, threshold, fa = best
    print(f"  chosen C={c}, threshold {threshold} (cross-validated recall {recall:.3f}, false alarms {fa:.3f})")
    if args.cv_only:
        return
    model = fit(texts, labels, c)
    meta = {**model.meta, "threshold": threshold, "training_files": [f.name for f in RISK_FILES],
            "training_sha256": training_digest(RISK_FILES), "texts": len(texts),
            "cv_recall": round(recall, 4), "cv_false_alarms": round(fa, 4)}
    _write(MODELS / "risk.json.gz", model, meta)


def _share(flags: list[bool], among: list[bool]) -> float:
    return round(sum(f for f, a in zip(flags, among, strict=True) if a) / max(sum(among), 1), 3)


def train_states(args: argparse.Namespace) -> None:
    rows = read_rows(STATE_FILES)
    texts = [r["text"] for r in rows]
    labels = [r["state"] for r in rows]
    unknown = sorted(set(labels) - {*STATES, NONE})
    if unknown:
        sys.exit(f"states: not distress states (bot/vocabulary.py) nor {NONE!r}: {', '.join(unknown)}")
    groups = [r["family"] for r in rows]
    print(f"states: {len(texts)} texts, {len(set(groups))} families, {len(set(labels))} states, "
          f"encoder {args.state_encoder}")
    vectors = embed_cached(texts) if args.state_encoder == E5 else None
    best = None
    for c in args.c:
        if vectors is not None:
            predicted = np.empty(len(texts), dtype=object)
            for train, test in GroupKFold(n_splits=5).split(vectors, labels, groups):
                fold = LogisticRegression(C=c, max_iter=5000).fit(vectors[train], [labels[i] for i in train])
                predicted[test] = fold.predict(vectors[test])
            guesses = list(predicted)
        else:
            guesses = [p.label for p in cross_validate(texts, labels, groups, c)]
        per_state = Counter(lab for lab, guess in zip(labels, guesses, strict=True) if guess == lab)
        totals = Counter(labels)
        macro = sum(per_state[s] / totals[s] for s in totals) / len(totals)
        print(f"  C={c:<5} held-out families: accuracy {sum(per_state.values()) / len(texts):.3f}, "
              f"macro recall {macro:.3f}")
        if best is None or macro > best[0]:
            best = (macro, c)
    assert best is not None
    macro, c = best
    print(f"  chosen C={c}")
    if args.cv_only:
        return
    model = fit_dense(vectors, labels, c, E5) if vectors is not None else fit(texts, labels, c)
    meta = {**model.meta, "threshold": args.state_threshold, "training_files": [f.name for f in STATE_FILES],
            "training_sha256": training_digest(STATE_FILES), "texts": len(texts), "cv_macro_recall": round(macro, 4)}
    _write(MODELS / "states.json.gz", model, meta)


def _write(path: Path, model: LinearModel, meta: dict[str, object]) -> None:
    rows = len(model._intercepts)
    write_model(path, meta, model._vocabulary, model._idf, model._weights, model._intercepts)
    print(f"  wrote {path.relative_to(ROOT)}: {len(model._vocabulary)} features x {rows} row(s), "
          f"{path.stat().st_size // 1024} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv-only", action="store_true", help="report cross-validated figures, write nothing")
    parser.add_argument("--c", type=float, nargs="+", default=[10.0], help="inverse regularisation (several: pick)")
    parser.add_argument("--max-false-alarms", type=float, default=0.09,
                        help="risk threshold: highest share of held-out hard negatives flagged by rules OR model")
    parser.add_argument("--state-threshold", type=float, default=0.35,
                        help="states: least probability for the model to name a state")
    parser.add_argument("--state-encoder", choices=(E5, NGRAMS), default=E5)
    parser.add_argument("--only", choices=("risk", "states"))
    args = parser.parse_args()
    if args.only in (None, "risk"):
        train_risk(args)
    if args.only in (None, "states"):
        train_states(args)


if __name__ == "__main__":
    main()
