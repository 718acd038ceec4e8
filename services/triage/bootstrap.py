"""Composition root of triage: classifier, handlers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.vocabulary import Category, Priority
from services.common.gazetteer import load_gazetteer
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.triage.classifier import SLA_SECONDS, Classifier
from services.triage.correlation import DuplicateRule
from services.triage.entrypoint import Triage
from services.triage.lexicon import load_lexicon
from services.triage.repository import Correlation
from services.triage.stage import TRIAGE

# Calls about one fire or crash are many; two sick people in one desa are two patients, so
# medical, crime and complaints about people are never merged unless configured.
DEFAULT_DUPLICATE_CATEGORIES = (
    "fire,traffic_accident,disaster,rescue,infrastructure,environment,utilities"
)


class TriageSettings(BaseSettings):
    """`SIAGA_TRIAGE_*`: classification threshold and duplicate-call correlation."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_TRIAGE_")

    review_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Below this confidence a human triages"
    )
    lexicon_dir: Path | None = Field(
        default=None,
        description="A folder of triage's four lexicon files (default: the built-in ones)",
    )
    sla_p1_s: int = Field(
        default=SLA_SECONDS[Priority.P1], gt=0, description="P1: intake to dispatch"
    )
    sla_p2_s: int = Field(
        default=SLA_SECONDS[Priority.P2], gt=0, description="P2: intake to dispatch"
    )
    sla_p3_s: int = Field(default=SLA_SECONDS[Priority.P3], gt=0, description="P3: first response")
    sla_p4_s: int = Field(default=SLA_SECONDS[Priority.P4], gt=0, description="P4: first response")

    def sla_seconds(self) -> dict[Priority, int]:
        """Service-level target per priority."""
        return {
            Priority.P1: self.sla_p1_s,
            Priority.P2: self.sla_p2_s,
            Priority.P3: self.sla_p3_s,
            Priority.P4: self.sla_p4_s,
        }

    duplicate_window_s: int = Field(
        default=30 * 60, ge=0, description="Calls this close in time may be one incident"
    )
    duplicate_radius_km: float = Field(
        default=1.5, ge=0, description="Calls this close in space may be one incident"
    )
    duplicate_categories: str = Field(
        default=DEFAULT_DUPLICATE_CATEGORIES,
        description="Comma-separated categories whose repeat calls join one incident",
    )

    @field_validator("duplicate_categories")
    @classmethod
    def _known_categories(cls, value: str) -> str:
        unknown = [c.strip() for c in value.split(",") if c.strip() not in {*Category, ""}]
        if unknown:
            raise ValueError(f"unknown categories: {', '.join(unknown)}")
        return value

    def classifier(self, *, place_names: Iterable[str]) -> Classifier:
        """The classifier these settings describe, knowing the regency's place names (a
        place's name is never read as a slip of a keyword)."""
        lexicon = None if self.lexicon_dir is None else load_lexicon(self.lexicon_dir)
        return Classifier(threshold=self.review_threshold, place_names=place_names, lexicon=lexicon)

    def duplicate_rule(self) -> DuplicateRule:
        """The correlation rule these settings describe."""
        names = [c.strip() for c in self.duplicate_categories.split(",") if c.strip()]
        return DuplicateRule(
            window=timedelta(seconds=self.duplicate_window_s),
            radius_km=self.duplicate_radius_km,
            categories=frozenset(Category(n) for n in names),
        )


def _place_names(common: CommonSettings) -> list[str]:
    return [a.name for a in load_gazetteer(common.home.pack()).areas]


@contextlib.asynccontextmanager
async def bootstrap(
    common: CommonSettings | None = None,
    settings: TriageSettings | None = None,
    *,
    classifier: Classifier | None = None,
) -> AsyncIterator[StageRuntime]:
    """Run triage until the context exits."""
    common = common or CommonSettings()
    settings = settings or TriageSettings()
    triage = Triage(
        classifier=classifier or settings.classifier(place_names=_place_names(common)),
        topics=common.topics,
        duplicates=settings.duplicate_rule(),
        sla_seconds=settings.sla_seconds(),
    )
    async with stage_runtime(
        stage=TRIAGE,
        settings=common,
        handlers=[triage.on_intake_enriched, triage.on_incident_ended, triage.on_review_triage],
        new_state=Correlation,
    ) as runtime:
        yield runtime
