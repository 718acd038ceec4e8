"""The stages no intake's first dispatch waits for (the tracker and the projector) take a
trickle of records in a few batches and lose none of it: on the real broker and database."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas.envelope import new_event
from schemas.events import UnitStatusChangedV1
from schemas.vocabulary import UnitStatus
from services.common.kafka import send_events
from services.common.outbox import Outgoing
from services.projector.bootstrap import ProjectorSettings
from services.tracker.bootstrap import TrackerSettings
from tests.conftest import Pipeline, eventually

pytestmark = pytest.mark.integration

BATCH_INTERVAL_MS = 600
TRICKLE = 12


@pytest.fixture
def stages() -> tuple[str, ...]:
    """Those two stages alone: both read the unit changes the dispatcher accepted, and no
    other stage adds to them."""
    return ("tracker", "projector")


def _batches(runtime: Any) -> float:
    found = runtime.metrics.registry.get_sample_value(
        "siaga_batch_processing_seconds_count", {"stage": runtime.name}
    )
    return found or 0.0


@pytest.mark.parametrize(
    "stage_settings",
    [
        {
            "tracker": {"settings": TrackerSettings(batch_interval_ms=BATCH_INTERVAL_MS)},
            "projector": {"settings": ProjectorSettings(batch_interval_ms=BATCH_INTERVAL_MS)},
        }
    ],
    indirect=True,
)
async def test_a_trickle_gathers_into_a_few_batches_and_none_of_it_is_lost(
    pipeline: Pipeline,
) -> None:
    runtimes = [pipeline.runtimes[stage][0] for stage in ("tracker", "projector")]
    start = datetime.now(UTC)
    reports = [
        new_event(
            UnitStatusChangedV1(
                unit_id="AMB-BATANG",
                status=UnitStatus.AVAILABLE,
                previous_status=UnitStatus.AVAILABLE,
                reported_at=start + timedelta(seconds=n),
            ),
            id=uuid.uuid4(),
            source="/siaga/dispatcher",
        )
        for n in range(TRICKLE)
    ]
    before = [_batches(runtime) for runtime in runtimes]
    started = time.monotonic()
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap())
    await producer.start()
    try:
        # One report every 40 ms: unpaced, nearly every one would be a fetch and a batch of
        # its own; a batch at most every 600 ms takes them in two or three.
        for report in reports:
            await send_events(producer, [Outgoing.of(report, pipeline.topics)])
            await asyncio.sleep(0.04)
    finally:
        await producer.stop()
    keys = [f"event:{report.id}" for report in reports]

    async def handled() -> bool | None:
        tracked = await pipeline.fetchval(
            "SELECT count(*) FROM tracker.inbox WHERE message_key = ANY($1::text[])", keys
        )
        projected = await pipeline.fetchval(
            "SELECT count(*) FROM readmodel.inbox WHERE message_key = ANY($1::text[])", keys
        )
        return (tracked, projected) == (TRICKLE, TRICKLE) or None

    took = time.monotonic() - started
    await eventually(handled, what="every report handled by the tracker and the projector")
    # A batch as the trickle begins, one per interval it lasted, one for its tail and one
    # to spare (the fleet's registrations may still be read as it begins): a loaded machine
    # that sends slower gets a larger allowance, still far below one batch a report.
    allowed = 3 + math.ceil(took / (BATCH_INTERVAL_MS / 1000))
    assert allowed < TRICKLE
    taken = [_batches(runtime) - batches for runtime, batches in zip(runtimes, before, strict=True)]
    assert all(n <= allowed for n in taken), (taken, allowed)
