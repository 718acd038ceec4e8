"""The dispatcher's fleet, dispatches, pending slots and work orders (its own schema)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from schemas.common import Place
from schemas.events import UnitRegisteredV1


@dataclass(frozen=True)
class ClaimedUnit:
    """A unit the claim took for an incident."""

    unit_id: str
    unit_type: str
    lat: float
    lon: float


async def register_unit(conn: asyncpg.Connection, *, unit: UnitRegisteredV1) -> None:
    """Add a unit, or update its details; its current status and assignment are kept."""
    await conn.execute(
        """
        INSERT INTO units (unit_id, unit_type, agency, base, capabilities, lat, lon, status_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (unit_id) DO UPDATE
           SET unit_type = EXCLUDED.unit_type, agency = EXCLUDED.agency, base = EXCLUDED.base,
               capabilities = EXCLUDED.capabilities
        """,
        unit.unit_id,
        unit.unit_type.value,
        unit.agency,
        unit.base,
        unit.capabilities,
        unit.location.lat,
        unit.location.lon,
        unit.registered_at,
    )


async def claim_unit(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    unit_type: str,
    lat: float,
    lon: float,
    at: datetime,
) -> ClaimedUnit | None:
    """Atomically take the nearest free unit of a type for an incident, or None if none is free.

    One statement: rows locked by a concurrent claim are skipped, and a row another claim
    committed meanwhile fails the re-checked `status = 'available'`, so no unit is ever
    given to two incidents, however many dispatchers run.
    """
    row = await conn.fetchrow(
        """
        WITH candidate AS (
            SELECT unit_id
              FROM units
             WHERE status = 'available' AND unit_type = $2
             ORDER BY (lat - $3) ^ 2 + ((lon - $4) * cos(radians($3))) ^ 2, unit_id
             LIMIT 1
               FOR UPDATE SKIP LOCKED
        )
        UPDATE units AS u
           SET status = 'dispatched', incident_id = $1, status_at = $5
          FROM candidate
         WHERE u.unit_id = candidate.unit_id AND u.status = 'available'
        RETURNING u.unit_id, u.unit_type, u.lat, u.lon
        """,
        incident_id,
        unit_type,
        lat,
        lon,
        at,
    )
    if row is None:
        return None
    return ClaimedUnit(row["unit_id"], row["unit_type"], row["lat"], row["lon"])


async def record_dispatch(
    conn: asyncpg.Connection, *, dispatch_id: UUID, incident_id: UUID, unit_id: str, at: datetime
) -> None:
    """Keep the order given to a unit."""
    await conn.execute(
        "INSERT INTO dispatches (dispatch_id, incident_id, unit_id, status, dispatched_at) "
        "VALUES ($1, $2, $3, 'dispatched', $4) ON CONFLICT (dispatch_id) DO NOTHING",
        dispatch_id,
        incident_id,
        unit_id,
        at,
    )


async def queue_pending(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    slot: int,
    unit_type: str,
    priority: str,
    category: str,
    place: Place | None,
    at: datetime,
) -> None:
    """Remember a run-card slot that no free unit could fill."""
    await conn.execute(
        """
        INSERT INTO pending (incident_id, slot, unit_type, priority, category, place, queued_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
        ON CONFLICT DO NOTHING
        """,
        incident_id,
        slot,
        unit_type,
        priority,
        category,
        place.model_dump_json() if place else None,
        at,
    )


async def next_pending(conn: asyncpg.Connection, *, unit_type: str) -> dict[str, Any] | None:
    """The most urgent, oldest waiting slot for a unit type, locked for this transaction."""
    row = await conn.fetchrow(
        """
        SELECT incident_id, slot, unit_type, priority, category, place, queued_at
          FROM pending
         WHERE unit_type = $1
         ORDER BY priority, queued_at
         LIMIT 1
           FOR UPDATE SKIP LOCKED
        """,
        unit_type,
    )
    if row is None:
        return None
    result = dict(row)
    result["place"] = Place.model_validate(json.loads(row["place"])) if row["place"] else None
    return result


async def remove_pending(conn: asyncpg.Connection, *, incident_id: UUID, slot: int) -> None:
    """A waiting slot was served."""
    await conn.execute(
        "DELETE FROM pending WHERE incident_id = $1 AND slot = $2", incident_id, slot
    )


async def unit_type_of(conn: asyncpg.Connection, *, unit_id: str) -> str | None:
    """The kind of a known unit, or None."""
    value = await conn.fetchval("SELECT unit_type FROM units WHERE unit_id = $1", unit_id)
    return None if value is None else str(value)


async def lock_unit_type(conn: asyncpg.Connection, *, unit_type: str) -> None:
    """Serialise, across dispatcher instances, who claims and who frees units of a type.

    Without it, one instance's claim can skip a unit another instance is freeing and
    queue its incident as pending, while the other, not yet seeing that pending row,
    finds nothing to serve: the incident would wait with a free unit at hand.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('siaga.dispatch.' || $1))", unit_type)


async def update_unit_status(
    conn: asyncpg.Connection,
    *,
    unit_id: str,
    status: str,
    incident_id: UUID | None,
    at: datetime,
    lat: float | None,
    lon: float | None,
) -> bool:
    """Apply a unit's report; False when it was not applied.

    A unit on an order is freed (available, out of service) only by a report naming that
    order's incident: a report sent before the crew saw a new order must not free it.
    """
    row = await conn.fetchrow(
        """
        UPDATE units
           SET status = $2,
               status_at = GREATEST(status_at, $3),
               lat = COALESCE($4, lat),
               lon = COALESCE($5, lon),
               incident_id = CASE WHEN $2 IN ('available', 'out_of_service') THEN NULL
                                  ELSE incident_id END
         WHERE unit_id = $1
           AND ($2 NOT IN ('available', 'out_of_service')
                OR incident_id IS NULL OR incident_id = $6::uuid)
        RETURNING unit_id
        """,
        unit_id,
        status,
        at,
        lat,
        lon,
        incident_id,
    )
    if row is None:
        return False
    if status == "acknowledged":
        await conn.execute(
            "UPDATE dispatches SET status = 'acknowledged', acknowledged_at = $2 "
            "WHERE unit_id = $1 AND status = 'dispatched'",
            unit_id,
            at,
        )
    elif status in ("available", "out_of_service"):
        await conn.execute(
            "UPDATE dispatches SET status = 'closed' WHERE unit_id = $1 AND status <> 'closed'",
            unit_id,
        )
    return True


async def withdraw_pending(conn: asyncpg.Connection, *, incident_id: UUID) -> int:
    """A finished incident no longer waits for units; returns how many slots were dropped."""
    dropped = await conn.execute("DELETE FROM pending WHERE incident_id = $1", incident_id)
    return int(dropped.split()[-1])


async def issue_work_order(
    conn: asyncpg.Connection,
    *,
    work_order_id: UUID,
    incident_id: UUID,
    agency: str,
    at: datetime,
    due_at: datetime,
) -> bool:
    """Record a work order; False when the incident already has one."""
    inserted = await conn.fetchval(
        """
        INSERT INTO work_orders (work_order_id, incident_id, agency, issued_at, due_at)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true
        """,
        work_order_id,
        incident_id,
        agency,
        at,
        due_at,
    )
    return bool(inserted)
