"""Composition root of the enricher: gazetteer, resolver, handlers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.gazetteer import Gazetteer
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.enricher.entrypoint import Enricher
from services.enricher.places import PlaceResolver
from services.enricher.repository import Callers
from services.enricher.stage import ENRICHER


class EnricherSettings(BaseSettings):
    """`SIAGA_ENRICHER_*`: caller-history rules."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_ENRICHER_")

    repeat_window_s: int = Field(default=24 * 3600, ge=0, description="Repeat-caller window")
    prank_threshold: int = Field(
        default=3, ge=1, description="Calls judged pranks before a number is flagged"
    )


@contextlib.asynccontextmanager
async def bootstrap(
    common: CommonSettings | None = None,
    settings: EnricherSettings | None = None,
    *,
    gazetteer: Gazetteer | None = None,
) -> AsyncIterator[StageRuntime]:
    """Run the enricher until the context exits."""
    common = common or CommonSettings()
    settings = settings or EnricherSettings()
    enricher = Enricher(
        resolver=PlaceResolver.from_pack(common.home.pack(), gazetteer=gazetteer),
        topics=common.topics,
        repeat_window=timedelta(seconds=settings.repeat_window_s),
        prank_threshold=settings.prank_threshold,
    )
    async with stage_runtime(
        stage=ENRICHER,
        settings=common,
        handlers=[
            enricher.on_intake_received,
            enricher.on_incident_opened,
            enricher.on_incident_classified,
        ],
        new_state=Callers,
    ) as runtime:
        yield runtime
