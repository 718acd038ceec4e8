"""The trained part of triage: a linear model over a report's letters and words.

Features are the character 2-5-grams of each folded word (robust to typos, endings and
words split or joined by speech-to-text), the words as triage reads them (Javanese and
shorthand mapped) and their pairs, weighted by TF-IDF and L2-normalised. Two heads share
them: the category and the priority, each a multinomial logistic regression. The weights are
trained by `make model` (`eval/train.py`) from the project's corpus and the shared one and
checked in as a tab-separated file, one feature a line, so a review sees which letters and
words pull towards which category; nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cache, cached_property
from itertools import pairwise
from operator import itemgetter
from pathlib import Path

import numpy as np

from schemas.vocabulary import Category, Priority
from services.triage.reading import Reading

BUILT_IN = Path(__file__).resolve().parent / "model"
META = "model.json"
WEIGHTS = "features.tsv"
WORDS = "words.txt"
FEATURES_VERSION = 1
CHAR_GRAMS = (2, 5)
HEADS = ("category", "priority")
WORD_MEMO = 50_000  # words whose letter n-grams are remembered
TOP_FEATURES = 24  # features looked at to name the words that pulled most
_NO_PAIRS: dict[str, int] = {}


class ModelError(ValueError):
    """A model folder that is missing or does not match this code's features."""


def letter_grams(word: str) -> list[str]:
    """The `c:` features of one folded word: its letter n-grams, padded with spaces."""
    low, high = CHAR_GRAMS
    padded = f" {word} "
    return [
        "c:" + padded[i : i + n]
        for n in range(low, min(high, len(padded)) + 1)
        for i in range(len(padded) - n + 1)
    ]


def features(reading: Reading) -> Counter[str]:
    """Counts of a report's features: `c:` letter n-grams, `w:` words, `b:` word pairs."""
    out: Counter[str] = Counter()
    for word in reading.folded.split():
        out.update(letter_grams(word))
    tokens = reading.tokens
    for token in tokens:
        out["w:" + token] += 1
    for first, second in pairwise(tokens):
        out[f"b:{first}_{second}"] += 1
    return out


@dataclass(frozen=True)
class Head:
    """One softmax head: its classes, weights (features x classes) and intercepts."""

    classes: tuple[str, ...]
    weights: np.ndarray
    intercepts: np.ndarray


@dataclass(frozen=True)
class Prediction:
    """The model's probabilities for one report, and the words that pulled most."""

    category: dict[Category, float]
    priority: dict[Priority, float]
    _model: LinearModel
    _rows: np.ndarray
    _values: np.ndarray
    _weights: np.ndarray  # both heads' weights of its features, gathered once by `predict`

    def top(self, head: str, label: str, *, limit: int = 3) -> list[str]:
        """The words whose features pulled hardest towards `label` (for the explanation)."""
        column = self._model.column[head, label]
        pull = self._values * self._weights[:, column]
        # The strongest few features decide the words named; the rest are not looked at.
        count = min(TOP_FEATURES, len(pull))
        if count == 0:
            return []
        strongest = (-pull).argpartition(count - 1)[:count]
        words = self._model.words
        by_word: dict[str, float] = {}
        for row, amount in zip(
            self._rows.take(strongest).tolist(), pull.take(strongest).tolist(), strict=True
        ):
            word = words[row]
            by_word[word] = by_word.get(word, 0.0) + amount
        # Stable, as a sort by the negated amount: words of equal pull keep their order.
        ranked = sorted(by_word.items(), key=itemgetter(1), reverse=True)
        return [w for w, amount in ranked[:limit] if amount > 0]


# The reduction `ndarray.sum` stands for, without its Python wrapper (a report's softmax is
# over a few numbers, where the wrapper costs more than the sum).
_sum = np.add.reduce


def _softmaxes(scores: np.ndarray, split: int) -> tuple[list[float], list[float]]:
    """The softmax of `scores[:split]` and that of the rest, the same numbers as numpy's
    `exp(s - max) / sum` of each part alone, in fewer calls: a maximum is exact in any
    order, an exponential is elementwise and a quotient of two floats is Python's too; each
    part's sum stays numpy's (pairwise) sum of that part."""
    sizes = (split, len(scores) - split)
    exp = np.exp(scores - np.maximum.reduceat(scores, (0, split)).repeat(sizes))
    first, second = float(_sum(exp[:split])), float(_sum(exp[split:]))
    each = exp.tolist()
    return [e / first for e in each[:split]], [e / second for e in each[split:]]


