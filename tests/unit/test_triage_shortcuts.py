"""Triage's shortcuts give what the plain steps they replace give, number for number: the
model's feature counts, its softmax and its features, a report's words and clause ends, a
word's candidate patterns."""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest

from services.common.text import normalise
from services.triage.classifier import Classifier
from services.triage.model import _counted, _softmaxes, features
from services.triage.phrases import MANY_CANDIDATES
from services.triage.reading import _CLAUSE_END, _CLAUSE_MARK, _words_and_ends

REPORTS = [
    "tolong ambulan, bapak saya pingsan tidak sadar di Kalisalak",
    "Tolooong!!! kebakaran2 rumah warga - api besar / asap hitam",
    "bapak sy tidak napas... sudah tidak gerak; tolong cepat",
    "ada QQCLAUSEQQ kebakaran dan qqclauuuseqq kecelakaan",
    "ambulan\uff0cbapak pingsan di desa Sempu",  # a full-width comma
    "a\n-\nb pingsan (kejang) [parah]: tolong?",
    "🙏🙏 tolong anak tenggelam di sungai 😭 #TolongAnak @PSC119",
    "jalan berlubang besar di Kalisalak, mohon diperbaiki, sudah seminggu",
]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def test_counting_features_in_numpy_lists_what_a_counter_does() -> None:
    rng = random.Random(3)
    cases = [[], [5], [7, 7, 7], [3, 1, 3, 2, 1, 9]]
    cases += [[rng.randrange(40) for _ in range(rng.randrange(1, 200))] for _ in range(200)]
    for found in cases:
        counted = Counter(found)
        index, tf = _counted(np.array(found, dtype=np.int64))
        assert index.tolist() == list(counted)
        assert tf.tolist() == [float(n) for n in counted.values()]


def test_both_softmaxes_at_once_are_each_heads_own_to_the_last_bit() -> None:
    rng = np.random.default_rng(5)
    for _ in range(500):
        scores = rng.normal(0, 4, size=20)
        first, second = _softmaxes(scores, 16)
        for part, got in ((scores[:16], first), (scores[16:], second)):
            exp = np.exp(part - part.max())
            assert got == (exp / exp.sum()).tolist()


def test_the_model_reads_the_features_the_trainer_counts(classifier: Classifier) -> None:
    """`vector` finds a report's features by word and counts them in numpy: the same rows in
    the same order, and the same values, as TF-IDF over `features`, as the trainer counts."""
    model = classifier.model
    for text in REPORTS:
        reading = classifier.read(text)
        counted = Counter({n: c for n, c in features(reading).items() if n in model.vocabulary})
        rows = np.array([model.vocabulary[n] for n in counted], dtype=np.int64)
        values = (1.0 + np.log(np.array(list(counted.values()), dtype=np.float64))) * model.idf[
            rows
        ]
        values = values / float(np.sqrt(values @ values))
        index, got = model.vector(reading)
        assert index.tolist() == rows.tolist(), text
        assert got.tolist() == values.tolist(), text


def _marked(text: str) -> list[str]:
    """The plain way: clause ends marked with a word, then the text normalised."""
    words = normalise(_CLAUSE_END.sub(f" {_CLAUSE_MARK} ", text)).split()
    return ["" if w == _CLAUSE_MARK else w for w in words]


def test_words_and_clause_ends_in_one_pass_are_those_of_marking_then_normalising() -> None:
    rng = random.Random(7)
    letters = "abkinpst2 .,-/\n!?;:()[]Qq#\u00e9\uff0c\t"
    texts = REPORTS + [
        "".join(rng.choice(letters) for _ in range(rng.randrange(1, 40))) for _ in range(2000)
    ]
    for text in texts:
        assert _words_and_ends(text) == _marked(text), repr(text)


def test_a_word_that_starts_many_patterns_offers_those_a_report_can_match(
    classifier: Classifier,
) -> None:
    """Looked up by the words they need, a word's candidates are those the report's words
    leave possible, in the order they would be tried one by one."""
    index = classifier.threats._scan
    rng = random.Random(11)
    vocabulary = sorted(index.vocabulary())
    tried = 0
    for token in ("tidak", "sudah", "bapak", "anak", "warga", "korban"):
        entry = index._starting_at(token)
        assert len(entry.candidates) >= MANY_CANDIDATES, token
        keys = sorted(entry.keys or ())
        for _ in range(200):
            said = rng.sample(vocabulary, rng.randrange(0, 8))
            said += rng.sample(keys, rng.randrange(0, min(len(keys), 4) + 1))  # their words
            present = frozenset([*said, token])
            possible = [
                (p, required)
                for p, required in entry.candidates
                if all(not words.isdisjoint(present) for words in required)
            ]
            offered = [
                (p, required)
                for p, required in entry.possible(present)
                if all(not words.isdisjoint(present) for words in required)
            ]
            assert offered == possible, (token, sorted(present))
            tried += len(possible)
    assert tried > 100  # the samples did make patterns possible


def test_a_reading_knows_its_words_however_it_is_made(classifier: Classifier) -> None:
    reading = classifier.read("bapak pingsan, bapak tidak sadar")
    assert reading.words == frozenset(reading.tokens)
    again = type(reading)(reading.text, reading.folded, reading.tokens, reading.clause_starts)
    assert again.words == reading.words
    assert re.fullmatch(r"[a-z ]+", reading.folded)
