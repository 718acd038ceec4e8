"""Writes to the read model; each is an idempotent, order-tolerant upsert."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from schemas.common import Place


def _place_values(place: Place | None) -> list[Any]:
    if place is None:
        return [None] * 6
    return [
        place.kecamatan_code,
        place.kecamatan,
        place.desa_code,
        place.desa,
        place.lat,
        place.lon,
    ]


async def upsert_intake(conn: asyncpg.Connection, **fields: Any) -> None:
    """Create or complete an intake row; given fields overwrite, missing ones are kept."""
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = COALESCE(EXCLUDED.{c}, intakes.{c})" for c in columns[1:])
    await conn.execute(
        f"INSERT INTO intakes ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT (intake_id) DO UPDATE SET {updates}",
        *fields.values(),
    )


async def upsert_incident(conn: asyncpg.Connection, *, incident_id: UUID, **fields: Any) -> None:
    """Create or complete an incident row with the given columns."""
    columns = ["incident_id", *fields]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in fields)
    await conn.execute(
        f"INSERT INTO incidents ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT (incident_id) DO UPDATE SET {updates}",
        incident_id,
        *fields.values(),
    )


async def place_incident(
    conn: asyncpg.Connection, *, incident_id: UUID, place: Place | None
) -> None:
    """Set where the incident is."""
    if place is None:
        return
    await upsert_incident(
        conn,
        incident_id=incident_id,
        **dict(
            zip(
                ("kecamatan_code", "kecamatan", "desa_code", "desa", "lat", "lon"),
                _place_values(place),
                strict=True,
            )
        ),
    )


async def first_dispatch(conn: asyncpg.Connection, *, incident_id: UUID, at: datetime) -> None:
    """Keep the earliest dispatch time of the incident."""
    await conn.execute(
        """
        INSERT INTO incidents (incident_id, first_dispatched_at) VALUES ($1, $2)
        ON CONFLICT (incident_id) DO UPDATE
           SET first_dispatched_at = LEAST(incidents.first_dispatched_at, EXCLUDED.first_dispatched_at)
        """,
        incident_id,
        at,
    )


async def set_incident_status(
    conn: asyncpg.Connection, *, incident_id: UUID, status: str, at: datetime
) -> None:
    """The tracker's latest status (its events of one incident arrive in order)."""
    await conn.execute(
        """
        INSERT INTO incidents (incident_id, status, status_at) VALUES ($1, $2, $3)
        ON CONFLICT (incident_id) DO UPDATE SET status = EXCLUDED.status, status_at = EXCLUDED.status_at
        """,
        incident_id,
        status,
        at,
    )


async def unit_dispatched(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    unit_id: str,
    unit_type: str,
    dispatch_id: UUID,
    at: datetime,
    eta_seconds: int | None,
) -> None:
    """A unit joins an incident; its board row points at it unless it has moved on since."""
    await conn.execute(
        """
        INSERT INTO incident_units
            (incident_id, unit_id, unit_type, dispatch_id, dispatched_at, eta_seconds, status, status_at)
        VALUES ($1, $2, $3, $4, $5, $6, 'dispatched', $5)
        ON CONFLICT (incident_id, unit_id) DO UPDATE
           SET unit_type = EXCLUDED.unit_type, dispatch_id = EXCLUDED.dispatch_id,
               dispatched_at = EXCLUDED.dispatched_at, eta_seconds = EXCLUDED.eta_seconds
        """,
        incident_id,
        unit_id,
        unit_type,
        dispatch_id,
        at,
        eta_seconds,
    )
    await conn.execute(
        """
        INSERT INTO units (unit_id, unit_type, status, status_at, incident_id, assigned_at)
        VALUES ($1, $2, 'dispatched', $3, $4, $3)
        ON CONFLICT (unit_id) DO UPDATE
           SET incident_id = CASE WHEN units.assigned_at IS NULL OR units.assigned_at <= EXCLUDED.assigned_at
                                  THEN EXCLUDED.incident_id ELSE units.incident_id END,
               assigned_at = GREATEST(units.assigned_at, EXCLUDED.assigned_at),
               status = CASE WHEN units.status_at IS NULL OR units.status_at <= EXCLUDED.status_at
                             THEN 'dispatched' ELSE units.status END,
               status_at = GREATEST(units.status_at, EXCLUDED.status_at)
        """,
        unit_id,
        unit_type,
        at,
        incident_id,
    )


