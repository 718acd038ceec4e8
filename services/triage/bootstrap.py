"""Composition root of triage: classifier, handlers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import IntakeEnrichedV1
from schemas.vocabulary import Priority
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.triage.classifier import Classifier
from services.triage.entrypoint import Triage
from services.triage.rules import SLA_SECONDS


class TriageSettings(BaseSettings):
    """`SIAGA_TRIAGE_*`: classification thresholds."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_TRIAGE_")

    review_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Below this confidence a human triages"
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
        classifier=classifier or Classifier(threshold=settings.review_threshold),
        topics=common.topics,
        sla_seconds=settings.sla_seconds(),
    )
    async with stage_runtime(
        name="triage",
        settings=common,
        subscriptions=[common.topics.intake_enriched],
        handlers={IntakeEnrichedV1: triage.on_intake_enriched},
    ) as runtime:
        yield runtime
