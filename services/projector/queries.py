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
    conn: asyncpg.Connection, *, limit: int = 20, status: str | None = None, review: bool = False
) -> list[dict[str, Any]]:
    """The newest incidents first, optionally of one status; `review`: the human triage queue
    (view `review_queue`), oldest first."""
    if review:
        rows = await conn.fetch(
            """
            SELECT q.incident_id, q.status, q.category, q.priority, q.agency, q.kecamatan,
                   true AS needs_review, q.received_at, NULL::text AS units,
                   q.confidence, q.explanation, q.text
              FROM review_queue q
             WHERE $2::text IS NULL OR q.status = $2
             LIMIT $1
            """,
            limit,
            status,
        )
        return [dict(r) for r in rows]
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
