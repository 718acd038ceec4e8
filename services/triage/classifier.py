"""Explainable rule-based classification: category, priority, agency, SLA and confidence."""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.events import CallerSignals
from schemas.vocabulary import Category, Channel, Priority
from services.triage.rules import EMERGENCY_CATEGORIES, LIFE_THREAT, RULES, SLA_SECONDS


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


def _normalise(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()).strip() + " "


def _found(words: tuple[str, ...], text: str) -> list[str]:
    return [w for w in words if f" {w} " in text]


class Classifier:
    """Scores each category by the words of the report; below `threshold` a human decides."""

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def classify(
        self, *, text: str, channel: Channel, signals: CallerSignals | None = None
    ) -> Classification:
        """Classify one report; pure and deterministic."""
        normal = _normalise(text)
        threats = _found(LIFE_THREAT, normal)
        if signals is not None and signals.ghost:
            return self._decide(Category.GHOST, 1.0, "empty or silent report", threats=[])
        scores: dict[Category, float] = {}
        matched: dict[Category, list[str]] = {}
        for category, rule in RULES.items():
            words = _found(rule.keywords, normal)
            if words:
                matched[category] = words
                scores[category] = sum(1 + 0.5 * w.count(" ") for w in words)
        if not scores:
            confidence = 0.3 if channel.is_emergency_line else 0.45
            return self._decide(
                Category.INFORMATION, confidence, "no category words found", threats=threats
            )
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], list(RULES).index(kv[0])))
        category, top = ranked[0]
        total = sum(scores.values())
        confidence = round(0.5 * top / total + 0.5 * min(1.0, top / 2), 3)
        explanation = f"{category.value}: {', '.join(matched[category])}"
        if len(ranked) > 1:
            runner_up = ranked[1][0]
            explanation += f"; also {runner_up.value}: {', '.join(matched[runner_up])}"
        if signals is not None and signals.prank_flagged and category is not Category.PRANK:
            explanation += "; caller flagged for pranks"
        return self._decide(category, confidence, explanation, threats=threats, signals=signals)

    def _decide(
        self,
        category: Category,
        confidence: float,
        explanation: str,
        *,
        threats: list[str],
        signals: CallerSignals | None = None,
    ) -> Classification:
        rule = RULES[category]
        priority = rule.priority
        if signals is not None and signals.prank_flagged:
            priority = Priority.P3 if priority in (Priority.P1, Priority.P2) else priority
        if threats and category not in (Category.PRANK, Category.GHOST):
            priority = Priority.P1
            explanation += f"; life at risk: {', '.join(threats)} -> P1"
            confidence = max(confidence, 0.6)
        return Classification(
            category=category,
            priority=priority,
            agency=rule.agency,
            confidence=confidence,
            explanation=explanation,
            needs_review=confidence < self.threshold,
            sla_seconds=SLA_SECONDS[priority],
        )
