"""PostgreSQL pools per stage schema, and the migration runner (each stage owns its schema)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:  # settings are passed in: a look-up that needs none loads no pydantic
    from services.common.settings import CommonSettings

# Stage -> the PostgreSQL schema it owns. The projector's read model lives in `readmodel`.
STAGE_SCHEMAS: dict[str, str] = {
    "enricher": "enricher",
    "triage": "triage",
    "dispatcher": "dispatcher",
    "tracker": "tracker",
    "projector": "readmodel",
    "gateway": "gateway",
}

# SQLSTATE classes that say "the database is unwell, try again", not "this input is bad":
# connection exceptions, transaction rollback (serialization, deadlock), insufficient
# resources, operator intervention (shutdown, cancel), system errors.
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_TRANSIENT_STATES = frozenset({"25006", "55P03"})  # read-only after failover, lock timeout


def is_transient(exc: BaseException) -> bool:
    """True when retrying later can succeed: the database or the network is unwell."""
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES
    return isinstance(exc, asyncpg.InterfaceError | OSError | asyncio.TimeoutError)


async def lock_in_order(
    conn: asyncpg.Connection, *, namespace: str, names: Iterable[str]
) -> list[str]:
    """Take the transaction's advisory lock on each of `names` within `namespace`, in one
    statement and in name order (two transactions locking some names in common cannot
    deadlock); returns that order."""
    wanted = sorted(set(names))
    if wanted:
        # unnest yields the array in order, so the locks are taken in that order.
        await conn.execute(
            "SELECT count(pg_advisory_xact_lock(hashtext($1 || n))) FROM unnest($2::text[]) AS n",
            namespace,
            wanted,
        )
    return wanted


def _server_settings(schema: str, application: str) -> dict[str, str]:
    return {"search_path": f"{schema},public", "application_name": application[:63]}


def _ssl(settings: CommonSettings) -> Any:
    return settings.database.sslmode or None


class _StageConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query: stages use no session
    state (advisory locks are per transaction, no LISTEN, no session SET), so the reset
    was one more round trip per batch for nothing."""

    def get_reset_query(self) -> str:
        return ""


async def use_json_codecs(conn: asyncpg.Connection) -> None:
    """jsonb in and out as Python values (dicts, lists, ...), not JSON text: set on every
    connection a stage or a look-up opens, so no query parses or dumps JSON by hand. A
    builtin type's codec needs no round trip to the server."""
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )


async def close_pool(pool: asyncpg.Pool, *, timeout: float = 10.0) -> None:
    """Close a pool, waiting up to `timeout` for its connections to be released, then
    terminate it (a connection stuck on a server that went away must not hold it open)."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        pool.terminate()


async def create_pool(
    settings: CommonSettings,
    *,
    schema: str,
    application: str,
    max_size: int | None = None,
    role: str | None = None,
) -> asyncpg.Pool:
    """A pool whose connections see `schema` first, so SQL names its tables unqualified;
    `role` (a stage, or `reader`) connects with that stage's own database role."""
    pool = await asyncpg.create_pool(
        settings.database_url_for(role),
        min_size=settings.database.pool_min,
        max_size=max_size or settings.database.pool_max,
        server_settings=_server_settings(schema, application),
        ssl=_ssl(settings),
        command_timeout=30,
        connection_class=_StageConnection,
        init=use_json_codecs,
    )
    assert pool is not None
    return pool


async def connect(
    settings: CommonSettings, *, schema: str, application: str, role: str | None = None
) -> asyncpg.Connection:
    """One connection with the stage schema on its search path (CLI look-ups, tests)."""
    return await connect_url(
        settings.database_url_for(role),
        schema=schema,
        application=application,
        sslmode=settings.database.sslmode,
    )


async def connect_url(
    url: str, *, schema: str, application: str, sslmode: str | None
) -> asyncpg.Connection:
    """One connection to `url` with `schema` first on its search path (and jsonb as Python
    values, as a pool's connections have it)."""
    conn = await asyncpg.connect(
        url, server_settings=_server_settings(schema, application), ssl=sslmode or None
    )
    try:
        await use_json_codecs(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, quoted (schema and role names come from settings, not users)."""
    return '"' + name.replace('"', '""') + '"'


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    # Roles belong to the whole server while the advisory lock is per database, so
    # migrators of two databases may race here: retry what a concurrent one got in between.
    for attempt in range(5):
        try:
            async with conn.transaction():
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                if not exists:
                    await conn.execute(f"CREATE ROLE {quote_ident(role)} LOGIN")
                if password is not None:
                    # DDL takes no parameters; quote_literal is PostgreSQL's own escaping.
                    literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
                    await conn.execute(f"ALTER ROLE {quote_ident(role)} PASSWORD {literal}")
            return
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            continue
        except asyncpg.InternalServerError as exc:  # "tuple concurrently updated"
            if attempt == 4:
                raise exc
            await asyncio.sleep(0.05 * (attempt + 1))


async def _grant_stage_role(
    conn: asyncpg.Connection, settings: CommonSettings, *, stage: str, schema: str
) -> None:
    """The stage's role may read and write its own schema's tables and nothing else; the
    projector's read model is also readable by the `reader` role of CLI look-ups."""
    db = settings.database
    password = db.role_password.get_secret_value() if db.role_password else None
    grants = [(db.role(stage), "SELECT, INSERT, UPDATE, DELETE")]
    if stage == "projector":
        grants.append((db.role("reader"), "SELECT"))
    for role, rights in grants:
        await _ensure_role(conn, role, password)
        r, s = quote_ident(role), quote_ident(schema)
        await conn.execute(f"GRANT USAGE ON SCHEMA {s} TO {r}")
        await conn.execute(f"GRANT {rights} ON ALL TABLES IN SCHEMA {s} TO {r}")
        if "INSERT" in rights:
            await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}")


def _migration_files(package: str) -> list[tuple[str, str]]:
    folder = resources.files(package).joinpath("migrations")
    if not folder.is_dir():
        return []
    files = sorted((f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql"))
    return files


async def migrate(
    settings: CommonSettings,
    *,
    stages: list[str] | None = None,
    schema_override: dict[str, str] | None = None,
) -> list[str]:
    """Apply the plumbing and each stage's migrations once, in order; returns what ran."""
    applied: list[str] = []
    conn = await asyncpg.connect(settings.database_url(), ssl=_ssl(settings))
    try:
        # One migrator at a time, whichever process starts first.
        await conn.execute("SELECT pg_advisory_lock(7428001)")
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS public.siaga_migrations (
                schema_name text NOT NULL,
                migration   text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (schema_name, migration)
            )
            """
        )
        for stage in stages or list(STAGE_SCHEMAS):
            schema = (schema_override or {}).get(stage, STAGE_SCHEMAS[stage])
            files = [("000_" + n, sql) for n, sql in _migration_files("services.common")]
            files += _migration_files(f"services.{stage}")
            done = {
                r["migration"]
                for r in await conn.fetch(
                    "SELECT migration FROM public.siaga_migrations WHERE schema_name = $1", schema
                )
            }
            for name, sql in files:
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                    await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}, public")
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO public.siaga_migrations (schema_name, migration) VALUES ($1, $2)",
                        schema,
                        name,
                    )
                applied.append(f"{schema}/{name}")
            if settings.database.stage_roles:
                await _grant_stage_role(conn, settings, stage=stage, schema=schema)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(7428001)")
        await conn.close()
    return applied
