"""Broker construction, topic creation and the Kafka settings every client shares."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
)

from schemas.envelope import record_headers
from services.common.logging import get_logger
from services.common.outbox import Outgoing
from services.common.settings import CommonSettings

if TYPE_CHECKING:
    # FastStream is the stages' (a tenth of a second to import): short-lived clients such
    # as `siaga report` use plain aiokafka and never load it.
    from faststream.kafka import KafkaBroker
    from faststream.security import BaseSecurity

log = get_logger("kafka")


def _ssl_context(settings: CommonSettings) -> ssl.SSLContext:
    """TLS to the brokers: their CA (system bundle by default) and, for mTLS, our certificate."""
    kafka = settings.kafka
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.ssl_certfile is not None:
        context.load_cert_chain(
            str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
        )
    return context


def client_options(settings: CommonSettings) -> dict[str, Any]:
    """aiokafka connection options (address and SASL/SSL) from settings."""
    kafka = settings.kafka
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap(),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password
    return options


def _security(settings: CommonSettings) -> BaseSecurity | None:
    from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

    kafka = settings.kafka
    use_ssl = kafka.security_protocol in ("SSL", "SASL_SSL")
    context = _ssl_context(settings) if use_ssl else None
    if kafka.security_protocol.startswith("SASL"):
        user, password = kafka.sasl_username or "", kafka.sasl_password or ""
        mechanism = (kafka.sasl_mechanism or "PLAIN").upper()
        sasl = {"SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}.get(
            mechanism, SASLPlaintext
        )
        return sasl(user, password, ssl_context=context, use_ssl=use_ssl)
    if use_ssl:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


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

    async def more(
        self, consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> list[ConsumerRecord[Any, Any]]:
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
            record
            for partition in fetched.values()
            for record in partition
            if record.offset > last.get((record.topic, record.partition), -1)
        ]

    async def process(
        self,
        consumer: AIOKafkaConsumer | None,
        records: Sequence[ConsumerRecord[Any, Any]],
        handle: Callable[[Sequence[ConsumerRecord[Any, Any]]], Awaitable[Any]],
    ) -> None:
        """Handle the batch, topped up if the stage was busy; on failure rewind what was added.

        Whoever fetched `records` rewinds those (FastStream's nack), so no offset is
        committed past a record that was not handled.
        """
        added: list[ConsumerRecord[Any, Any]] = []
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

    async def rest(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """After a handled batch: wait out what is left of the interval since it began."""
        if self.interval_ms <= 0 or len(records) >= self.max_records:
            return
        left = self._began + self.interval_ms / 1000 - self.clock()
        if left > 0:
            await self.sleep(left)


def rewind(consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
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


def build_broker(settings: CommonSettings, *, client_id: str) -> KafkaBroker:
    """A FastStream Kafka broker tuned for low latency; FastStream's per-message logs are off,
    and so is its dependency injection: a subscriber is called with the batch's records,
    where injecting the message ran a worker-thread hop per batch."""
    from faststream.kafka import KafkaBroker

    return KafkaBroker(
        settings.kafka_bootstrap(),
        apply_types=False,
        client_id=client_id,
        acks="all",
        linger_ms=settings.kafka.linger_ms,
        logger=None,
        security=_security(settings),
        graceful_timeout=10.0,
    )


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


def producer(settings: CommonSettings, *, request_timeout_ms: int = 10_000) -> AIOKafkaProducer:
    """A plain aiokafka producer for short-lived clients (CLI, demo, tests)."""
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        linger_ms=settings.kafka.linger_ms,
        request_timeout_ms=request_timeout_ms,
        client_id="siaga-client",
    )


async def send_events(producer_: AIOKafkaProducer, outgoing: list[Outgoing]) -> None:
    """Send events, pipelined, and wait until the broker has every one."""
    futures = [
        await producer_.send(
            o.topic,
            o.value,
            key=o.key,
            headers=record_headers(o.event),
        )
        for o in outgoing
    ]
    await asyncio.gather(*futures)


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
