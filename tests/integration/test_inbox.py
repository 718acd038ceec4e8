"""The inbox keeps a processed message's row for its retention, then the prune removes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.db import STAGE_SCHEMAS, connect
from services.common.inbox import inbox_pruner, prune_inbox
from services.common.settings import InboxSettings
from tests.conftest import Pipeline

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def stages() -> tuple[str, ...]:
    """Only the migrated database: the tests drive the prune themselves."""
    return ()


async def test_rows_older_than_the_retention_go_and_recent_ones_stay(pipeline: Pipeline) -> None:
    ages = {
        "event:a-month-ago": timedelta(days=30),
        "event:eight-days-ago": timedelta(days=8),
        "event:just-past-retention": timedelta(days=7, seconds=1),
        "event:exactly-at-retention": timedelta(days=7),
        "intake:six-days-ago": timedelta(days=6),
        "event:a-minute-ago": timedelta(minutes=1),
    }
    # Another stage's old row, which the dispatcher's prune must leave to its own stage.
    await pipeline.fetch(
        "INSERT INTO triage.inbox (message_key, processed_at) VALUES ('event:triage', $1)",
        NOW - timedelta(days=30),
    )
    # As the stage's own role, as the stage's job runs: it may delete its inbox's rows.
    conn = await connect(
        pipeline.settings, schema="dispatcher", application="test", role="dispatcher"
    )
    try:
        await conn.executemany(
            "INSERT INTO inbox (message_key, processed_at) VALUES ($1, $2)",
            [(key, NOW - age) for key, age in ages.items()],
        )
        job = inbox_pruner(InboxSettings(retention_days=7), clock=lambda: NOW)
        async with conn.transaction():
            assert await job.run_once(conn) == ()
        left = {r["message_key"] for r in await conn.fetch("SELECT message_key FROM inbox")}
    finally:
        await conn.close()
    assert left == {"event:exactly-at-retention", "intake:six-days-ago", "event:a-minute-ago"}
    assert await pipeline.fetchval("SELECT count(*) FROM triage.inbox") == 1


async def test_one_prune_deletes_at_most_its_batch(pipeline: Pipeline) -> None:
    conn = await connect(pipeline.settings, schema="tracker", application="test", role="tracker")
    try:
        await conn.executemany(
            "INSERT INTO inbox (message_key, processed_at) VALUES ($1, $2)",
            [(f"event:old-{n}", NOW - timedelta(days=10, minutes=n)) for n in range(5)],
        )
        before = NOW - timedelta(days=7)
        assert await prune_inbox(conn, before=before, limit=3) == 3
        assert await prune_inbox(conn, before=before, limit=3) == 2
        assert await prune_inbox(conn, before=before, limit=3) == 0
        old = "SELECT count(*) FROM inbox WHERE message_key LIKE 'event:old-%'"
        assert await conn.fetchval(old) == 0
    finally:
        await conn.close()


async def test_every_time_column_is_timezone_aware(pipeline: Pipeline) -> None:
    naive = await pipeline.fetch(
        """
        SELECT table_schema, table_name, column_name, data_type
        FROM information_schema.columns
        WHERE table_schema = ANY($1::text[])
          AND data_type IN ('timestamp without time zone', 'time without time zone')
        """,
        [*STAGE_SCHEMAS.values(), "public"],
    )
    assert [tuple(r) for r in naive] == []
    inbox = await pipeline.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'inbox' AND indexdef LIKE '%brin%'"
    )
    assert len(inbox) == len(STAGE_SCHEMAS)  # every stage finds its old rows by index
