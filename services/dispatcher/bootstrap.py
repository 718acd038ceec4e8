"""Composition root of the dispatcher: run cards, handlers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import (
    IncidentClassifiedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    UnitRegisteredV1,
    UnitStatusReportedV1,
)
from services.common.gazetteer import BATANG_CENTRE
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.dispatcher.entrypoint import Dispatcher


class DispatcherSettings(BaseSettings):
    """`SIAGA_DISPATCHER_*`: work-order due time and where to rank from without a place."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_DISPATCHER_")

    work_order_due_s: int = Field(default=3 * 24 * 3600, ge=60, description="First response due")
    fallback_lat: float = Field(default=BATANG_CENTRE[0], description="Rank units from here...")
    fallback_lon: float = Field(default=BATANG_CENTRE[1], description="...when no place is known")


@contextlib.asynccontextmanager
async def bootstrap(
    common: CommonSettings | None = None, settings: DispatcherSettings | None = None
) -> AsyncIterator[StageRuntime]:
    """Run the dispatcher until the context exits."""
    common = common or CommonSettings()
    settings = settings or DispatcherSettings()
    dispatcher = Dispatcher(
        topics=common.topics,
        fallback_point=(settings.fallback_lat, settings.fallback_lon),
        work_order_due=timedelta(seconds=settings.work_order_due_s),
    )
    async with stage_runtime(
        name="dispatcher",
        settings=common,
        subscriptions=[common.topics.incident_events, common.topics.unit_status],
        owned_topics=[],  # the tracker dead-letters what nobody can decode on these
        handlers={
            IncidentClassifiedV1: dispatcher.on_incident_classified,
            IncidentStatusChangedV1: dispatcher.on_incident_finished,
            IncidentResolvedV1: dispatcher.on_incident_finished,
            UnitRegisteredV1: dispatcher.on_unit_registered,
            UnitStatusReportedV1: dispatcher.on_unit_status,
        },
    ) as runtime:
        yield runtime
