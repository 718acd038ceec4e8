"""On a real broker and database server, the bench drops the topics and the database a
stack made, and nothing else: run against the embedded ones (and Kafka's container)."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from bench.run import ROLE_PREFIX, Infrastructure
from services.common.admin import ensure_topics
from services.common.kafka import client_options
from services.common.settings import (
    CommonSettings,
    DatabaseSettings,
    HomeSettings,
    KafkaSettings,
    TopicSettings,
)
from services.stack.embedded import recreate_database
from tests.infra import Infra

pytestmark = pytest.mark.integration


def _settings(infra: Infra, *, prefix: str, database_url: str, home: Path) -> CommonSettings:
    return CommonSettings(
        home=HomeSettings(home=home),
        kafka=KafkaSettings(bootstrap=infra.kafka_bootstrap, partitions=1),
        topic=TopicSettings(prefix=prefix),
        database=DatabaseSettings(url=database_url, role_prefix=ROLE_PREFIX),
    )


async def _topics(settings: CommonSettings) -> set[str]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _databases(server_url: str) -> set[str]:
    conn = await asyncpg.connect(server_url)
    try:
        return {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


async def test_a_stack_on_a_real_broker_and_server_leaves_nothing_of_its_own_behind(
    infra: Infra, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    infrastructure = Infrastructure(infra.kafka_bootstrap, infra.server_url, None)
    database = infrastructure.database_name("fresh")
    stack = _settings(
        infra,
        prefix=infrastructure.topic_prefix("fresh"),
        database_url=infrastructure.database_url(database),
        home=tmp_path,
    )
    neighbour = _settings(
        infra, prefix=f"neighbour-{uuid.uuid4().hex[:8]}", database_url="unused", home=tmp_path
    )
    await recreate_database(infra.server_url, database)
    await ensure_topics(stack)
    await ensure_topics(neighbour)
    assert set(stack.topics.all()) <= await _topics(stack)

    # Like the fresh stack, this one never made the baseline's topics: no failure either.
    await infrastructure.drop(stack, database=database)

    left = await _topics(stack)
    assert not set(stack.topics.all()) & left
    assert set(neighbour.topics.all()) <= left
    assert database not in await _databases(infra.server_url)
    assert capsys.readouterr().out == ""  # nothing to report


def test_the_bench_removes_the_embedded_database_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIAGA_DATABASE_URL", raising=False)
    monkeypatch.setenv("SIAGA_KAFKA_BOOTSTRAP", "127.0.0.1:1")  # no broker is started
    # Set here, so the bench's own setdefault leaves it, and it goes with the test.
    monkeypatch.setenv("SIAGA_DATABASE_ROLE_PASSWORD", "bench-test")
    infrastructure = Infrastructure.start(tmp_path)
    assert infrastructure.postgres is not None
    cluster = infrastructure.postgres.data_dir
    assert (cluster / "PG_VERSION").exists()
    infrastructure.stop()
    assert not cluster.exists()
    assert not (tmp_path / "postgres.password").exists()