async def unit_registered(conn: asyncpg.Connection, **fields: Any) -> None:
    """Unit details from the fleet register; status starts as available."""
    await conn.execute(
        """
        INSERT INTO units (unit_id, unit_type, agency, base, lat, lon, status, status_at)
        VALUES ($1, $2, $3, $4, $5, $6, 'available', $7)
        ON CONFLICT (unit_id) DO UPDATE
           SET unit_type = EXCLUDED.unit_type, agency = EXCLUDED.agency, base = EXCLUDED.base,
               lat = COALESCE(units.lat, EXCLUDED.lat), lon = COALESCE(units.lon, EXCLUDED.lon),
               status = COALESCE(units.status, EXCLUDED.status),
               status_at = COALESCE(units.status_at, EXCLUDED.status_at)
        """,
        fields["unit_id"],
        fields["unit_type"],
        fields["agency"],
        fields["base"],
        fields["lat"],
        fields["lon"],
        fields["at"],
    )


async def unit_status(
    conn: asyncpg.Connection,
    *,
    unit_id: str,
    status: str,
    at: datetime,
    incident_id: UUID | None,
    lat: float | None,
    lon: float | None,
) -> UUID | None:
    """Apply a unit's report to the board and to its incident; returns that incident."""
    row = await conn.fetchrow(
        """
        WITH before AS (SELECT incident_id FROM units WHERE unit_id = $1)
        INSERT INTO units (unit_id, status, status_at, lat, lon)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (unit_id) DO UPDATE
           SET status = CASE WHEN units.status_at IS NULL OR units.status_at <= EXCLUDED.status_at
                             THEN EXCLUDED.status ELSE units.status END,
               incident_id = CASE WHEN (units.status_at IS NULL OR units.status_at <= EXCLUDED.status_at)
                                       AND EXCLUDED.status IN ('available', 'out_of_service')
                                  THEN NULL ELSE units.incident_id END,
               status_at = GREATEST(units.status_at, EXCLUDED.status_at),
               lat = COALESCE(EXCLUDED.lat, units.lat),
               lon = COALESCE(EXCLUDED.lon, units.lon)
        RETURNING (SELECT incident_id FROM before) AS incident_id
        """,
        unit_id,
        status,
        at,
        lat,
        lon,
    )
    target = incident_id or (row["incident_id"] if row else None)
    if target is not None:
        await conn.execute(
            """
            UPDATE incident_units SET status = $3, status_at = $4
             WHERE incident_id = $1 AND unit_id = $2 AND (status_at IS NULL OR status_at <= $4)
            """,
            target,
            unit_id,
            status,
            at,
        )
    return target


async def add_timeline(
    conn: asyncpg.Connection,
    *,
    event_id: str,
    incident_id: UUID,
    at: datetime,
    event_type: str,
    summary: str,
) -> None:
    """One line of an incident's history."""
    await conn.execute(
        "INSERT INTO timeline (event_id, incident_id, at, event_type, summary) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        event_id,
        incident_id,
        at,
        event_type,
        summary,
    )


async def add_work_order(conn: asyncpg.Connection, **fields: Any) -> None:
    """An agency work order, open until answered."""
    await conn.execute(
        """
        INSERT INTO work_orders (work_order_id, incident_id, agency, category, priority, summary, issued_at, due_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (work_order_id) DO NOTHING
        """,
        *fields.values(),
    )


async def add_dead_letter(conn: asyncpg.Connection, **fields: Any) -> None:
    """A dead-lettered message, for `siaga dlq list`."""
    await conn.execute(
        """
        INSERT INTO dead_letters (event_id, stage, reason, source_topic, source_partition, source_offset, at, preview)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING
        """,
        *fields.values(),
    )
