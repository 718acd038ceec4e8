"""Composition root of the tracker: handlers, SLA timers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.common.timers import PeriodicJob
from services.tracker.entrypoint import Tracker, TrackerBatch
from services.tracker.stage import TRACKER


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
    async with stage_runtime(
        stage=TRACKER,
        settings=common,
        handlers=[
            tracker.on_incident_opened,
            tracker.on_incident_classified,
            tracker.on_unit_dispatched,
            tracker.on_dispatch_cancelled,
            tracker.on_unit_status,
            tracker.on_work_order_issued,
            tracker.on_work_order_answered,
            tracker.on_work_order_closed,
            tracker.on_cancel_incident,
            tracker.on_close_incident,
        ],
        new_state=TrackerBatch,
        jobs=[PeriodicJob("sla-breaches", settings.timer_interval_s, tracker.raise_sla_breaches)],
        batch_interval_ms=settings.batch_interval_ms,
    ) as runtime:
        yield runtime
