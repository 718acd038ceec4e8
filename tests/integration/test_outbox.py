"""The outbox relay sends committed events at once, and never lets a later event overtake."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords
from faststream.kafka import KafkaBroker

from schemas.envelope import TYPE_HEADER, new_event
from schemas.events import CallLinkedV1
from schemas.registry import event_type_for
from schemas.vocabulary import Channel
from services.common.kafka import build_broker
from services.common.outbox import OutboxRelay, Outgoing, write_outbox
from services.common.settings import CommonSettings
from tests.conftest import Pipeline, eventually

pytestmark = pytest.mark.integration

INCIDENT = uuid.uuid4()


@pytest.fixture
def stages() -> tuple[str, ...]:
    """Only the broker and the database: the tests drive a relay directly."""
    return ()


class FlakyBroker:
    """The real broker, except that publishing fails while `down` is set."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker
        self.down = False

    async def publish(self, *args: Any, **kwargs: Any) -> Any:
        """Publish through the real broker, or fail as an unreachable one would."""
        if self.down:
            raise ConnectionError("broker unreachable")
        return await self.broker.publish(*args, **kwargs)


@pytest.fixture
async def broker(pipeline: Pipeline) -> AsyncIterator[FlakyBroker]:
    """A started broker client of the test's pipeline."""
    real = build_broker(pipeline.settings, client_id="siaga-test-relay")
    await real.start()
    try:
        yield FlakyBroker(real)
    finally:
        await real.stop()


@pytest.fixture
async def pool(pipeline: Pipeline) -> AsyncIterator[asyncpg.Pool]:
    """Connections whose SQL names the triage stage's outbox unqualified, as the stage's do."""
    created = await asyncpg.create_pool(
        pipeline.settings.database_url(),
        min_size=1,
        max_size=3,
        server_settings={"search_path": "triage, public"},
    )
    assert created is not None
    try:
        yield created
    finally:
        await created.close()


def links(pipeline: Pipeline, *names: str) -> list[Outgoing]:
    """Calls linked to one incident, one event each, named by their reason."""
    return [
        Outgoing.of(
            new_event(
                CallLinkedV1(
                    incident_id=INCIDENT,
                    intake_id=uuid.uuid4(),
                    channel=Channel.CALL112,
                    linked_at=datetime.now(UTC),
                    reason=name,
                ),
                id=uuid.uuid4(),
                source="/test",
            ),
            pipeline.topics,
        )
        for name in names
    ]


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay, *, idle_poll_s: float) -> AsyncIterator[OutboxRelay]:
    """The relay's table drain and its sender, running as a stage runs them."""
    tasks = [
        asyncio.create_task(relay.run(idle_poll_s=idle_poll_s)),
        asyncio.create_task(relay.send_queued()),
    ]
    try:
        yield relay
    finally:
        await relay.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def commit(pool: asyncpg.Pool, outgoing: Sequence[Outgoing]) -> None:
    """Store events as a stage's transaction does."""
    async with pool.acquire() as conn, conn.transaction():
        await write_outbox(conn, outgoing)


async def on_topic(pipeline: Pipeline, count: int) -> list[str]:
    """The reasons of the links on the topic in the order they first arrived, once `count`
    have (an event may arrive twice, which consumers ignore; never before an older one)."""

    async def enough() -> list[str] | None:
        events = await pipeline.events(pipeline.topics.incident_events)
        reasons = [e.payload.reason for e in events if isinstance(e.payload, CallLinkedV1)]
        first = list(dict.fromkeys(reasons))
        return first if len(first) >= count else None

    return await eventually(enough, timeout=20, what=f"{count} links on the topic")


