"""Composition root of the tracker: handlers, SLA timers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.commands import CancelIncidentV1, CloseIncidentV1
from schemas.events import (
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentOpenedV1,
    UnitDispatchedV1,
    UnitStatusChangedV1,
    WorkOrderAnsweredV1,
    WorkOrderClosedV1,
    WorkOrderIssuedV1,
)
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.common.timers import PeriodicJob
from services.stages import subscriptions
from services.tracker.entrypoint import Tracker


class TrackerSettings(BaseSettings):
    """`SIAGA_TRACKER_*`: how often SLA timers are checked, how often a batch is taken."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_TRACKER_")

    timer_interval_s: float = Field(default=1.0, gt=0, description="SLA timer check interval")
    batch_interval_ms: int = Field(
        default=100,
        ge=0,
        le=10_000,
        description="A batch is taken at most this often, unless a full one waits (no "
        "intake's first dispatch waits for the tracker, and fewer, fuller batches spare "
        "the broker: `Pace`); 0: as soon as records come",
    )


@contextlib.asynccontextmanager
async def bootstrap(
    common: CommonSettings | None = None, settings: TrackerSettings | None = None
) -> AsyncIterator[StageRuntime]:
    """Run the tracker until the context exits."""
    common = common or CommonSettings()
    settings = settings or TrackerSettings()
    tracker = Tracker(topics=common.topics)
    topics = common.topics
    async with stage_runtime(
        name="tracker",
        settings=common,
        subscriptions=subscriptions("tracker", topics),
        handlers={
            IncidentOpenedV1: tracker.on_incident_opened,
            IncidentClassifiedV1: tracker.on_incident_classified,
            UnitDispatchedV1: tracker.on_unit_dispatched,
            DispatchCancelledV1: tracker.on_dispatch_cancelled,
            UnitStatusChangedV1: tracker.on_unit_status,
            WorkOrderIssuedV1: tracker.on_work_order_issued,
            WorkOrderAnsweredV1: tracker.on_work_order_answered,
            WorkOrderClosedV1: tracker.on_work_order_closed,
            CancelIncidentV1: tracker.on_cancel_incident,
            CloseIncidentV1: tracker.on_close_incident,
        },
        state=tracker,
        jobs=[PeriodicJob("sla-breaches", settings.timer_interval_s, tracker.raise_sla_breaches)],
        batch_interval_ms=settings.batch_interval_ms,
    ) as runtime:
        yield runtime
