"""Scores of a triage run: per-category precision and recall, macro-F1, P1 recall, places."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """One report: what its label says and what triage answered."""

    category: str
    priority: str
    kecamatan: str | None
    predicted_category: str
    predicted_priority: str
    predicted_kecamatan: str | None
    needs_review: bool
    alt: tuple[str, ...] = ()  # other categories the label accepts
    needs_confirmation: bool = False

    @property
    def category_right(self) -> bool:
        """The category, or one of the label's acceptable others."""
        return self.predicted_category == self.category or self.predicted_category in self.alt


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def score(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Every figure `make eval` reports for one set of outcomes."""
    labels = sorted({o.category for o in outcomes})
    per_category: dict[str, dict[str, Any]] = {}
    f1s = []
    for label in labels:
        tp = sum(1 for o in outcomes if o.category == label and o.predicted_category == label)
        fp = sum(1 for o in outcomes if o.category != label and o.predicted_category == label)
        fn = sum(1 for o in outcomes if o.category == label and o.predicted_category != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_category[label] = {
            "support": tp + fn,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
        }
    p1 = [o for o in outcomes if o.priority == "P1"]
    low = [o for o in outcomes if o.priority in ("P3", "P4")]
    placed = [o for o in outcomes if o.kecamatan]
    confusions: dict[str, int] = {}
    for o in outcomes:
        if o.category != o.predicted_category:
            key = f"{o.category} -> {o.predicted_category}"
            confusions[key] = confusions.get(key, 0) + 1
    return {
        "reports": len(outcomes),
        "accuracy": _ratio(
            sum(o.category == o.predicted_category for o in outcomes), len(outcomes)
        ),
        "category_right": _ratio(sum(o.category_right for o in outcomes), len(outcomes)),
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "per_category": per_category,
        "p1_reports": len(p1),
        "p1_recall": _ratio(sum(o.predicted_priority == "P1" for o in p1), len(p1)),
        "p3_p4_reports": len(low),
        "p3_p4_raised_to_p1": _ratio(sum(o.predicted_priority == "P1" for o in low), len(low)),
        "priority_exact": _ratio(
            sum(o.priority == o.predicted_priority for o in outcomes), len(outcomes)
        ),
        "places_named": len(placed),
        "kecamatan_right": _ratio(
            sum(o.predicted_kecamatan == o.kecamatan for o in placed), len(placed)
        ),
        "unplaced_reports_given_a_place": _ratio(
            sum(o.predicted_kecamatan is not None for o in outcomes if not o.kecamatan),
            sum(1 for o in outcomes if not o.kecamatan),
        ),
        "sent_to_human_review": _ratio(sum(o.needs_review for o in outcomes), len(outcomes)),
        "p1_to_confirm": _ratio(
            sum(o.needs_confirmation for o in outcomes if o.predicted_priority == "P1"),
            sum(o.predicted_priority == "P1" for o in outcomes),
        ),
        "top_confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])[:8]),
    }
