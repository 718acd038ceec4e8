"""A busy stage's batch is topped up with what reached the broker meanwhile, and a failed
batch gives back what the top-up added: on the real broker, with a real consumer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.consuming import TopUp
from services.common.records import Record
from tests.conftest import eventually
from tests.infra import Infra


def _busy_top_up() -> TopUp:
    """A top-up whose stage has just finished a long batch, so it tops up the next one."""
    now = [0.0]
    top_up = TopUp(wait_ms=5_000, max_records=500, clock=lambda: now[0])
    top_up.begin()
    now[0] += 1.0
    top_up.end()
    return top_up


@pytest.fixture
async def partition(infra: Infra) -> AsyncIterator[TopicPartition]:
    """A fresh one-partition topic."""
    topic = f"test.top_up.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    yield TopicPartition(topic, 0)


@pytest.fixture
async def consumer(infra: Infra, partition: TopicPartition) -> AsyncIterator[AIOKafkaConsumer]:
    """A stage's consumer of that partition, with the stages' fetch wait."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    consumer.assign([partition])
    try:
        yield consumer
    finally:
        await consumer.stop()


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[AIOKafkaProducer]:
    """A client sending to the broker."""
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def _buffered_batch(
    partition: TopicPartition, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
) -> list[Record]:
    """`first` fetched into the consumer's buffer, then `second` sent: a batch taken now holds
    `first` only, since aiokafka fetches a partition again only once its buffer is taken."""
    await producer.send_and_wait(partition.topic, b"first", partition=0)

    async def fetched() -> bool | None:
        return consumer.highwater(partition) == 1 or None  # a fetch answered with `first`

    await eventually(fetched, what="the first record in the consumer's buffer")
    await producer.send_and_wait(partition.topic, b"second", partition=0)
    batch = await consumer.getmany(timeout_ms=5_000)
    records = [Record.of(record) for records in batch.values() for record in records]
    assert [r.value for r in records] == [b"first"]  # what the top-up is for
    return records


async def test_a_busy_stages_batch_takes_what_reached_the_broker_after_it_was_fetched(
    partition: TopicPartition, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
) -> None:
    batch = await _buffered_batch(partition, consumer, producer)
    top_up = _busy_top_up()
    handled: list[bytes] = []

    async def handle(records: Sequence[Any]) -> None:
        handled.extend(r.value for r in records)

    await top_up.process(consumer, batch, handle)
    assert handled == [b"first", b"second"]
    assert await consumer.position(partition) == 2


async def test_a_failed_batch_gives_back_the_records_its_top_up_added(
    partition: TopicPartition, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
) -> None:
    batch = await _buffered_batch(partition, consumer, producer)
    top_up = _busy_top_up()
    seen: list[bytes] = []

    async def fail(records: Sequence[Any]) -> None:
        seen.extend(r.value for r in records)
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        await top_up.process(consumer, batch, fail)
    assert seen == [b"first", b"second"]
    # The consumer's caller (FastStream's nack) rewinds to `first`; the top-up rewound
    # `second`, so a commit now could not pass it unhandled.
    assert await consumer.position(partition) == 1
    again = await consumer.getmany(timeout_ms=5_000)
    assert [r.value for records in again.values() for r in records] == [b"second"]
