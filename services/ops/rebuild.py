"""`siaga rebuild`: the read model again from offset 0 into a fresh schema; compare; swap.

The rebuild runs the projector itself (same handlers, same SQL) with a consumer group of
its own into another schema, until its committed offsets reach the ends of the log taken
when it started. Comparing that schema with the live one is the proof that the read model
is a pure function of the log.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from aiokafka import TopicPartition

from services.common.admin import committed_offsets, log_ends, partitions_of, plain_consumer
from services.common.db import STAGE_SCHEMAS, migrate, quote_ident
from services.common.settings import CommonSettings, HttpSettings
from services.projector.bootstrap import bootstrap as projector
from services.stages import group_id, subscriptions

LIVE = STAGE_SCHEMAS["projector"]
# Tables of the plumbing, not of the read model: which message keys were seen and when.
TECHNICAL_TABLES = frozenset({"inbox", "outbox"})
# Columns that say when or how a row was written rather than what the log says; none today.
TECHNICAL_COLUMNS: dict[str, frozenset[str]] = {}
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SHOWN_ROWS = 5


class RebuildError(ValueError):
    """A rebuild that could not finish; the message says why."""


def check_schema_name(name: str) -> str:
    """A schema name we may create and drop: lower-case, not a stage's own."""
    if not SCHEMA_NAME.fullmatch(name) or name in STAGE_SCHEMAS.values() or name == "public":
        raise RebuildError(
            f"bad schema name {name!r}: use lower-case letters, digits and _, not a stage schema"
        )
    return name


def default_schema() -> str:
    """A fresh schema name for a rebuild."""
    return f"{LIVE}_rebuild_{datetime.now(UTC):%Y%m%d%H%M%S}"


@dataclass
class Rebuild:
    """What a rebuild did."""

    schema: str
    group: str
    events: int = 0
    seconds: float = 0.0
    ends: dict[TopicPartition, int] = field(default_factory=dict)


async def _admin(settings: CommonSettings) -> asyncpg.Connection:
    return await asyncpg.connect(settings.database_url(), ssl=settings.database.sslmode or None)


async def _drop_schema(conn: asyncpg.Connection, schema: str) -> None:
    async with conn.transaction():
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        await conn.execute("DELETE FROM public.siaga_migrations WHERE schema_name = $1", schema)


async def _caught_up(settings: CommonSettings, group: str, ends: dict[TopicPartition, int]) -> bool:
    async with plain_consumer(settings, group_id=group) as consumer:
        committed = await committed_offsets(consumer, sorted(ends))
    return all((committed[tp] or 0) >= end for tp, end in ends.items() if end > 0)


async def project_until(
    settings: CommonSettings,
    *,
    schema: str,
    group: str,
    timeout_s: float,
) -> tuple[dict[TopicPartition, int], int]:
    """Run a projector into `schema` as `group` until it has committed up to the ends of
    the log as they are now; returns those ends and how many records that was."""
    quiet = settings.model_copy(update={"http": HttpSettings(enabled=False)})
    # Only the topics the projector reads: it commits no offset on the others (commands),
    # which it would otherwise be waited for forever.
    read = subscriptions("projector", settings.topics)
    async with plain_consumer(settings) as reader:
        ends = await log_ends(reader, await partitions_of(reader, read))
    async with projector(quiet, schema=schema, group_id=group) as runtime:
        deadline = time.monotonic() + timeout_s
        while not await _caught_up(settings, group, ends):
            if time.monotonic() > deadline:
                raise RebuildError(
                    f"rebuild into {schema} did not reach the end of the log in {timeout_s:.0f}s"
                )
            await asyncio.sleep(0.3)
        return ends, runtime.processor.processed


async def rebuild(settings: CommonSettings, *, schema: str, timeout_s: float = 600) -> Rebuild:
    """Project the whole log, from offset 0, into a fresh `schema` (dropped first)."""
    check_schema_name(schema)
    started = time.monotonic()
    conn = await _admin(settings)
    try:
        await _drop_schema(conn, schema)
    finally:
        await conn.close()
    await migrate(settings, stages=["projector"], schema_override={"projector": schema})
    # A group of its own, new each time: a reused one would start where it stopped.
    group = f"{settings.topics.prefix}.projector.rebuild.{schema}.{uuid.uuid4().hex[:8]}"
    ends, events = await project_until(settings, schema=schema, group=group, timeout_s=timeout_s)
    return Rebuild(schema, group, events, round(time.monotonic() - started, 2), ends)


@dataclass(frozen=True)
class TableDiff:
    """Rows of one table that only one side has."""

    table: str
    only_live: int
    only_rebuilt: int
    sample_live: list[str]
    sample_rebuilt: list[str]

    def lines(self) -> list[str]:
        """Human-readable description."""
        out = [
            f"{self.table}: {self.only_live} row(s) only in live, {self.only_rebuilt} only in rebuilt"
        ]
        out += [f"  live    {row}" for row in self.sample_live]
        out += [f"  rebuilt {row}" for row in self.sample_rebuilt]
        return out


