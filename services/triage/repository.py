"""Triage's own records: incidents it opened, the intakes that belong to them, and which are
still open for duplicate calls to join."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from schemas.common import Place
from schemas.vocabulary import Category, Priority
from services.triage.correlation import OpenIncident


async def open_incident(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    intake_id: UUID,
    category: str,
    priority: str,
    place: Place | None,
    received_at: datetime,
    needs_review: bool,
    at: datetime,
) -> None:
    """Record a new incident and its first intake."""
    await conn.execute(
        """
        INSERT INTO incidents (incident_id, category, priority, kecamatan_code, lat, lon,
                               opened_at, received_at, needs_review)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (incident_id) DO NOTHING
        """,
        incident_id,
        category,
        priority,
        place.kecamatan_code if place else None,
        place.lat if place else None,
        place.lon if place else None,
        at,
        received_at,
        needs_review,
    )
    await link_intake(conn, intake_id=intake_id, incident_id=incident_id, at=at, reason="opened")


async def link_intake(
    conn: asyncpg.Connection, *, intake_id: UUID, incident_id: UUID, at: datetime, reason: str
) -> None:
    """Record that an intake belongs to an incident."""
    await conn.execute(
        "INSERT INTO intakes (intake_id, incident_id, linked_at, reason) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (intake_id) DO NOTHING",
        intake_id,
        incident_id,
        at,
        reason,
    )


async def incident_of_intake(conn: asyncpg.Connection, *, intake_id: UUID) -> UUID | None:
    """The incident an intake was already assigned to, if any."""
    value = await conn.fetchval("SELECT incident_id FROM intakes WHERE intake_id = $1", intake_id)
    return value if isinstance(value, UUID) else None


async def lock_category(conn: asyncpg.Connection, *, category: str) -> None:
    """Serialise correlation per category until the transaction ends, so two calls about one
    fire handled at once (two instances, or two partitions) cannot both open an incident."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('siaga.triage.correlate'), hashtext($1))",
        category,
    )


async def open_incidents(
    conn: asyncpg.Connection, *, category: str, around: datetime, window: timedelta
) -> list[OpenIncident]:
    """Incidents of a category, not ended, placed, whose first call is within the window."""
    rows = await conn.fetch(
        """
        SELECT incident_id, category, priority, lat, lon, COALESCE(received_at, opened_at) AS at
          FROM incidents
         WHERE category = $1 AND ended_at IS NULL AND NOT needs_review
           AND lat IS NOT NULL AND lon IS NOT NULL
           AND COALESCE(received_at, opened_at) BETWEEN $2::timestamptz - $3::interval
                                                     AND $2::timestamptz + $3::interval
        """,
        category,
        around,
        window,
    )
    return [
        OpenIncident(
            incident_id=r["incident_id"],
            category=Category(r["category"]),
            priority=Priority(r["priority"]),
            lat=r["lat"],
            lon=r["lon"],
            received_at=r["at"],
        )
        for r in rows
    ]


async def end_incident(conn: asyncpg.Connection, *, incident_id: UUID, at: datetime) -> None:
    """An incident resolved, closed, cancelled or merged takes no more duplicate calls."""
    await conn.execute(
        "UPDATE incidents SET ended_at = LEAST(COALESCE(ended_at, $2), $2) WHERE incident_id = $1",
        incident_id,
        at,
    )
