"""Read-model look-ups behind `siaga incident show/list` and the field-unit client."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


async def find_incident(conn: asyncpg.Connection, ident: str) -> dict[str, Any] | None:
    """One incident by incident id or by any of its intake ids, with intakes, units, timeline."""
    key = _uuid(ident)
    if key is None:
        return None
    row = await conn.fetchrow(
        """
        SELECT i.* FROM incidents i
         WHERE i.incident_id = $1
            OR i.incident_id = (SELECT incident_id FROM intakes WHERE intake_id = $1)
         LIMIT 1
        """,
        key,
    )
    if row is None:
        return None
    incident = dict(row)
    incident_id = incident["incident_id"]
    intakes = await conn.fetch(
        "SELECT intake_id FROM intakes WHERE incident_id = $1 ORDER BY received_at", incident_id
    )
    units = await conn.fetch(
        """
        SELECT unit_id, unit_type, status, dispatched_at, eta_seconds
          FROM incident_units WHERE incident_id = $1 ORDER BY dispatched_at NULLS LAST, unit_id
        """,
        incident_id,
    )
    timeline = await conn.fetch(
        "SELECT at, event_type, summary FROM timeline WHERE incident_id = $1 ORDER BY at, event_id",
        incident_id,
    )
    incident["intake_ids"] = [r["intake_id"] for r in intakes]
    incident["units"] = [dict(r) for r in units]
    incident["timeline"] = [dict(r) for r in timeline]
    return incident


async def list_incidents(
    conn: asyncpg.Connection, *, limit: int = 20, status: str | None = None
) -> list[dict[str, Any]]:
    """The newest incidents first, optionally of one status."""
    rows = await conn.fetch(
        """
        SELECT i.incident_id, i.status, i.category, i.priority, i.agency, i.kecamatan,
               i.needs_review, i.received_at,
               (SELECT string_agg(u.unit_id, ',' ORDER BY u.unit_id)
                  FROM incident_units u WHERE u.incident_id = i.incident_id) AS units
          FROM incidents i
         WHERE $2::text IS NULL OR i.status = $2
         ORDER BY i.received_at DESC NULLS LAST
         LIMIT $1
        """,
        limit,
        status,
    )
    return [dict(r) for r in rows]


async def current_order(conn: asyncpg.Connection, unit_id: str) -> UUID | None:
    """The incident a unit is serving now, per the read model."""
    value = await conn.fetchval("SELECT incident_id FROM units WHERE unit_id = $1", unit_id)
    return value if isinstance(value, UUID) else None


async def dead_letters(
    conn: asyncpg.Connection, *, limit: int = 50, stage: str | None = None, only_open: bool = False
) -> list[dict[str, Any]]:
    """The newest dead letters first, with when (if ever) each was redriven."""
    rows = await conn.fetch(
        """
        SELECT * FROM (
            SELECT d.event_id, d.stage, d.reason, d.source_topic, d.source_partition,
                   d.source_offset, d.at, d.preview, d.redrive_of,
                   (SELECT max(r.redriven_at) FROM dead_letter_redrives r
                     WHERE r.dead_letter_id = d.event_id) AS redriven_at
              FROM dead_letters d
             WHERE ($2::text IS NULL OR d.stage = $2)
        ) found
         WHERE NOT $3 OR redriven_at IS NULL
         ORDER BY at DESC, event_id
         LIMIT $1
        """,
        limit,
        stage,
        only_open,
    )
    return [dict(r) for r in rows]
