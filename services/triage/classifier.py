"""Explainable rule-based classification: category, priority, agency, SLA and confidence.

The report's words are normalised (shorthand spelled out, typos corrected towards the
rule words), then matched against every category's phrases, longest first. The category
with most points wins; the confidence grows with its points and with its lead over the
runner-up (threat words do not count for the runner-up). A caller owning up to a prank
makes it a prank unless a life is at risk. Priority is the category's default, one step
down for past events and complaint phrasing, P1 -> P2 for an emergency that is over or
small, lowered to P3 for a number flagged for pranks, and P1 whenever words say a life is
at risk (on any channel, whatever the caller's history; such a report is never held for
review). The explanation names the words and rules that decided.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from schemas.events import CallerSignals
from schemas.vocabulary import Category, Channel, Priority
from services.common.text import Speller, words
from services.triage.rules import (
    CALMING,
    COMMON_WORDS,
    EMERGENCY_CATEGORIES,
    LIFE_THREAT,
    NEGATIONS,
    NEUTRAL,
    NOT_URGENT,
    PRANK_ADMISSIONS,
    RULES,
    SLA_SECONDS,
)

MAX_PHRASE = 4
# One step down for an emergency long past or reported as a complaint.
LOWER = {Priority.P1: Priority.P2, Priority.P2: Priority.P3}
NEUTRAL_TAG = "neutral"
THREAT_TAG = "threat"
CALM_TAG = "calm"
LATE_TAG = "late"
ADMIT_TAG = "admit"


@dataclass(frozen=True)
class Classification:
    """The triage decision for one report."""

    category: Category
    priority: Priority
    agency: str
    confidence: float
    explanation: str
    needs_review: bool
    sla_seconds: int

    @property
    def dispatches_units(self) -> bool:
        """True when field units go out rather than an agency work order."""
        return self.category in EMERGENCY_CATEGORIES and self.priority in (Priority.P1, Priority.P2)


@dataclass(frozen=True)
class Evidence:
    """What the words of one report say."""

    scores: dict[Category, float]
    matched: dict[Category, list[str]]
    threats: list[str]
    calming: list[str]
    admissions: list[str]
    not_urgent: list[str]


def _key(phrase: str) -> str:
    return " ".join(words(phrase))


def _category_lexicon() -> dict[str, list[tuple[str, float]]]:
    """Phrase -> (category or neutral tag, points)."""
    lexicon: dict[str, dict[str, float]] = defaultdict(dict)
    for category, rule in RULES.items():
        for phrase, points in rule.weighted():
            tags = lexicon[_key(phrase)]
            tags[category.value] = max(points, tags.get(category.value, 0.0))
    # A phrase is worth at least its strongest part ("truk terguling" >= "terguling"), since
    # matching the longer phrase keeps its words from counting alone.
    for phrase, tags in lexicon.items():
        parts = phrase.split()
        for size in range(1, len(parts)):
            for start in range(len(parts) - size + 1):
                inner = lexicon.get(" ".join(parts[start : start + size]), {})
                for tag, points in inner.items():
                    if tag in tags:
                        tags[tag] = max(tags[tag], points)
    for phrase in NEUTRAL:
        lexicon[_key(phrase)][NEUTRAL_TAG] = 0.0
    return {k: sorted(v.items()) for k, v in lexicon.items()}


def _signal_lexicon() -> dict[str, list[tuple[str, float]]]:
    """Phrase -> threat or calming tag."""
    lexicon: dict[str, list[tuple[str, float]]] = {}
    for phrase in LIFE_THREAT:
        lexicon[_key(phrase)] = [(THREAT_TAG, 0.0)]
    for phrase in CALMING:
        lexicon[_key(phrase)] = [(CALM_TAG, 0.0)]
    for phrase in NOT_URGENT:
        lexicon[_key(phrase)] = [(LATE_TAG, 0.0)]
    for phrase in PRANK_ADMISSIONS:
        lexicon[_key(phrase)] = [(ADMIT_TAG, 0.0)]
    return lexicon


def _longest_first(
    tokens: list[str], lexicon: dict[str, list[tuple[str, float]]]
) -> list[tuple[int, str, list[tuple[str, float]]]]:
    """(start, phrase, tags) of every lexicon phrase in `tokens`, longest first, no overlaps."""
    taken = [False] * len(tokens)
    found = []
    for size in range(min(MAX_PHRASE, len(tokens)), 0, -1):
        for start in range(len(tokens) - size + 1):
            if any(taken[start : start + size]):
                continue
            phrase = " ".join(tokens[start : start + size])
            tags = lexicon.get(phrase)
            if tags:
                taken[start : start + size] = [True] * size
                found.append((start, phrase, tags))
    return sorted(found)


class Classifier:
    """Scores each category by the words of the report; below `threshold` a human decides."""

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._categories = _category_lexicon()
        self._signals = _signal_lexicon()
        self._threat_phrases = frozenset(
            p for p, tags in self._signals.items() if tags[0][0] == THREAT_TAG
        )
        vocabulary = {
            w for lex in (self._categories, self._signals) for p in lex for w in p.split()
        }
        self._speller = Speller(vocabulary, known=COMMON_WORDS)

    def evidence(self, said: list[str]) -> Evidence:
        """The phrases of each category, the threats and the calming words found in the
        words of a report (`words(text)`)."""
        tokens = self._speller.correct_all(said)
        scores: dict[Category, float] = defaultdict(float)
        matched: dict[Category, list[str]] = defaultdict(list)
        for _, phrase, tags in _longest_first(tokens, self._categories):
            for tag, points in tags:
                if tag != NEUTRAL_TAG and phrase not in matched[Category(tag)]:
                    scores[Category(tag)] += points
                    matched[Category(tag)].append(phrase)
        threats: list[str] = []
        calming: list[str] = []
        admissions: list[str] = []
        not_urgent: list[str] = []
        for start, phrase, tags in _longest_first(tokens, self._signals):
            if tags[0][0] == CALM_TAG:
                calming.append(phrase)
                continue
            if tags[0][0] == LATE_TAG:
                not_urgent.append(phrase)
                continue
            if tags[0][0] == ADMIT_TAG:
                admissions.append(phrase)
                continue
            # "tidak ada korban jiwa" denies the threat; "tidak sadar" is one.
            denied = NEGATIONS & set(tokens[max(0, start - 2) : start])
            if not denied or phrase.split()[0] in NEGATIONS:
                threats.append(phrase)
        return Evidence(dict(scores), dict(matched), threats, calming, admissions, not_urgent)

    def classify(
        self, *, text: str, channel: Channel, signals: CallerSignals | None = None
    ) -> Classification:
        """Classify one report; pure and deterministic."""
        tokens = words(text)
        if (signals is not None and signals.ghost) or not tokens:
            return self._decide(
                Category.GHOST, 1.0, "empty or silent report", Evidence({}, {}, [], [], [], [])
            )
        found = self.evidence(tokens)
        if found.admissions and not found.threats:
            said = ", ".join(found.admissions)
            return self._decide(Category.PRANK, 0.8, f"caller owns up to a prank: {said}", found)
        if not found.scores:
            confidence = 0.3 if channel.is_emergency_line else 0.4
            category = Category.MEDICAL if found.threats else Category.INFORMATION
            reason = "no category words found"
            if found.threats:
                reason = f"no category words; life at risk ({', '.join(found.threats)})"
            return self._decide(category, confidence, reason, found, signals)
        ranked = sorted(found.scores.items(), key=lambda kv: (-kv[1], list(RULES).index(kv[0])))
        category, top = ranked[0]
        # Threat words ("orang terjebak" in a fire) say how bad it is, not what it is: they do
        # not make the runner-up a rival.
        runner_up = max((self._points_beyond_threats(c, found) for c, _ in ranked[1:]), default=0.0)
        strength = top / (top + 1.5)
        margin = (top - runner_up) / top
        confidence = round(min(0.99, strength * (0.55 + 0.45 * margin) + 0.05), 2)
        explanation = f"{category.value} {top:g} points: {', '.join(found.matched[category])}"
        if len(ranked) > 1:
            other, points = ranked[1]
            explanation += f"; then {other.value} {points:g}: {', '.join(found.matched[other])}"
        return self._decide(category, confidence, explanation, found, signals)

    def _points_beyond_threats(self, category: Category, found: Evidence) -> float:
        return sum(
            dict(self._categories[phrase])[category.value]
            for phrase in found.matched[category]
            if phrase not in self._threat_phrases
        )

    def _decide(
        self,
        category: Category,
        confidence: float,
        explanation: str,
        found: Evidence,
        signals: CallerSignals | None = None,
    ) -> Classification:
        rule = RULES[category]
        priority = rule.priority
        real = category not in (Category.PRANK, Category.GHOST)
        if real and found.not_urgent and not found.threats and priority in LOWER:
            priority = LOWER[priority]
            explanation += f"; {', '.join(found.not_urgent)} -> {priority.value}"
        elif real and found.calming and not found.threats and priority is Priority.P1:
            priority = Priority.P2
            explanation += f"; {', '.join(found.calming)} -> P2"
        if signals is not None and signals.prank_flagged and real:
            if priority in (Priority.P1, Priority.P2) and not found.threats:
                priority = Priority.P3
                explanation += (
                    f"; number flagged after {signals.prior_pranks} pranks -> P3 (no life at risk)"
                )
            elif found.threats:
                explanation += "; number flagged for pranks, but a life is at risk"
        needs_review = confidence < self.threshold
        if found.threats and real:
            priority = Priority.P1
            explanation += f"; life at risk: {', '.join(found.threats)} -> P1"
            if needs_review:
                # A human would decide too late: units go on the best reading.
                needs_review = False
                explanation += f"; not held for review (confidence {confidence:.2f})"
        return Classification(
            category=category,
            priority=priority,
            agency=rule.agency,
            confidence=confidence,
            explanation=explanation,
            needs_review=needs_review,
            sla_seconds=SLA_SECONDS[priority],
        )
