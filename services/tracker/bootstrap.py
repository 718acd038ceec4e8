"""Composition root of the tracker: handlers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from schemas.events import (
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentOpenedV1,
    UnitDispatchedV1,
    UnitStatusReportedV1,
)
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.tracker.entrypoint import Tracker


@contextlib.asynccontextmanager
async def bootstrap(common: CommonSettings | None = None) -> AsyncIterator[StageRuntime]:
    """Run the tracker until the context exits."""
    common = common or CommonSettings()
    tracker = Tracker(topics=common.topics)
    topics = common.topics
    async with stage_runtime(
        name="tracker",
        settings=common,
        subscriptions=[topics.incident_events, topics.dispatch_orders, topics.unit_status],
        handlers={
            IncidentOpenedV1: tracker.on_incident_opened,
            IncidentClassifiedV1: tracker.on_incident_classified,
            UnitDispatchedV1: tracker.on_unit_dispatched,
            DispatchCancelledV1: tracker.on_dispatch_cancelled,
            UnitStatusReportedV1: tracker.on_unit_status,
        },
    ) as runtime:
        yield runtime
