"""Fixtures: real broker and database per session, a fresh pipeline (topics + database) per test."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from schemas.vocabulary import UnitType
from services.common.db import use_json_codecs
from services.common.logging import configure_logging
from services.common.settings import (
    CommonSettings,
    DatabaseSettings,
    HomeSettings,
    KafkaSettings,
    TopicSettings,
)
from services.dispatcher.fleet import UnitSpec
from services.projector.queries import IncidentView
from services.stack.embedded import drop_database, recreate_database
from tests.infra import Infra, containers, docker_unavailable_reason, embedded

# The headless browser of the pages' tests (tests/browser.py).
pytest_plugins = ["tests.browser"]

T = TypeVar("T")

configure_logging(level="WARNING", json=True)

# A small fleet whose positions are known, so tests can say which unit must go.
TEST_FLEET: list[UnitSpec] = [
    UnitSpec(
        "AMB-LIMPUNG", UnitType.AMBULANCE, "RSUD Limpung", "RSUD Limpung", "Limpung", ("ALS",)
    ),
    UnitSpec("AMB-BATANG", UnitType.AMBULANCE, "PSC 119", "PSC 119", "Batang", ("ALS",)),
    UnitSpec(
        "AMB-GRINGSING",
        UnitType.AMBULANCE,
        "Puskesmas",
        "Puskesmas Gringsing I",
        "Gringsing",
        ("BLS",),
    ),
    UnitSpec("FIRE-BATANG", UnitType.FIRE_TRUCK, "Damkar", "Mako Damkar", "Batang", ("water",)),
    UnitSpec("POL-LIMPUNG", UnitType.POLICE, "Polsek Limpung", "Polsek Limpung", "Limpung"),
    UnitSpec("POL-BATANG", UnitType.POLICE, "Polres Batang", "Polres Batang", "Batang"),
]


@pytest.fixture(scope="session", params=["embedded", "containers"])
def infra(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Infra]:
    """The session's broker and PostgreSQL server: embedded always, containers with Docker."""
    if request.param == "containers":
        reason = docker_unavailable_reason()
        if reason:
            pytest.skip(reason)
        with containers() as found:
            yield found
        return
    with embedded(tmp_path_factory.mktemp("siaga-home")) as found:
        yield found


TEST_SESSION_MS = 4_000


def settings_for(infra: Infra, *, prefix: str, database: str, home: Path) -> CommonSettings:
    """Settings of one isolated pipeline: its own topic prefix and database."""
    return CommonSettings(
        home=HomeSettings(home=home),
        # The embedded broker holds a group's join for half the session timeout, so every
        # stage started cost 5 s at the default 10 s; 4 s still rides out a loaded machine.
        kafka=KafkaSettings(
            bootstrap=infra.kafka_bootstrap, partitions=3, session_timeout_ms=TEST_SESSION_MS
        ),
        topic=TopicSettings(prefix=prefix),
        database=DatabaseSettings(
            url=infra.database_url(database),
            pool_max=8,
            # both servers ask every role for a password
            role_password="siaga-test",
        ),
    )


