"""Faults on the real broker and database: a stage killed mid-stream, PostgreSQL gone for
20 s. Figures (throughput, recovery times) are printed, never asserted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from schemas.events import IntakeReceivedV1
from schemas.vocabulary import Channel
from services.clients.operator import intake_event, new_intake
from services.common.admin import committed_offsets, partitions_of, plain_consumer
from services.common.db import use_json_codecs
from services.common.kafka import send_events
from services.common.outbox import Outgoing
from services.stack.embedded import EmbeddedPostgres
from services.stages import STAGES, group_id
from tests.conftest import TEST_FLEET, Pipeline, cli_env, eventually, open_pipeline
from tests.infra import Infra

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _every_complaint_its_own_incident(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests count one incident per intake; linking repeat complaints about one
    place (tested in test_triage_pipeline.py) would make that count wrong."""
    monkeypatch.setenv("SIAGA_TRIAGE_DUPLICATE_CATEGORIES", "")


COMPLAINTS = (
    "jalan berlubang besar di depan pasar {}",
    "lampu jalan mati di dekat masjid {}",
    "sampah menumpuk di pinggir sungai {}",
    "saluran air tersumbat di gang {}",
)


# No numbers in the texts: "gang 119" would rightly be a call for an ambulance.
SIDES = ("utara", "selatan", "timur", "barat", "tengah")


def _intakes(n: int, *, offset: int = 0) -> list[IntakeReceivedV1]:
    """Complaints from 97 callers, so caller history counts every intake."""
    return [
        new_intake(
            channel=Channel.WHATSAPP,
            text=COMPLAINTS[i % len(COMPLAINTS)].format(SIDES[i % len(SIDES)]),
            phone=f"+62812{(offset + i) % 97:07d}",
        )
        for i in range(offset, offset + n)
    ]


async def _publish(pipeline: Pipeline, intakes: list[IntakeReceivedV1]) -> None:
    client = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap())
    await client.start()
    try:
        await send_events(client, [Outgoing.of(intake_event(i), pipeline.topics) for i in intakes])
    finally:
        await client.stop()


async def _all_through(pipeline: Pipeline, n: int) -> bool:
    done = await pipeline.fetchval(
        "SELECT count(*) FROM readmodel.intakes "
        "WHERE enriched_at IS NOT NULL AND incident_id IS NOT NULL"
    )
    orders = await pipeline.fetchval("SELECT count(*) FROM readmodel.work_orders")
    expected = await _orders_expected(pipeline)
    if os.environ.get("SIAGA_TEST_PROGRESS"):
        inbox = await pipeline.fetchval("SELECT count(*) FROM enricher.inbox")
        triaged = await pipeline.fetchval("SELECT count(*) FROM triage.inbox")
        print(f"  progress: enricher {inbox} triage {triaged} read model {done} orders {orders}")
    return bool(done == n and orders == expected)


async def _orders_expected(pipeline: Pipeline) -> int:
    """Incidents that get a work order: classified with confidence, not a prank."""
    return int(
        await pipeline.fetchval(
            "SELECT count(*) FROM readmodel.incidents WHERE category IS NOT NULL "
            "AND NOT needs_review AND category NOT IN ('prank', 'ghost')"
        )
    )


async def _nothing_lost_or_doubled(pipeline: Pipeline, n: int) -> None:
    """Every intake is in the read model once, and processed once by each stage: caller
    history counts each report once, each stage's inbox holds each message once."""
    assert await pipeline.fetchval("SELECT count(*) FROM readmodel.intakes") == n
    assert await pipeline.fetchval("SELECT count(*) FROM readmodel.incidents") == n
    orders = await _orders_expected(pipeline)
    assert orders > n * 0.9
    assert await pipeline.fetchval("SELECT count(*) FROM readmodel.work_orders") == orders
    assert await pipeline.fetchval("SELECT sum(reports) FROM enricher.callers") == n
    # the enricher also reads incident events (prank feedback): count its intakes
    assert (
        await pipeline.fetchval(
            "SELECT count(*) FROM enricher.inbox WHERE message_key LIKE 'intake:%'"
        )
        == n
    )
    assert await pipeline.fetchval("SELECT count(*) FROM triage.intakes") == n
    assert await pipeline.fetchval("SELECT count(*) FROM triage.incidents") == n
    assert await pipeline.fetchval("SELECT count(*) FROM dispatcher.work_orders") == orders
    assert (
        await pipeline.fetchval(
            "SELECT count(*) FROM readmodel.timeline WHERE event_type = 'siaga.incident.opened.v1'"
        )
        == n
    )
    assert await pipeline.fetchval("SELECT count(*) FROM readmodel.dead_letters") == 0
    enriched = await pipeline.records(pipeline.topics.intake_enriched)
    ids = {r.key for r in enriched}
    assert len(ids) == n
    print(f"  {len(enriched) - n} enriched record(s) published twice (deduplicated downstream)")


WITHOUT_ENRICHER = tuple(s for s in STAGES if s != "enricher")


