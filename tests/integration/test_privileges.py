"""Least privilege: each stage's database role reaches its own schema and nothing else."""

from __future__ import annotations

import asyncpg
import pytest

from services.common.db import STAGE_SCHEMAS, connect
from services.stages import STAGES
from tests.conftest import Pipeline, eventually, gateway_on_a_free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def stages() -> tuple[str, ...]:
    """Every stage, the gateway too."""
    return STAGES


@pytest.fixture
def stage_settings() -> dict[str, dict[str, object]]:
    """The gateway on a free port."""
    return gateway_on_a_free_port()


# One table of each schema, and a row every stage role may try to write there.
PROBES: dict[str, str] = {
    "enricher": "callers",
    "triage": "incidents",
    "dispatcher": "units",
    "tracker": "incidents",
    "readmodel": "intakes",
    "gateway": "api_keys",
}


async def test_each_stage_role_touches_only_its_own_schema(pipeline: Pipeline) -> None:
    for stage, own in STAGE_SCHEMAS.items():
        conn = await connect(pipeline.settings, schema=own, application="test", role=stage)
        try:
            assert await conn.fetchval("SELECT current_user") == f"siaga_{stage}"
            for schema, table in PROBES.items():
                if schema == own:
                    await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}")
                    async with conn.transaction():
                        await conn.execute("INSERT INTO inbox (message_key) VALUES ('probe')")
                        await conn.execute("DELETE FROM inbox WHERE message_key = 'probe'")
                    continue
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(f"DELETE FROM {schema}.inbox")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"DROP TABLE {own}.inbox")  # no DDL: migrations own tables
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("SELECT count(*) FROM public.siaga_migrations")
        finally:
            await conn.close()


async def test_the_reader_role_only_reads_the_read_model(pipeline: Pipeline) -> None:
    conn = await connect(pipeline.settings, schema="readmodel", application="test", role="reader")
    try:
        await eventually(
            lambda: conn.fetchval("SELECT count(*) FROM units"), what="units on the board"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE units SET status = 'available'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM dispatcher.units")
    finally:
        await conn.close()


async def test_stages_really_connect_as_their_roles(pipeline: Pipeline) -> None:
    rows = await pipeline.fetch(
        "SELECT DISTINCT application_name, usename FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE 'siaga-%'"
    )
    seen = {r["application_name"]: r["usename"] for r in rows}
    for stage in STAGE_SCHEMAS:
        assert seen.get(f"siaga-{stage}") == f"siaga_{stage}", seen
