"""The running shell of a stage: pool, broker, batch subscriber and outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka import TopicPartition as FsTopicPartition

from schemas.common import Contract
from services.common.assignment import AssignmentError, read_assignment
from services.common.consuming import Pace, TopUp, the_records, tolerant_parser
from services.common.db import STAGE_SCHEMAS, close_pool, create_pool
from services.common.health import HealthServer, StageMetrics
from services.common.inbox import inbox_pruner
from services.common.kafka import build_broker
from services.common.logging import get_logger
from services.common.outbox import OutboxRelay
from services.common.processing import BatchProcessor, BatchState, Handler
from services.common.records import Record
from services.common.settings import CommonSettings, GcSettings, KafkaSettings
from services.common.stage import Stage
from services.common.timers import PeriodicJob, run_periodically

log = get_logger("runtime")

# Where a consumer group with no committed offset starts: at the oldest event kept, so a
# new stage (or one whose offsets expired) misses nothing. KEDA's lag triggers must count
# lag the same way (deploy/k8s/keda).
AUTO_OFFSET_RESET: Final = "earliest"


def settle_heap(settings: GcSettings) -> None:
    """Tune the garbage collector of a stage process once its start-up is done.

    With Python's defaults a busy stage spent 14-27 % of its CPU in the collector
    (measured in the bench): every few hundred events' worth of pydantic models set off a
    young collection, and the older generations kept rescanning the ~90,000 long-lived
    objects of start-up (gazetteer, rules, compiled models). Those are moved out of the
    collector's sight, and young collections come less often; a batch's garbage is
    small and freed by reference counting, so memory stays flat.
    """
    if settings.young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(settings.young_threshold, older, oldest)


@dataclass
class BatchLoop:
    """What a stage's subscriber does with each batch it is given: top it up when the
    stage is busy, have the processor handle it, then rest if the stage is paced. A batch
    that fails is rewound and given again, after a pause that grows with each failure in a
    row, so a persistent fault does not spin; a failed batch takes that pause instead of
    the rest."""

    processor: BatchProcessor
    top_up: TopUp
    pace: Pace
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    failures_in_a_row: int = 0
    busy: bool = False  # a batch is in hand (being topped up or handled)
    pending: list[TopicPartition] | None = None  # an assignment to take once it is handled

    @classmethod
    def for_stage(
        cls, processor: BatchProcessor, kafka: KafkaSettings, *, batch_interval_ms: int
    ) -> BatchLoop:
        """The loop of a stage; a paced stage (`batch_interval_ms`) needs no top-up, since
        its batch gathers while it rests."""
        return cls(
            processor,
            TopUp(wait_ms=0 if batch_interval_ms else kafka.top_up_ms, max_records=kafka.max_batch),
            Pace(interval_ms=batch_interval_ms, max_records=kafka.max_batch),
        )

    async def handle(self, consumer: AIOKafkaConsumer | None, records: Sequence[Record]) -> None:
        """Handle one batch (then rest, if paced, and take a share of partitions that came
        meanwhile); raises, after the pause, if it failed."""
        self.pace.begin()
        self.busy = True
        try:
            await self.top_up.process(consumer, records, self.processor.process)
            self.failures_in_a_row = 0
            await self.pace.rest(records)
            if self.pending is not None and consumer is not None:
                # Everything fetched so far is handled: committed now, since a new assignment
                # forgets the consumer's positions (FastStream's commit after this finds none).
                await consumer.commit()
                self._assign(consumer)
        except Exception as exc:
            # FastStream's nack rewinds what it fetched, the top-up what it added.
            self.failures_in_a_row += 1
            self.processor.metrics.error("batch_failed")
            pause = min(0.1 * 2**self.failures_in_a_row, 10.0)
            log.error(
                "batch failed, will be redelivered",
                stage=self.processor.stage,
                error=f"{type(exc).__name__}: {exc}",
                retry_in_s=pause,
            )
            await self.sleep(pause)
            raise
        finally:
            self.busy = False

    async def reassign(
        self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
    ) -> None:
        """Read `partitions` from now on: at once when no batch is in hand, else once it is
        handled and committed. Each partition is read on from its committed offset, so a
        batch fetched but not yet begun is fetched again (its records found in the inbox)."""
        self.pending = list(partitions)
        self.settle(consumer)

    def settle(self, consumer: AIOKafkaConsumer) -> None:
        """Take the share that waited for a batch, if none is in hand now."""
        if not self.busy:
            self._assign(consumer)

    def _assign(self, consumer: AIOKafkaConsumer) -> None:
        if self.pending is None:
            return
        partitions, self.pending = self.pending, None
        consumer.assign(partitions)
        self.assigned(partitions)

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """Say in the stage's log which partitions it reads from now on."""
        log.info(
            "partitions assigned",
            stage=self.processor.stage,
            partitions=[f"{tp.topic}:{tp.partition}" for tp in partitions],
        )


