"""`siaga replay`: re-read a topic from an offset or a time, into a new consumer group or a file."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from aiokafka import ConsumerRecord, TopicPartition

from services.common.admin import (
    committed_offsets,
    log_ends,
    offsets_at,
    partitions_of,
    plain_consumer,
    read_range,
)
from services.common.settings import CommonSettings


class ReplayError(ValueError):
    """A replay that cannot be done as asked; the message says why."""


def resolve_topic(settings: CommonSettings, name: str) -> str:
    """A topic of this deployment by full name or by its name without the prefix."""
    known = settings.topics.all()
    for candidate in (name, f"{settings.topics.prefix}.{name}"):
        if candidate in known:
            return candidate
    raise ReplayError(f"unknown topic {name!r}; topics are: {', '.join(known)}")


@dataclass(frozen=True)
class Span:
    """Where a replay starts and ends in each partition."""

    starts: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]

    @property
    def records(self) -> int:
        """How many records lie between the starts and the ends."""
        return sum(max(0, self.ends[tp] - s) for tp, s in self.starts.items())


async def span(
    settings: CommonSettings,
    topics: list[str],
    *,
    from_offset: int | None = None,
    since_ms: int | None = None,
    partition: int | None = None,
) -> Span:
    """Start offsets (an offset in every partition, or the first record at a time) and the
    current ends of `topics`."""
    async with plain_consumer(settings) as consumer:
        partitions = [
            tp
            for tp in await partitions_of(consumer, topics)
            if partition is None or tp.partition == partition
        ]
        if not partitions:
            raise ReplayError("no such partition")
        ends = await log_ends(consumer, partitions)
        if since_ms is not None:
            starts = await offsets_at(consumer, partitions, since_ms=since_ms, ends=ends)
        else:
            first = await consumer.beginning_offsets(partitions)
            starts = {tp: min(max(from_offset or 0, first[tp]), ends[tp]) for tp in partitions}
    return Span(starts, ends)


async def replay_to_group(settings: CommonSettings, *, group: str, where: Span) -> None:
    """Commit `where.starts` for a consumer group that has never committed, so whatever
    consumes as that group re-reads from there."""
    async with plain_consumer(settings, group_id=group) as consumer:
        partitions = sorted(where.starts)
        already = {
            tp: o
            for tp, o in (await committed_offsets(consumer, partitions)).items()
            if o is not None
        }
        if already:
            raise ReplayError(
                f"consumer group {group!r} already has committed offsets; replay into a new group"
            )
        consumer.assign(partitions)
        await consumer.commit({tp: where.starts[tp] for tp in partitions})


def record_json(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    """A record as one JSON object: position, time, key, headers and the value (as text
    when it is UTF-8, else base64)."""
    out: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": _text_or_b64(record.key),
        "headers": [[k, _text_or_b64(v)] for k, v in record.headers or ()],
    }
    value = record.value or b""
    try:
        out["value"] = value.decode()
    except UnicodeDecodeError:
        out["value_b64"] = base64.b64encode(value).decode()
    return out


def _text_or_b64(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()


async def replay_to_file(
    settings: CommonSettings,
    *,
    where: Span,
    out: TextIO,
    keep: Callable[[ConsumerRecord[bytes, bytes]], bool] = lambda _: True,
) -> int:
    """Write every record of the span to `out` as JSON lines; returns how many."""
    written = 0
    async with plain_consumer(settings) as consumer:
        async for record in read_range(consumer, where.starts, where.ends):
            if keep(record):
                out.write(json.dumps(record_json(record), ensure_ascii=False) + "\n")
                written += 1
    return written
