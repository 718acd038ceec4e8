"""Triage's own records: incidents it opened and the intakes that belong to them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from schemas.common import Place


async def open_incident(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    intake_id: UUID,
    category: str,
    priority: str,
    place: Place | None,
    at: datetime,
) -> None:
    """Record a new incident and its first intake."""
    await conn.execute(
        """
        INSERT INTO incidents (incident_id, category, priority, kecamatan_code, lat, lon, opened_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (incident_id) DO NOTHING
        """,
        incident_id,
        category,
        priority,
        place.kecamatan_code if place else None,
        place.lat if place else None,
        place.lon if place else None,
        at,
    )
    await conn.execute(
        "INSERT INTO intakes (intake_id, incident_id, linked_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (intake_id) DO NOTHING",
        intake_id,
        incident_id,
        at,
    )


async def incident_of_intake(conn: asyncpg.Connection, *, intake_id: UUID) -> UUID | None:
    """The incident an intake was already assigned to, if any."""
    value = await conn.fetchval("SELECT incident_id FROM intakes WHERE intake_id = $1", intake_id)
    return value if isinstance(value, UUID) else None