@pytest.mark.timeout(420)
@pytest.mark.parametrize("stages", [WITHOUT_ENRICHER])
async def test_a_stage_killed_mid_stream_loses_and_duplicates_nothing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    n = int(os.environ.get("SIAGA_TEST_KILL_N", "2000"))
    first = n // 2
    log = tmp_path / "enricher.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", "run", "enricher"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=cli_env(pipeline.settings),
            )

    enricher = start()
    try:
        started = time.monotonic()
        intakes = _intakes(n)
        await _publish(pipeline, intakes[:first])
        await eventually(
            lambda: pipeline.fetchval("SELECT count(*) >= $1 FROM enricher.inbox", n // 6),
            timeout=120,
            what="the enricher to be under way",
        )
        enricher.send_signal(signal.SIGKILL)
        enricher.wait(10)
        at_kill = await pipeline.fetchval("SELECT count(*) FROM enricher.inbox")
        await _publish(pipeline, intakes[first:])  # the stream goes on while it is down
        restarted = time.monotonic()
        enricher = start()
        await eventually(
            lambda: _all_through(pipeline, n), timeout=300, what="every intake through"
        )
        finished = time.monotonic()
    finally:
        enricher.send_signal(signal.SIGTERM)
        enricher.wait(20)
    print(
        f"\nSIGKILL: killed the enricher after {at_kill} of {n} intakes; all {n} through the "
        f"pipeline {finished - restarted:.1f}s after its restart ({finished - started:.1f}s in all)"
    )
    await _nothing_lost_or_doubled(pipeline, n)
    logged = log.read_text(errors="replace")
    assert "stage started" in logged
    assert not any(i.caller.phone and i.caller.phone in logged for i in intakes)


async def _committed(pipeline: Pipeline, stage: str) -> dict[object, int | None]:
    async with plain_consumer(pipeline.settings, group_id=group_id(stage, pipeline.topics)) as c:
        return dict(
            await committed_offsets(c, await partitions_of(c, [pipeline.topics.intake_received]))
        )


@pytest.mark.timeout(300)
async def test_postgres_stopped_for_20s_stages_wait_commit_nothing_and_catch_up(
    infra: Infra, tmp_path: Path
) -> None:
    postgres = EmbeddedPostgres(home=tmp_path / "private-pg").start()
    private = Infra(infra.name, infra.kafka_bootstrap, postgres.url())
    try:
        async with open_pipeline(
            private, fleet=TEST_FLEET, home=tmp_path / ".siaga", stages=STAGES
        ) as pipeline:
            sent: list[IntakeReceivedV1] = []

            async def feed(seconds: float) -> None:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    batch = _intakes(10, offset=len(sent))
                    await _publish(pipeline, batch)
                    sent.extend(batch)
                    await asyncio.sleep(0.5)

            feeding = asyncio.create_task(feed(30))
            await asyncio.sleep(4)
            postgres.stop()
            stopped = time.monotonic()
            await asyncio.sleep(2)
            before = await _committed(pipeline, "enricher")
            await asyncio.sleep(17.5)
            during = await _committed(pipeline, "enricher")
            await asyncio.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
            postgres.start()  # same port, same data
            back = time.monotonic()
            await feeding
            await pipeline.db.close()
            pipeline.db = await asyncpg.create_pool(
                pipeline.settings.database_url(), min_size=1, max_size=4, init=use_json_codecs
            )
            n = len(sent)
            await eventually(lambda: _all_through(pipeline, n), timeout=120, what="catch-up")
            caught_up = time.monotonic()
            retries = {
                s: pipeline.runtimes[s][0].metrics.errors("database_unavailable") for s in STAGES
            }
            print(
                f"\nPostgreSQL down {back - stopped:.1f}s with intakes arriving; {n} intakes all "
                f"through {caught_up - back:.1f}s after it came back; retried batches: {retries}"
            )
            # while the database was down the enricher committed no offset: it applied nothing
            assert before == during
            assert retries["enricher"] > 0
            await _nothing_lost_or_doubled(pipeline, n)
        # Every pool of the stopped pipeline is gone: none keeps reconnecting, for the rest of
        # the session, to a server this test is about to stop (it slowed later tests down).
        reconnecting = [
            t
            for t in asyncio.all_tasks()
            if not t.done() and "_maintain_min_size" in repr(t.get_coro())
        ]
        assert reconnecting == []
    finally:
        postgres.stop()
        _remove_cluster(postgres)


def _remove_cluster(postgres: EmbeddedPostgres) -> None:
    """The cluster lives under /tmp when running as root: do not leave 55 MB per run."""
    shutil.rmtree(postgres.data_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        postgres.data_dir.parent.rmdir()


def test_private_postgres_restarts_on_its_port(tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(home=tmp_path / "pg").start()
    try:
        port = postgres.port
        postgres.stop()
        postgres.start()
        assert postgres.port == port and os.path.exists(postgres.data_dir / "PG_VERSION")
    finally:
        postgres.stop()
        _remove_cluster(postgres)
