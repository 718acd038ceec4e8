"""Category points from the words of a report (categories.toml), longest phrases first."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from schemas.vocabulary import Category
from services.triage.lexicon import Lexicon
from services.triage.phrases import PhraseIndex, Slot
from services.triage.reading import Reader, Reading

STRONG, NORMAL, WEAK = 3.0, 2.0, 1.0


@dataclass(frozen=True)
class CategoryEvidence:
    """Each category's points and the phrases that earned them."""

    scores: dict[Category, float]
    matched: dict[Category, list[str]]


class CategoryScorer:
    """Scores each category by its strong (3), normal (2) and weak (1) phrases.

    Phrases are matched longest first without overlaps, so "truk terguling" is read once and
    its words do not also count alone; a phrase is worth at least its strongest part. A phrase
    meant in another sense ("kereta api") takes its words and scores for no category.
    """

    def __init__(self, lexicon: Lexicon, reader: Reader) -> None:
        points: dict[str, dict[Category, float]] = defaultdict(dict)
        for category, rule in lexicon.categories.items():
            for phrases, worth in ((rule.strong, STRONG), (rule.normal, NORMAL), (rule.weak, WEAK)):
                for phrase in phrases:
                    key = " ".join(phrase.split())
                    points[key][category] = max(worth, points[key].get(category, 0.0))
        for phrase, tags in points.items():
            words = phrase.split()
            for size in range(1, len(words)):
                for start in range(len(words) - size + 1):
                    for category, worth in points.get(
                        " ".join(words[start : start + size]), {}
                    ).items():
                        if category in tags:
                            tags[category] = max(tags[category], worth)
        for phrase in lexicon.modifiers.other_senses:
            points.setdefault(" ".join(phrase.split()), {})
        self._index: PhraseIndex[dict[Category, float]] = PhraseIndex(
            points.items(), concepts=lexicon.complaints.concepts, word=reader.pattern_word
        )

    def affixes(self) -> tuple[set[str], set[str]]:
        """Every beginning and ending the category phrases ask for."""
        return self._index.affixes()

    def vocabulary(self, category: Category | None = None) -> set[str]:
        """Every plain word the phrases name (of one category's phrases, if given)."""
        return {
            w
            for p in self._index.patterns
            if category is None or category in p.value
            for s in p.parts
            if isinstance(s, Slot)
            for w in s.exact
        }

    def score(self, reading: Reading) -> CategoryEvidence:
        """The points of every category with a phrase in the report."""
        scores: dict[Category, float] = defaultdict(float)
        matched: dict[Category, list[str]] = defaultdict(list)
        for m in self._index.find_longest(reading.tokens, reading.words):
            phrase = " ".join(reading.tokens[m.start : m.end])
            for category, worth in m.value.items():
                if phrase not in matched[category]:
                    scores[category] += worth
                    matched[category].append(phrase)
        return CategoryEvidence(dict(scores), dict(matched))
