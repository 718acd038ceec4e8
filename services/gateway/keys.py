"""API keys of outside clients: created and revoked by `siaga apikey`, stored as digests."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg


class Scope(StrEnum):
    """What a key may do at the gateway."""

    INTAKE = "intake"  # POST /events
    OPEN311 = "open311"  # POST /open311/v2/requests
    EIDO = "eido"  # GET /EIDO/{incident_id}
    CAP = "cap"  # the CAP alert feed
    UNIT = "unit"  # POST /units/{unit_id}/status


KEY_PREFIX = "sgk_"


@dataclass(frozen=True)
class ApiKey:
    """A client's key as the gateway knows it (never the secret itself)."""

    key_id: uuid.UUID
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, scope: Scope) -> bool:
        """Whether the key may be used for `scope`."""
        return self.revoked_at is None and scope in self.scopes


def new_secret() -> str:
    """A fresh key: 256 random bits, prefixed so a leaked one is recognisable in a scan."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    """What is stored of a key. A plain SHA-256 suffices: the secret is 256 random bits, so
    neither a dictionary nor brute force reaches it, and the look-up stays one index probe."""
    return hashlib.sha256(secret.encode()).digest()


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        scopes=frozenset(Scope(s) for s in row["scopes"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def create_key(
    conn: asyncpg.Connection, *, name: str, scopes: frozenset[Scope], now: datetime
) -> tuple[ApiKey, str]:
    """Store a new key for `name`; returns it and its secret (shown once, never stored)."""
    secret = new_secret()
    row = await conn.fetchrow(
        """
        INSERT INTO api_keys (key_id, name, digest, scopes, created_at)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING key_id, name, scopes, created_at, revoked_at
        """,
        uuid.uuid4(),
        name,
        digest(secret),
        sorted(scopes),
        now,
    )
    assert row is not None
    return _key(row), secret


async def revoke_keys(conn: asyncpg.Connection, *, name: str, now: datetime) -> int:
    """Revoke every live key of `name`; returns how many."""
    result = await conn.execute(
        "UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL", name, now
    )
    return int(result.split()[-1])


async def find_key(conn: asyncpg.Connection | asyncpg.Pool, *, secret: str) -> ApiKey | None:
    """The key a client presented, revoked or not; None when no such key was ever made."""
    row = await conn.fetchrow(
        "SELECT key_id, name, scopes, created_at, revoked_at FROM api_keys WHERE digest = $1",
        digest(secret),
    )
    return None if row is None else _key(row)


async def list_keys(conn: asyncpg.Connection) -> list[ApiKey]:
    """Every key, newest first."""
    rows = await conn.fetch(
        "SELECT key_id, name, scopes, created_at, revoked_at FROM api_keys "
        "ORDER BY created_at DESC, name"
    )
    return [_key(r) for r in rows]