def cli_env(settings: CommonSettings) -> dict[str, str]:
    """Environment for a `siaga` subprocess that talks to this pipeline."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env.update(
        SIAGA_KAFKA_BOOTSTRAP=settings.kafka_bootstrap(),
        SIAGA_DATABASE_URL=settings.database_url(),
        SIAGA_TOPIC_PREFIX=settings.topics.prefix,
        SIAGA_HOME=str(settings.home.home),
        # A command's own consumer group (rebuild, replay) joins as quickly as the stages'.
        SIAGA_KAFKA_SESSION_TIMEOUT_MS=str(settings.kafka.session_timeout_ms),
    )
    if settings.home.data_dir is not None:
        env["SIAGA_DATA_DIR"] = str(settings.home.data_dir)
    if settings.database.role_password is not None:
        env["SIAGA_DATABASE_ROLE_PASSWORD"] = settings.database.role_password.get_secret_value()
    return env


async def siaga_cli(
    settings: CommonSettings, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run `siaga ARGS` in a new process against this pipeline, without blocking the
    stages running in this event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(settings),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 15.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def progressing(
    count: Callable[[], Awaitable[int]], *, target: int, stall: float = 60.0, what: str = "work"
) -> int:
    """Poll `count` until it reaches `target`; fail only when it has not moved for `stall`
    seconds, so a loaded machine that is slow but moving is waited for, and a stuck one
    is not."""
    last, moved = -1, time.monotonic()
    while True:
        value = await count()
        if value >= target:
            return value
        now = time.monotonic()
        if value != last:
            last, moved = value, now
        elif now - moved > stall:
            raise AssertionError(f"{what}: stuck at {value} of {target} for {stall:.0f}s")
        await asyncio.sleep(0.2)


class Pipeline:
    """A running pipeline under test, with helpers to feed it and look into it."""

    def __init__(self, settings: CommonSettings, db: asyncpg.Pool) -> None:
        self.settings = settings
        self.db = db
        self.topics = settings.topics
        self.started_ms = int(time.time() * 1000)
        self.runtimes: dict[str, list[Any]] = {}
        self._running: dict[str, list[AsyncExitStack]] = {}
        self.overrides: dict[str, dict[str, Any]] = {}

    async def start(self, stage: str, **overrides: Any) -> Any:
        """Start one more instance of a stage (several share the consumer group); without
        overrides it gets those its first instance had."""
        from services.stages import start_stage

        overrides = overrides or self.overrides.get(stage, {})
        self.overrides.setdefault(stage, overrides)
        instance = AsyncExitStack()
        runtime = await instance.enter_async_context(start_stage(stage, self.settings, **overrides))
        self.runtimes.setdefault(stage, []).append(runtime)
        self._running.setdefault(stage, []).append(instance)
        return runtime

    async def stop_stage(self, stage: str) -> None:
        """Stop the most recently started instance of a stage (as a restart would)."""
        instance = self._running[stage].pop()
        self.runtimes[stage].pop()
        await instance.aclose()

    async def stop(self) -> None:
        """Stop every stage instance."""
        for stage in list(self._running):
            while self._running[stage]:
                await self.stop_stage(stage)

    async def publish(self, intakes: list[Any]) -> None:
        """Send intakes in one go, as a busy command centre would (their keys spread them
        over partitions, so different stage instances may handle them)."""
        from services.clients.operator import intake_event

        await self.send([intake_event(i) for i in intakes])

    async def send(self, events: list[Any]) -> None:
        """Send events (each to its topic) as any producer would."""
        from aiokafka import AIOKafkaProducer

        from services.common.kafka import send_events
        from services.common.outbox import Outgoing

        client = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap())
        await client.start()
        try:
            await send_events(client, [Outgoing.of(e, self.topics) for e in events])
        finally:
            await client.stop()

    async def command(self, *payloads: Any) -> list[Any]:
        """Send commands (or any payloads) as a supervisor's client would; their events."""
        from schemas.envelope import new_event

        events = [new_event(p, id=uuid.uuid4(), source="/test") for p in payloads]
        await self.send(events)
        return events

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows from any stage's schema (name it in the SQL)."""
        async with self.db.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """One value from the database."""
        async with self.db.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def records(self, topic: str) -> list[Any]:
        """Every record on a topic of this pipeline, up to the end its log has when called.

        The end is the high watermark of a fetch (`log_ends`), so a gap in fetching on a
        loaded machine cannot end the read early, as reading "until quiet" could."""
        from services.common.admin import log_ends, partitions_of, plain_consumer, read_range

        async with plain_consumer(self.settings) as consumer:
            partitions = await partitions_of(consumer, [topic])
            ends = await log_ends(consumer, partitions)
            starts = await consumer.beginning_offsets(partitions)
            return [record async for record in read_range(consumer, starts, ends)]

    async def events(self, topic: str) -> list[Any]:
        """Decoded events on a topic (undecodable records are skipped)."""
        from schemas.envelope import DecodeError, decode_event

        out = []
        for record in await self.records(topic):
            try:
                out.append(decode_event(record.value))
            except DecodeError:
                continue
        return out

    async def incident_for_intake(
        self, intake_id: uuid.UUID, *, with_units: int = 1, timeout: float = 15.0
    ) -> IncidentView:
        """Wait until the read model shows the intake's incident with `with_units` units."""
        from services.projector.queries import find_incident

        async def probe() -> IncidentView | None:
            async with self.db.acquire() as conn:
                await conn.execute("SET search_path TO readmodel")
                found = await find_incident(conn, str(intake_id))
            if found and len(found.units) >= with_units and found.category:
                return found
            return None

        return await eventually(probe, timeout=timeout, what=f"incident of intake {intake_id}")