def _counted(found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of `found` in the order they first appear, and how many times each
    appears (as floats): what a `Counter` of them lists, without a step per value."""
    size = len(found)
    if size == 0:
        return found, np.zeros(0)
    order = found.argsort(kind="stable")
    ordered = found.take(order)
    new = np.empty(size, dtype=bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = new.nonzero()[0]
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = size
    # A stable sort keeps equal values in their order: a run's start is its first appearance.
    by_first = order.take(starts).argsort()
    return ordered.take(starts).take(by_first), (ends - starts).take(by_first).astype(np.float64)


def _word_of(feature: str) -> str:
    kind, _, body = feature.partition(":")
    if kind == "b":
        return body.replace("_", " ")
    return body.strip()


@dataclass(frozen=True)
class LinearModel:
    """Vocabulary, IDF and the two heads, as trained and checked in."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    heads: dict[str, Head]
    meta: dict[str, object]
    # Words the training reports use often: spelled right, never "corrected" to a keyword.
    known_words: tuple[str, ...] = ()
    # A word's known letter n-grams, looked up once (reports repeat the same words).
    _grams_of: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def words(self) -> list[str]:
        """The word (or pair of words) each feature row belongs to, for explanations."""
        out = [""] * len(self.vocabulary)
        for name, row in self.vocabulary.items():
            out[row] = _word_of(name)
        return out

    def vector(self, reading: Reading) -> tuple[np.ndarray, np.ndarray]:
        """The report's known features: their rows and TF-IDF values (L2-normalised), as
        `features` counts them."""
        grams_of = self._grams_of
        vocabulary = self.vocabulary
        parts: list[np.ndarray] = []
        for word in reading.folded.split():
            rows = grams_of.get(word)
            if rows is None:
                if len(grams_of) >= WORD_MEMO:
                    grams_of.clear()
                rows = grams_of[word] = np.array(
                    [vocabulary[g] for g in letter_grams(word) if g in vocabulary], dtype=np.int64
                )
            parts.append(rows)
        tokens = reading.tokens
        word_rows, pair_rows = self._token_rows
        found: list[int] = []
        for token in tokens:
            row = word_rows.get(token)
            if row is not None:
                found.append(row)
        for first, second in pairwise(tokens):
            row = pair_rows.get(first, _NO_PAIRS).get(second)
            if row is not None:
                found.append(row)
        parts.append(np.array(found, dtype=np.int64))
        index, tf = _counted(np.concatenate(parts))
        values = (1.0 + np.log(tf)) * self.idf.take(index)
        norm = math.sqrt(values @ values) if len(values) else 0.0
        return index, (values / norm if norm else values)

    @cached_property
    def _token_rows(self) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """The rows of the `w:` features by word, and of the `b:` features by first and
        second word (without building each name as `features` writes it). A pair's name is
        split at each `_` it holds, so every pair of words that would spell it finds it."""
        words: dict[str, int] = {}
        pairs: dict[str, dict[str, int]] = {}
        for name, row in self.vocabulary.items():
            kind, _, body = name.partition(":")
            if kind == "w":
                words[body] = row
            elif kind == "b":
                for at, letter in enumerate(body):
                    if letter == "_":
                        pairs.setdefault(body[:at], {})[body[at + 1 :]] = row
        return words, pairs

    @cached_property
    def _joined(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Both heads' weights side by side (one gather per report), their intercepts, and
        where the category's columns end."""
        category, priority = self.heads["category"], self.heads["priority"]
        weights = np.ascontiguousarray(np.hstack([category.weights, priority.weights]))
        intercepts = np.concatenate([category.intercepts, priority.intercepts])
        return weights, intercepts, len(category.classes)

    @cached_property
    def column(self) -> dict[tuple[str, str], int]:
        """Where each head's class is among the joined weights' columns."""
        names = [
            (head, label) for head in ("category", "priority") for label in self.heads[head].classes
        ]
        return {name: i for i, name in enumerate(names)}

    @cached_property
    def _labels(self) -> tuple[tuple[Category, ...], tuple[Priority, ...]]:
        return (
            tuple(Category(c) for c in self.heads["category"].classes),
            tuple(Priority(p) for p in self.heads["priority"].classes),
        )

    def predict(self, reading: Reading) -> Prediction:
        """Probabilities of every category and priority."""
        rows, values = self.vector(reading)
        weights, intercepts, split = self._joined
        gathered = weights.take(rows, axis=0)
        scores = values @ gathered + intercepts
        categories, priorities = self._labels
        category, priority = _softmaxes(scores, split)
        return Prediction(
            category=dict(zip(categories, category, strict=True)),
            priority=dict(zip(priorities, priority, strict=True)),
            _model=self,
            _rows=rows,
            _values=values,
            _weights=gathered,
        )

    def save(self, folder: Path) -> None:
        """Write `model.json`, `features.tsv` and `words.txt`, sorted and rounded, so one
        training gives byte-identical files and a retraining is a reviewable diff.

        `features.tsv` has a header naming its columns (feature, idf, then one column per
        category and per priority) and one feature a line; a weight too small to matter is
        an empty cell, so `grep -P '^w:sesak\t'` shows where "sesak" pulls."""
        folder.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta)
        meta["features_version"] = FEATURES_VERSION
        meta["heads"] = {
            name: {
                "classes": list(head.classes),
                "intercepts": [round(float(x), 4) for x in head.intercepts],
            }
            for name, head in self.heads.items()
        }
        (folder / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        header = ["feature", "idf"] + [
            f"{name}:{label}" for name, head in self.heads.items() for label in head.classes
        ]
        lines = ["\t".join(header)]
        for name, row in sorted(self.vocabulary.items()):
            cells = [name, _num(self.idf[row])]
            for head in self.heads.values():
                cells += [_num(w) if w else "" for w in head.weights[row]]
            lines.append("\t".join(cells).rstrip("\t"))
        (folder / WEIGHTS).write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / WORDS).write_text("\n".join(sorted(self.known_words)) + "\n", encoding="utf-8")


def _num(value: float) -> str:
    text = f"{float(value):.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def load_model(folder: Path = BUILT_IN) -> LinearModel:
    """The model of `folder`; `ModelError` when it is missing, damaged or of another
    feature version."""
    try:
        meta = json.loads((folder / META).read_text())
        lines = (folder / WEIGHTS).read_text(encoding="utf-8").splitlines()
        known = tuple((folder / WORDS).read_text(encoding="utf-8").split())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: no triage model ({exc})") from None
    if meta.get("features_version") != FEATURES_VERSION:
        raise ModelError(
            f"{folder}: model of features version {meta.get('features_version')}, "
            f"this code reads {FEATURES_VERSION}: run `make model`"
        )
    try:
        header = lines[0].split("\t")
        width = len(header) - 2
        vocabulary: dict[str, int] = {}
        # Every number's text in one array, converted by numpy at once (a cell per weight in
        # Python took most of a triage process's start-up); an empty cell is no weight.
        cells = np.zeros((len(lines) - 1, width + 1), dtype=object)
        for row, line in enumerate(lines[1:]):
            name, *numbers = line.split("\t")
            vocabulary[name] = row
            cells[row, : len(numbers)] = numbers
        cells[cells == ""] = 0
        numbers_of = cells.astype(np.float64)
        idf = np.ascontiguousarray(numbers_of[:, 0])
        table = numbers_of[:, 1:]
        heads = {}
        for name in HEADS:
            classes = tuple(meta["heads"][name]["classes"])
            columns = [header.index(f"{name}:{c}") - 2 for c in classes]
            heads[name] = Head(
                classes,
                np.ascontiguousarray(table[:, columns]),
                np.array(meta["heads"][name]["intercepts"], dtype=np.float64),
            )
    except (KeyError, ValueError, IndexError) as exc:
        raise ModelError(f"{folder}: damaged triage model ({exc!r})") from None
    return LinearModel(vocabulary, idf, heads, meta, known)


@cache
def built_in_model() -> LinearModel:
    """The model shipped with Siaga, read once per process."""
    return load_model(BUILT_IN)


def idf_of(document_frequency: int, documents: int) -> float:
    """Smoothed inverse document frequency, as the trainer and the reader both compute it."""
    return math.log((1 + documents) / (1 + document_frequency)) + 1.0
