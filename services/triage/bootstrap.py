"""Composition root of triage: classifier, handlers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import IntakeEnrichedV1
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.triage.classifier import Classifier
from services.triage.entrypoint import Triage


class TriageSettings(BaseSettings):
    """`SIAGA_TRIAGE_*`: classification thresholds."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_TRIAGE_")

    review_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Below this confidence a human triages"
    )


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
    )
    async with stage_runtime(
        name="triage",
        settings=common,
        subscriptions=[common.topics.intake_enriched],
        handlers={IntakeEnrichedV1: triage.on_intake_enriched},
    ) as runtime:
        yield runtime
