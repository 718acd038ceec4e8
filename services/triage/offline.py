"""Enrichment and classification without broker or database, for `siaga triage` and evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.events import CallerSignals
from schemas.vocabulary import Channel
from services.common.settings import CommonSettings
from services.enricher.places import PlaceResolver
from services.triage.classifier import Classifier


@dataclass
class OfflineTriage:
    """The enricher's place resolver and triage's classifier, as the pipeline runs them."""

    resolver: PlaceResolver
    classifier: Classifier

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> OfflineTriage:
        """Built from the same gazetteer and thresholds as the running stages."""
        from services.triage.bootstrap import TriageSettings

        resolver = PlaceResolver.from_pack(settings.home.pack())
        names = [a.name for a in resolver.gazetteer.areas]
        return cls(resolver, TriageSettings().classifier(place_names=names))

    def triage(
        self, *, text: str, channel: Channel, place_hint: str | None = None
    ) -> dict[str, Any]:
        """DESIGN.md's `siaga triage` object for one report."""
        place = self.resolver.resolve(text=text, hint=place_hint)
        ghost = not text.strip() and not (place_hint or "").strip()
        signals = CallerSignals(
            prior_reports=0, prior_pranks=0, repeat_caller=False, prank_flagged=False, ghost=ghost
        )
        decision = self.classifier.classify(text=text, channel=channel, signals=signals)
        return {
            "category": decision.category.value,
            "priority": decision.priority.value,
            "agency": decision.agency,
            "confidence": decision.confidence,
            "explanation": decision.explanation,
            "needs_review": decision.needs_review,
            "needs_confirmation": decision.needs_confirmation,
            "life_threat": decision.threat,
            "questions": list(decision.questions),
            "sla_seconds": decision.sla_seconds,
            "place": None
            if place is None
            else {
                "kecamatan": place.kecamatan,
                "desa": place.desa,
                "lat": place.lat,
                "lon": place.lon,
                "confidence": place.confidence,
                "method": place.method,
                "matched": place.matched,
            },
        }