@pytest.fixture
def fleet() -> list[UnitSpec]:
    """The fleet a test's pipeline starts with; override in a module for another."""
    return TEST_FLEET


@pytest.fixture
def stage_settings(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """Overrides per stage, e.g. {"dispatcher": {"settings": DispatcherSettings(...)}}; a test
    passes them with `@pytest.mark.parametrize("stage_settings", [...], indirect=True)`."""
    return dict(getattr(request, "param", {}))


def with_gateway(
    infra: Infra, *, home: Path, **gateway: Any
) -> contextlib.AbstractAsyncContextManager[Pipeline]:
    """The five stages and the gateway (on a free port, keys looked up afresh each time,
    a burst no test reaches, its consumer resting 100 ms rather than the 500 that spare a
    busy broker, unless `gateway` overrides its bootstrap's arguments)."""
    from services.gateway.settings import GatewaySettings
    from services.stages import PIPELINE

    gateway.setdefault(
        "settings",
        GatewaySettings(port=0, key_cache_s=0, burst=1000, batch_interval_ms=100),
    )
    return open_pipeline(
        infra,
        fleet=TEST_FLEET,
        home=home,
        stages=(*PIPELINE, "gateway"),
        stage_settings={"gateway": gateway},
    )


def gateway_url(pipe: Pipeline) -> str:
    """Where the pipeline's gateway serves."""
    found = pipe.runtimes["gateway"][0].api_url
    assert found
    return str(found)


async def new_api_key(pipe: Pipeline, name: str, *scopes: str) -> str:
    """A key made by the real `siaga apikey create`."""
    args = ["apikey", "create", name]
    for scope in scopes:
        args += ["--scope", scope]
    done = await siaga_cli(pipe.settings, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def gateway_on_a_free_port() -> dict[str, dict[str, Any]]:
    """Stage settings that start the gateway on a free port (its default is 8080), for a
    module whose `stages` include it."""
    from services.gateway.settings import GatewaySettings

    return {"gateway": {"settings": GatewaySettings(port=0)}}


@pytest.fixture
def stages() -> tuple[str, ...]:
    """The stages a test's pipeline runs in-process; override in a module to run fewer."""
    from services.stages import PIPELINE

    return PIPELINE


@contextlib.asynccontextmanager
async def open_pipeline(
    infra: Infra,
    *,
    fleet: list[UnitSpec],
    home: Path,
    stages: Sequence[str],
    stage_settings: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[Pipeline]:
    """A fresh database and topic prefix on `infra`, migrated and seeded, with `stages`
    running in this process; dropped afterwards."""
    from services.stack.setup import prepare

    name = f"t{uuid.uuid4().hex[:10]}"
    await recreate_database(infra.server_url, name)
    settings = settings_for(infra, prefix=name, database=name, home=home)
    await prepare(settings, fleet=fleet)
    db = await asyncpg.create_pool(
        settings.database_url(), min_size=1, max_size=4, init=use_json_codecs
    )
    assert db is not None
    pipe = Pipeline(settings, db)
    try:
        await asyncio.gather(
            *(pipe.start(stage, **(stage_settings or {}).get(stage, {})) for stage in stages)
        )
        yield pipe
    finally:
        await pipe.stop()
        await pipe.db.close()  # the pool the pipeline has now (a test may have replaced it)
        await drop_database(infra.server_url, name)


@pytest.fixture
async def pipeline(
    infra: Infra,
    fleet: list[UnitSpec],
    stages: tuple[str, ...],
    stage_settings: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> AsyncIterator[Pipeline]:
    """All five stages running in this process against the real broker and database,
    isolated by a topic prefix and a database of their own."""
    async with open_pipeline(
        infra,
        fleet=fleet,
        home=tmp_path / ".siaga",
        stages=stages,
        stage_settings=stage_settings,
    ) as pipe:
        yield pipe