async def unsent(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox"))


async def test_committed_events_leave_at_once_and_their_rows_go(
    pipeline: Pipeline, broker: FlakyBroker, pool: asyncpg.Pool
) -> None:
    # Rows a crashed instance left are sent first, from the table.
    await commit(pool, links(pipeline, "left-1", "left-2"))
    relay = OutboxRelay(pool=pool, broker=broker, schema="triage")  # type: ignore[arg-type]
    async with running(relay, idle_poll_s=60):
        await eventually(lambda: _none_left(pool), timeout=10, what="the left rows sent")
        # With the table drained, new events go from memory: the drain looks again only
        # in a minute, so arriving sooner proves it.
        fresh = links(pipeline, "fresh-1", "fresh-2", "fresh-3")
        await commit(pool, fresh)
        relay.send_committed(fresh)
        assert await on_topic(pipeline, 5) == ["left-1", "left-2", "fresh-1", "fresh-2", "fresh-3"]
        await eventually(lambda: _none_left(pool), timeout=10, what="sent rows deleted")
    records = await pipeline.records(pipeline.topics.incident_events)
    assert len(records) == 5, "each event sent once"
    # Sent from memory, an event names its type in a header (consumers may pass over it
    # unread); the table keeps no type, so what it sends is parsed by every reader.
    said = [dict(r.headers).get(TYPE_HEADER) for r in records]
    assert said == [None, None] + [event_type_for(CallLinkedV1).type.encode()] * 3


async def test_after_a_failed_send_no_later_event_overtakes(
    pipeline: Pipeline, broker: FlakyBroker, pool: asyncpg.Pool
) -> None:
    relay = OutboxRelay(pool=pool, broker=broker, schema="triage")  # type: ignore[arg-type]
    async with running(relay, idle_poll_s=0.2):
        first = links(pipeline, "a-1", "a-2")
        await commit(pool, first)
        broker.down = True
        relay.send_committed(first)  # fails: the events stay in the table
        await asyncio.sleep(0.5)
        second = links(pipeline, "b-1")
        await commit(pool, second)
        relay.send_committed(second)  # must not leave before a-1 and a-2
        broker.down = False
        assert await on_topic(pipeline, 3) == ["a-1", "a-2", "b-1"]
        await eventually(lambda: _none_left(pool), timeout=10, what="the table drained")
        third = links(pipeline, "c-1")
        await commit(pool, third)
        relay.send_committed(third)
        assert await on_topic(pipeline, 4) == ["a-1", "a-2", "b-1", "c-1"]
    assert await unsent(pool) == 0


async def test_a_slow_broker_fills_the_table_not_memory(
    pipeline: Pipeline, broker: FlakyBroker, pool: asyncpg.Pool
) -> None:
    relay = OutboxRelay(pool=pool, broker=broker, schema="triage", max_queued=2)  # type: ignore[arg-type]
    async with running(relay, idle_poll_s=0.2):
        await asyncio.sleep(0.5)  # the first drain found the table empty
        names = [f"n-{i}" for i in range(8)]
        for name in names:  # faster than any broker: nothing is sent in between
            batch = links(pipeline, name)
            await commit(pool, batch)
            relay.send_committed(batch)
            assert relay.queued <= 2
        assert await on_topic(pipeline, len(names)) == names
        await eventually(lambda: _none_left(pool), timeout=10, what="the table drained")


async def _none_left(pool: asyncpg.Pool) -> bool | None:
    return True if await unsent(pool) == 0 else None


async def test_a_batch_of_events_is_stored_in_the_order_given_and_once(
    pipeline: Pipeline, pool: asyncpg.Pool
) -> None:
    """The outbox takes a batch's events in one statement: their `seq` follows the order the
    stage gave them (the order leftovers are sent in), and an event stored before is kept
    where it was."""
    names = [f"e-{n:03d}" for n in range(300)]
    batch = links(pipeline, *names)
    async with pool.acquire() as conn, conn.transaction():
        await write_outbox(conn, batch[:100])
        await write_outbox(conn, batch[150:] + batch[50:150])  # 50..99 again, out of order
        stored = await conn.fetch("SELECT event_id, value FROM outbox ORDER BY seq")
    by_id = {o.event.id: o for o in batch}
    expected = batch[:100] + batch[150:] + batch[100:150]
    assert [r["event_id"] for r in stored] == [o.event.id for o in expected]
    assert all(r["value"] == by_id[r["event_id"]].value for r in stored)


async def stored_batches(settings: CommonSettings, topic: str) -> list[int]:
    """The bytes of record values in each record batch the topic's partitions hold, as the
    broker stores them (a consumer sees records, not the batches they came in)."""
    client = AIOKafkaClient(bootstrap_servers=settings.kafka_bootstrap())
    await client.bootstrap()
    try:
        client.add_topic(topic)
        await client.force_metadata_update()
        sizes: list[int] = []
        for partition in sorted(client.cluster.partitions_for_topic(topic) or ()):
            tp = TopicPartition(topic, partition)
            node = client.cluster.leader_for_partition(tp)
            fetch = FetchRequest(100, 1, 50_000_000, 0, [(topic, [(partition, 0, 50_000_000)])])
            response = await client.send(node, fetch)
            for _, answers in response.topics:
                stored = MemoryRecords(answers[0][-1])
                while stored.has_next():
                    batch = stored.next_batch()
                    sizes.append(sum(len(record.value) for record in batch))
        return sizes
    finally:
        await client.close()


async def test_a_burst_goes_as_a_few_large_record_batches(
    pipeline: Pipeline, broker: FlakyBroker, pool: asyncpg.Pool
) -> None:
    # The embedded broker reads through every record batch a partition holds on each fetch
    # that finds something new: sent in aiokafka's default 16 KiB batches, a burst cost the
    # broker about twice the CPU (bench/HISTORY.md).
    burst = links(pipeline, *(f"burst-{i}" for i in range(300)))
    await commit(pool, burst)
    relay = OutboxRelay(pool=pool, broker=broker, schema="triage")  # type: ignore[arg-type]
    async with running(relay, idle_poll_s=60):
        await eventually(lambda: _none_left(pool), timeout=20, what="the burst sent")
    sizes = await stored_batches(pipeline.settings, pipeline.topics.incident_events)
    assert sum(sizes) == sum(len(o.value) for o in burst)
    assert max(sizes) > 16 * 1024, sizes