async def _tables(conn: asyncpg.Connection, schema: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        schema,
    )
    return {r["table_name"] for r in rows} - TECHNICAL_TABLES


async def _columns(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        schema,
        table,
    )
    skip = TECHNICAL_COLUMNS.get(table, frozenset())
    return [r["column_name"] for r in rows if r["column_name"] not in skip]


async def _one_way(
    conn: asyncpg.Connection, left: str, right: str, table: str, columns: list[str]
) -> tuple[int, list[str]]:
    # Rows compared as their text form, so every column type compares (json too);
    # EXCEPT ALL also catches a row that one side has twice.
    row = "ROW(" + ", ".join(quote_ident(c) for c in columns) + ")::text"
    t = quote_ident(table)
    sql = (
        f"SELECT {row} AS r FROM {quote_ident(left)}.{t} "
        f"EXCEPT ALL SELECT {row} FROM {quote_ident(right)}.{t}"
    )
    count = await conn.fetchval(f"SELECT count(*) FROM ({sql}) d")
    sample = [r["r"] for r in await conn.fetch(f"{sql} ORDER BY 1 LIMIT {SHOWN_ROWS}")]
    return int(count), sample


async def compare(settings: CommonSettings, *, live: str, rebuilt: str) -> list[TableDiff]:
    """Every difference between two read-model schemas, table by table (technical
    tables and columns aside); empty when they are equal."""
    conn = await _admin(settings)
    try:
        live_tables, rebuilt_tables = await _tables(conn, live), await _tables(conn, rebuilt)
        diffs: list[TableDiff] = []
        for table in sorted(live_tables | rebuilt_tables):
            if table not in rebuilt_tables or table not in live_tables:
                side = "rebuilt" if table not in rebuilt_tables else "live"
                diffs.append(TableDiff(f"{table} (missing in {side})", 0, 0, [], []))
                continue
            columns = await _columns(conn, live, table)
            if columns != await _columns(conn, rebuilt, table):
                diffs.append(TableDiff(f"{table} (columns differ)", 0, 0, [], []))
                continue
            only_live, sample_live = await _one_way(conn, live, rebuilt, table, columns)
            only_rebuilt, sample_rebuilt = await _one_way(conn, rebuilt, live, table, columns)
            if only_live or only_rebuilt:
                diffs.append(TableDiff(table, only_live, only_rebuilt, sample_live, sample_rebuilt))
        return diffs
    finally:
        await conn.close()


async def verify(
    settings: CommonSettings, *, rebuilt: Rebuild, attempts: int = 3, settle_s: float = 1.0
) -> list[TableDiff]:
    """Compare live and rebuilt once both have processed the same log; while events keep
    arriving, both catch up to the new end and compare again, up to `attempts` times."""
    diffs: list[TableDiff] = []
    live_group = group_id("projector", settings.topics)
    ends = rebuilt.ends
    for attempt in range(attempts):
        deadline = time.monotonic() + 60
        while not await _caught_up(settings, live_group, ends):
            if time.monotonic() > deadline:
                raise RebuildError(
                    "the live projector is not keeping up with the log; is it running?"
                )
            await asyncio.sleep(0.3)
        diffs = await compare(settings, live=LIVE, rebuilt=rebuilt.schema)
        if not diffs or attempt == attempts - 1:
            return diffs
        await asyncio.sleep(settle_s)
        ends, _ = await project_until(
            settings, schema=rebuilt.schema, group=rebuilt.group, timeout_s=120
        )
    return diffs


async def swap(settings: CommonSettings, *, rebuilt: Rebuild) -> str:
    """Make the rebuilt schema the live read model; the old one is kept under another
    name, which is returned. The running projector writes into the new one from its next
    transaction on; anything it applied to the old one meanwhile is caught up after."""
    retired = f"{LIVE}_old_{datetime.now(UTC):%Y%m%d%H%M%S}"
    conn = await _admin(settings)
    try:
        async with conn.transaction():
            await conn.execute(f"ALTER SCHEMA {quote_ident(LIVE)} RENAME TO {quote_ident(retired)}")
            await conn.execute(
                f"ALTER SCHEMA {quote_ident(rebuilt.schema)} RENAME TO {quote_ident(LIVE)}"
            )
            await conn.execute(
                "UPDATE public.siaga_migrations SET schema_name = $2 WHERE schema_name = $1",
                LIVE,
                retired,
            )
            await conn.execute(
                "UPDATE public.siaga_migrations SET schema_name = $2 WHERE schema_name = $1",
                rebuilt.schema,
                LIVE,
            )
    finally:
        await conn.close()
    # What the live projector committed into the retired schema after the rebuild's
    # last batch: the rebuild group reads it again into the new live schema.
    await project_until(settings, schema=LIVE, group=rebuilt.group, timeout_s=120)
    return retired


async def drop(settings: CommonSettings, schema: str) -> None:
    """Drop a rebuilt or retired schema."""
    check_schema_name(schema)
    conn = await _admin(settings)
    try:
        await _drop_schema(conn, schema)
    finally:
        await conn.close()
