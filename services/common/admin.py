"""The log by hand, outside any stage's consumer group: topics created, partitions, log
ends, committed offsets, positions by time, and records read by range or as they come."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
)

from services.common.kafka import client_options
from services.common.logging import get_logger
from services.common.settings import CommonSettings

log = get_logger("kafka")


async def ensure_topics(
    settings: CommonSettings, *, names: Sequence[str] | None = None, attempts: int = 50
) -> None:
    """Create every topic of the deployment (or those `names`) if missing, with the
    deployment's partitions and replication (idempotent; waits for the broker)."""
    topics = list(settings.topics.all() if names is None else names)
    admin = AIOKafkaAdminClient(**client_options(settings), client_id="siaga-admin")
    for attempt in range(attempts):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2)
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, settings.kafka.partitions, settings.kafka.replication_factor)
            for name in topics
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:  # several processes racing to create: fine if they exist
                if not set(topics) <= set(await admin.list_topics()):
                    raise exc
    finally:
        await admin.close()


async def records_since(
    settings: CommonSettings, topics: list[str], *, since_ms: int, pace_s: float = 0.0
) -> AsyncGenerator[ConsumerRecord[bytes, bytes], None]:
    """Every record of `topics` from a point in time on, as it arrives (no consumer group);
    with `pace_s`, what arrived is read every `pace_s` seconds, for a reader that need not
    see each record at once and would cost the broker a fetch per record.

    Positions come from `offsets_for_times`, which Kafka and Tansu both answer correctly;
    partitions with nothing that recent start at the end, which Tansu may report up to a
    batch too low, so records older than `since_ms` are skipped.
    """
    consumer = AIOKafkaConsumer(
        **client_options(settings), enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        await consumer.topics()  # loads metadata, so partitions_for_topic knows every topic
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        found = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        for tp in partitions:
            position = found.get(tp)
            if position is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, position.offset)
        while True:
            try:
                fetched = await consumer.getmany(timeout_ms=1_000)
            except RecordTooLargeError as exc:  # skipped, as aiokafka's own iteration does
                log.warning("record too large to fetch, skipped", error=str(exc))
                continue
            for record in (r for records in fetched.values() for r in records):
                if record.timestamp >= since_ms:
                    yield record
            if pace_s > 0:
                await asyncio.sleep(pace_s)
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def plain_consumer(
    settings: CommonSettings, *, group_id: str | None = None, **options: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer that joins no group (partitions are assigned by hand); with
    `group_id` it can read and commit that group's offsets without disturbing its members."""
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=group_id,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        **options,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics`, in order (topics the broker does not know are skipped)."""
    known = await consumer.topics()  # also loads metadata for partitions_for_topic
    return [
        TopicPartition(topic, p)
        for topic in topics
        if topic in known
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]


async def log_ends(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], *, timeout_s: float = 10.0
) -> dict[TopicPartition, int]:
    """The end offset (next offset to be written) of each partition, right on both brokers.

    `end_offsets()` (ListOffsets "latest") can be a batch too low on Tansu, but the high
    watermark in a fetch response is right on both: so seek there and fetch once per
    partition, and take the larger of the two. Reassigns `consumer`.
    """
    if not partitions:
        return {}
    consumer.assign(partitions)
    listed = await consumer.end_offsets(partitions)
    for tp in partitions:
        consumer.seek(tp, listed[tp])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while any(consumer.last_poll_timestamp(tp) is None for tp in partitions):
        if loop.time() > deadline:
            missing = [
                f"{tp.topic}:{tp.partition}"
                for tp in partitions
                if consumer.last_poll_timestamp(tp) is None
            ]
            raise KafkaError(f"no fetch answer for {', '.join(missing)} within {timeout_s}s")
        await consumer.getmany(*partitions, timeout_ms=100)
    return {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in partitions}


async def committed_offsets(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """The committed offset of each partition for the consumer's group (None: none yet).
    A consumer's `committed()` works on both brokers; the admin client's
    `list_consumer_group_offsets` fails on Tansu."""
    return {tp: await consumer.committed(tp) for tp in partitions}


async def read_range(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record from `starts` up to (not including) `ends`, partition by partition
    interleaved as fetched; stops when every partition has reached its end."""
    todo = {tp for tp in starts if starts[tp] < ends.get(tp, 0)}
    if not todo:
        return
    consumer.assign(sorted(todo))
    for tp in todo:
        consumer.seek(tp, starts[tp])
    while todo:
        batches = await consumer.getmany(*todo, timeout_ms=500, max_records=1000)
        for tp, records in batches.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break
                yield record
        for tp in list(todo):
            if await consumer.position(tp) >= ends[tp]:
                todo.discard(tp)
                consumer.pause(tp)


async def offsets_at(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    *,
    since_ms: int,
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """The first offset at or after `since_ms` in each partition (its end when none is that
    recent), from `offsets_for_times`, which both brokers answer correctly."""
    if not partitions:
        return {}
    found = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
    return {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in partitions}
