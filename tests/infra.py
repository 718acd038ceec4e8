"""Real infrastructure for tests: the embedded broker and PostgreSQL, or Docker containers."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import on_database
from services.stack.embedded import EmbeddedBroker, EmbeddedPostgres


@dataclass(frozen=True)
class Infra:
    """Where the tests' broker and database server are."""

    name: str
    kafka_bootstrap: str
    server_url: str  # a database URL whose database we may create others from

    def database_url(self, database: str) -> str:
        """The URL of another database on the same server."""
        return on_database(self.server_url, database)


@contextlib.contextmanager
def embedded(home: Path) -> Iterator[Infra]:
    """Tansu (in-memory) and a private PostgreSQL, as `siaga up` runs them."""
    broker = EmbeddedBroker(log=home / "logs" / "tansu.log").start()
    postgres = EmbeddedPostgres(home=home).start()
    try:
        yield Infra("embedded", broker.bootstrap, postgres.url())
    finally:
        postgres.stop()
        broker.stop()
        # As root the cluster lives under /tmp, outside `home`: remove it with the session.
        shutil.rmtree(postgres.data_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            postgres.data_dir.parent.rmdir()


def docker_unavailable_reason() -> str | None:
    """Why containers cannot run here, or None when a Docker engine answers."""
    if os.environ.get("SIAGA_TEST_CONTAINERS", "auto") == "0":
        return "container tests disabled by SIAGA_TEST_CONTAINERS=0"
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:
        return f"no Docker engine reachable ({type(exc).__name__}); container variant skipped"
    return None


@contextlib.contextmanager
def containers() -> Iterator[Infra]:
    """Apache Kafka (KRaft) and PostgreSQL in Docker, through testcontainers."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka = KafkaContainer(os.environ.get("SIAGA_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.6.0"))
    postgres = PostgresContainer(
        os.environ.get("SIAGA_TEST_POSTGRES_IMAGE", "postgres:16-alpine"), driver=None
    )
    with kafka.with_kraft() as k, postgres as pg:
        yield Infra("containers", k.get_bootstrap_server(), pg.get_connection_url())
