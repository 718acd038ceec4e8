"""How a stage consumes: records wrapped where they enter (FastStream's parser and decoder),
a busy stage's batch topped up, a paced stage's rest, and the rewind of what a failed batch
took."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from services.common.logging import get_logger
from services.common.records import Record

log = get_logger("kafka")


def _utf8(value: bytes | None) -> bool:
    """Whether a header value is text FastStream can decode."""
    if value is None:
        return False
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _decodable(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    """The record if FastStream can decode its headers, else a copy whose bad values are empty."""
    try:
        for _, value in record.headers:
            value.decode()  # what FastStream's parser does with each
    except (UnicodeDecodeError, AttributeError):  # not text, or no value at all
        headers = [(key, value if _utf8(value) else b"") for key, value in record.headers]
        return dataclasses.replace(record, headers=headers)
    return record


async def tolerant_parser(records: Any, original: Callable[[Any], Any]) -> Any:
    """FastStream's parser decodes headers as UTF-8 and would fail on hostile bytes, which
    would redeliver the batch forever: it parses copies it can decode, and its message keeps
    the records as they came, true header bytes and all, for the decoder."""
    if isinstance(records, tuple):
        message = await original(tuple(_decodable(record) for record in records))
    else:
        message = await original(_decodable(records))
    message.raw_message = records
    return message


async def the_records(message: Any) -> tuple[Record, ...]:
    """The batch's records, each wrapped once as a `Record`, for the stage; bodies are decoded
    by `schemas.decode_event`, which dead-letters what it cannot read."""
    raw = message.raw_message
    return tuple(Record.of(record) for record in (raw if isinstance(raw, tuple) else (raw,)))


@dataclass
class TopUp:
    """Adds to a busy stage's batch what reached the broker while it handled the last one.

    aiokafka fetches a partition again only once its buffered records are taken, so under
    load a batch holds what had arrived when the previous batch began, and a record that
    arrives just after that fetch waits almost two batches. Waiting up to `wait_ms` for the
    consumer's next fetch brings what has arrived since. Only when the stage spent longer
    on its last batch than it has been idle since: otherwise this batch was fetched just
    now, and waiting would only delay a quiet stage's record. A wait that brings nothing
    counts as idle, so a moderate stream does not keep the stage waiting.
    """

    wait_ms: int
    max_records: int
    clock: Callable[[], float] = time.monotonic
    _began: float = field(default=0.0, init=False)
    _busy: float = field(default=0.0, init=False)  # seconds the last batch was at work
    _ended: float | None = field(default=None, init=False)

    def begin(self) -> bool:
        """Mark a batch as begun; whether it should be topped up."""
        now = self.clock()
        self._began = now
        if self._ended is None or self.wait_ms <= 0:
            return False
        return self._busy > now - self._ended

    def waited_in_vain(self) -> None:
        """The top-up brought nothing: its wait was idle time, not work."""
        self._began = self.clock()

    def end(self) -> None:
        """Mark the batch as ended, handled or failed."""
        self._ended = self.clock()
        self._busy = self._ended - self._began

    async def more(self, consumer: AIOKafkaConsumer, records: Sequence[Record]) -> list[Record]:
        """What the consumer fetches within `wait_ms` after `records`, up to `max_records` in
        all; nothing if the fetch fails, and the batch goes on as it was."""
        room = self.max_records - len(records)
        if room <= 0:
            return []
        try:
            # During a rebalance getmany waits for the new assignment, past its own timeout;
            # the batch in hand must not wait for that.
            async with asyncio.timeout(4 * self.wait_ms / 1000 + 0.1):
                fetched = await consumer.getmany(timeout_ms=self.wait_ms, max_records=room)
        except (TimeoutError, KafkaError) as exc:
            log.warning("batch not topped up", error=f"{type(exc).__name__}: {exc}")
            return []
        last: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            last[key] = max(record.offset, last.get(key, -1))
        # After a rebalance the consumer reads again from the committed offset: what the
        # batch already holds must not come twice.
        return [
            Record.of(record)
            for partition in fetched.values()
            for record in partition
            if record.offset > last.get((record.topic, record.partition), -1)
        ]

    async def process(
        self,
        consumer: AIOKafkaConsumer | None,
        records: Sequence[Record],
        handle: Callable[[Sequence[Record]], Awaitable[Any]],
    ) -> None:
        """Handle the batch, topped up if the stage was busy; on failure rewind what was added.

        Whoever fetched `records` rewinds those (FastStream's nack), so no offset is
        committed past a record that was not handled.
        """
        added: list[Record] = []
        try:
            if self.begin() and consumer is not None:
                added = await self.more(consumer, records)
                if not added:
                    self.waited_in_vain()
            await handle((*records, *added) if added else records)
        except BaseException:
            if consumer is not None:
                rewind(consumer, added)
            raise
        finally:
            self.end()


@dataclass
class Pace:
    """Lets a stage that no intake's first dispatch waits for take a batch at most once per
    `interval_ms`.

    Tansu's in-memory log lists every record batch a partition holds on each fetch that
    finds something new, so every fetch makes the broker's work grow with its log. After
    a batch the stage rests for what is left of the interval since the batch began; its
    consumer has meanwhile fetched once, and the next batch takes that. So the stage costs
    the broker a fetch per interval, not one every few records, and a record waits one to
    two intervals. A full batch is a backlog: no rest after it. (What does go through such
    a stage on its way to a dispatch, the tracker's cancelled status that frees units, is
    that much later too.)
    """

    interval_ms: int
    max_records: int
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    _began: float = field(default=0.0, init=False)

    def begin(self) -> None:
        """Mark a batch as begun."""
        self._began = self.clock()

    async def rest(self, records: Sequence[Record]) -> None:
        """After a handled batch: wait out what is left of the interval since it began."""
        if self.interval_ms <= 0 or len(records) >= self.max_records:
            return
        left = self._began + self.interval_ms / 1000 - self.clock()
        if left > 0:
            await self.sleep(left)


def rewind(consumer: AIOKafkaConsumer, records: Sequence[Record]) -> None:
    """Seek each partition back to the earliest of `records`, which will be fetched again."""
    earliest: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        earliest[tp] = min(record.offset, earliest.get(tp, record.offset))
    for tp, offset in earliest.items():
        # A partition taken away meanwhile is read again by its new owner, from the
        # committed offset, which is not past this record.
        with contextlib.suppress(IllegalStateError):
            consumer.seek(tp, offset)