def subscribe(
    broker: KafkaBroker,
    *,
    topics: Sequence[str] = (),
    partitions: Sequence[TopicPartition] = (),
    group_id: str,
    loop: BatchLoop,
    settings: CommonSettings,
) -> Any:
    """Register a batch subscriber of `topics` (as a member of the consumer group
    `group_id`) or of `partitions` (given by `siaga up`'s supervisor: no group is joined,
    offsets are still committed under `group_id`), whose offsets are committed only after
    `loop` has handled a batch; returns it (its `consumer` is the aiokafka consumer once
    started)."""
    kafka = settings.kafka
    subscriber = broker.subscriber(
        *topics,
        partitions=[FsTopicPartition(tp.topic, tp.partition) for tp in partitions],
        group_id=group_id,
        batch=True,
        max_records=kafka.max_batch,
        batch_timeout_ms=kafka.batch_timeout_ms,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        auto_offset_reset=AUTO_OFFSET_RESET,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=tolerant_parser,
        decoder=the_records,
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=min(1_000, kafka.session_timeout_ms // 3),
    )

    @subscriber
    async def consume(records: tuple[Record, ...]) -> None:
        """The stage's batch, handled by its loop."""
        await loop.handle(subscriber.consumer, records)

    return subscriber


class AssignmentFollower:
    """A stage process under `siaga up` reads the partitions its supervisor gives it in a
    file (services/common/assignment.py), and follows the file as it changes: the first
    non-empty assignment starts its subscriber (until then the process stands by), a later
    one is taken between batches."""

    def __init__(
        self,
        path: Path,
        *,
        start: Callable[[list[TopicPartition]], Awaitable[Any]],
        loop: BatchLoop,
    ) -> None:
        self.path = path
        self._start = start
        self._loop = loop
        self._seen: tuple[int, int] | None = None
        self._missing_said = False
        self.subscriber: Any = None
        self.partitions: list[TopicPartition] = []  # the share taken (or waiting for a batch)

    def _changed(self) -> bool:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if not self._missing_said:
                self._missing_said = True
                log.warning(
                    "no assignment file: standing by until there is one",
                    stage=self._loop.processor.stage,
                    path=str(self.path),
                )
            return False
        seen = (stat.st_mtime_ns, stat.st_ino)
        changed, self._seen = seen != self._seen, seen
        return changed

    async def check(self) -> None:
        """Take the file's share if it changed since the last look (or the last try failed),
        and a share that waited for a batch once the batch is done."""
        consumer = getattr(self.subscriber, "consumer", None)
        if not self._changed():
            if consumer is not None:
                self._loop.settle(consumer)
            return
        try:
            partitions = read_assignment(self.path)
        except AssignmentError as exc:
            log.error("assignment not taken", stage=self._loop.processor.stage, error=str(exc))
            return
        if partitions == self.partitions:
            return
        if consumer is not None:
            await self._loop.reassign(consumer, partitions)
        elif partitions:
            self.subscriber = await self._start(partitions)
            self._loop.assigned(partitions)
        self.partitions = partitions  # only once taken: a failed start is tried again

    async def follow(self, *, every_s: float = 0.05, retry_s: float = 1.0) -> None:
        """Look at the file every `every_s` seconds, for as long as the stage runs."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.check()
            except Exception:
                # Tried again (the file read afresh) after `retry_s`; the stage goes on
                # reading what it has meanwhile.
                self._seen = None
                log.exception("taking the assignment failed", stage=self._loop.processor.stage)
                await asyncio.sleep(retry_s)


@dataclass
class StageRuntime:
    """A running stage: what tests and `siaga run` hold on to."""

    name: str
    settings: CommonSettings
    pool: asyncpg.Pool
    broker: KafkaBroker
    processor: BatchProcessor
    relay: OutboxRelay
    subscriber: Any = None  # a consumer group's member; None when `follower` reads
    follower: AssignmentFollower | None = None  # under `siaga up`: the supervisor's partitions
    health: HealthServer | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    api_url: str | None = None  # the gateway's HTTP API, where a stage serves one

    @property
    def metrics(self) -> StageMetrics:
        """The stage's Prometheus metrics."""
        return self.processor.metrics

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        """The running aiokafka consumer of the stage's subscriber (None while a process
        under `siaga up` stands by with no partition)."""
        subscriber = self.follower.subscriber if self.follower is not None else self.subscriber
        return getattr(subscriber, "consumer", None)

    @property
    def http_port(self) -> int | None:
        """Port of /healthz, /readyz and /metrics, when served."""
        return self.health.port if self.health is not None else None

    async def _database_reachable(self) -> None:
        """The readiness check of the database."""
        await self.pool.fetchval("SELECT 1")

    async def _broker_reachable(self) -> None:
        """The readiness check of the broker."""
        if not await self.broker.ping(timeout=1.5):
            raise ConnectionError("broker did not answer")

    async def start_health(self) -> None:
        """Serve the stage's probes and metrics where settings say."""
        http = self.settings.http
        self.health = HealthServer(
            metrics=self.metrics,
            checks={"database": self._database_reachable, "broker": self._broker_reachable},
            consumer=lambda: self.consumer,
        )
        port = await self.health.start(http.host, http.port)
        log.info("health and metrics served", stage=self.name, url=f"http://{http.host}:{port}")

    async def start(self, jobs: Sequence[PeriodicJob]) -> None:
        """Start the broker, the probes if asked, the outbox relay and the timer `jobs`."""
        await self.broker.start()
        relay, name = self.relay, self.name
        if self.follower is not None:
            await self.follower.check()
            self.tasks.append(
                asyncio.create_task(self.follower.follow(), name=f"{name}-assignment")
            )
        if self.settings.http.enabled:
            await self.start_health()
        self.tasks.append(asyncio.create_task(relay.run(), name=f"{name}-outbox-relay"))
        self.tasks.append(asyncio.create_task(relay.send_queued(), name=f"{name}-sender"))
        for job in (*jobs, inbox_pruner(self.settings.inbox)):
            self.tasks.append(
                asyncio.create_task(
                    run_periodically(job, pool=self.pool, publish=relay.send_committed),
                    name=f"{name}-{job.name}",
                )
            )

    async def stop(self) -> None:
        """Stop what `start` started (the pool is its owner's to close)."""
        await self.relay.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.health is not None:
            await self.health.stop()
        await self.broker.stop()


def _wire(
    stage: Stage,
    settings: CommonSettings,
    pool: asyncpg.Pool,
    *,
    schema: str,
    handlers: Mapping[type[Contract], Handler],
    group_id: str | None,
    new_state: Callable[[], BatchState] | None,
    batch_interval_ms: int,
) -> StageRuntime:
    """The stage's broker, outbox relay, batch processor and subscriber, not yet started."""
    broker = build_broker(settings, client_id=f"siaga-{stage.name}")
    metrics = StageMetrics(stage.name)
    relay = OutboxRelay(
        pool=pool,
        broker=broker,
        schema=schema,
        batch_size=settings.kafka.max_batch,
        metrics=metrics,
        max_queued=2 * settings.kafka.max_batch,
    )
    processor = BatchProcessor(
        stage=stage.name,
        pool=pool,
        topics=settings.topics,
        handlers=handlers,
        inbox_key=stage.inbox_key,
        publish=relay.send_committed,
        owned_topics=stage.owned_topics(settings.topics),
        metrics=metrics,
        new_state=new_state,
    )
    loop = BatchLoop.for_stage(processor, settings.kafka, batch_interval_ms=batch_interval_ms)
    group = group_id or stage.group_id(settings.topics)
    given = settings.kafka.assignment_file
    if given is not None and group_id is None:  # a rebuild's own group reads every partition

        async def start(partitions: list[TopicPartition]) -> Any:
            subscriber = subscribe(
                broker, partitions=partitions, group_id=group, loop=loop, settings=settings
            )
            try:
                await subscriber.start()
            except Exception:
                with contextlib.suppress(Exception):
                    await subscriber.stop()  # half started: the next try makes a new one
                raise
            return subscriber

        follower = AssignmentFollower(given, start=start, loop=loop)
        return StageRuntime(stage.name, settings, pool, broker, processor, relay, follower=follower)
    subscriber = subscribe(
        broker,
        topics=stage.subscriptions(settings.topics),
        group_id=group,
        loop=loop,
        settings=settings,
    )
    return StageRuntime(stage.name, settings, pool, broker, processor, relay, subscriber)


@contextlib.asynccontextmanager
async def stage_runtime(
    *,
    stage: Stage,
    settings: CommonSettings,
    handlers: Sequence[Handler],
    schema: str | None = None,
    group_id: str | None = None,
    pool: asyncpg.Pool | None = None,
    jobs: Sequence[PeriodicJob] = (),
    new_state: Callable[[], BatchState] | None = None,
    batch_interval_ms: int = 0,
) -> AsyncIterator[StageRuntime]:
    """Build, start and finally stop one stage; the composition roots call this.

    The stage's declaration gives its topics, the ones whose undecodable messages it
    dead-letters, its inbox key and its group (`group_id` overrides it, for a rebuild);
    `handlers` are matched to the payloads it consumes by their signatures (see
    `Stage.handlers`). `jobs` are the stage's database timers (ack timeouts, SLA breaches,
    due dates; every stage also prunes its inbox); `new_state` makes what its handlers keep
    for one transaction (see `BatchState` and `UnitOfWork`); `batch_interval_ms`, for a stage no intake's first dispatch
    waits for, how seldom it takes a batch (see `Pace`).
    """
    name = stage.name
    handler_map = stage.handlers(*handlers)  # a mismatch fails before the pool is made
    schema = schema or STAGE_SCHEMAS[name]
    own_pool = pool is None
    if pool is None:
        pool = await create_pool(settings, schema=schema, application=f"siaga-{name}", role=name)
    runtime = _wire(
        stage,
        settings,
        pool,
        schema=schema,
        handlers=handler_map,
        group_id=group_id,
        new_state=new_state,
        batch_interval_ms=batch_interval_ms,
    )
    try:
        await runtime.start(jobs)
        log.info("stage started", stage=name, topics=stage.subscriptions(settings.topics))
        yield runtime
    finally:
        try:
            await runtime.stop()
        finally:
            # Whatever failed above, the pool goes: a pool left open keeps reconnecting, for
            # the life of the process, to a server that may be long gone.
            if own_pool:
                await close_pool(pool)
        log.info("stage stopped", stage=name)
