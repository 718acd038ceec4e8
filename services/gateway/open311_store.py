"""Where Open311 requests are kept (the gateway's `open311_requests`) and how far each got
(the read model's incidents and work orders, read as the read-only reader)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TypeAlias

import asyncpg

from services.gateway.open311_forms import NewRequest
from services.gateway.open311_view import Progress, StoredRequest

Connection: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def record_request(
    conn: asyncpg.Connection, *, intake_id: uuid.UUID, request: NewRequest, now: datetime
) -> None:
    """Keep what the client sent besides the intake, in the intake's own transaction."""
    await conn.execute(
        """
        INSERT INTO open311_requests (intake_id, service_code, description, address, address_id,
                                      lat, lon, media_url, email, device_id, account_id,
                                      requested_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (intake_id) DO NOTHING
        """,
        intake_id,
        request.service.code,
        request.description,
        request.address,
        request.address_id,
        request.lat,
        request.lon,
        request.media_url,
        request.email,
        request.device_id,
        request.account_id,
        now,
    )


_STORED = """
    SELECT r.intake_id, r.service_code, r.description, r.address, r.address_id, r.lat, r.lon,
           r.media_url, r.requested_at, i.incident_id
      FROM open311_requests r JOIN intakes i USING (intake_id)
"""


async def requests_by_id(conn: Connection, *, ids: Collection[uuid.UUID]) -> list[StoredRequest]:
    """The requests of these ids that exist, newest first."""
    rows = await conn.fetch(
        f"{_STORED} WHERE r.intake_id = ANY($1::uuid[]) "
        "ORDER BY r.requested_at DESC, r.intake_id DESC",
        list(ids),
    )
    return [StoredRequest(**r) for r in rows]


async def requests_page(
    conn: Connection,
    *,
    service_codes: Collection[str],
    start: datetime,
    end: datetime,
    after: StoredRequest | None,
    limit: int,
) -> list[StoredRequest]:
    """Up to `limit` requests made from `start` to `end`, of these services (all when none
    named), newest first, from the one after `after` on."""
    rows = await conn.fetch(
        f"""
        {_STORED}
         WHERE r.requested_at BETWEEN $1 AND $2
           AND (cardinality($3::text[]) = 0 OR r.service_code = ANY($3::text[]))
           AND ($4::timestamptz IS NULL OR (r.requested_at, r.intake_id) < ($4, $5::uuid))
         ORDER BY r.requested_at DESC, r.intake_id DESC
         LIMIT $6
        """,
        start,
        end,
        sorted(service_codes),
        None if after is None else after.requested_at,
        None if after is None else after.intake_id,
        limit,
    )
    return [StoredRequest(**r) for r in rows]


async def progress_of(
    reads: Connection, requests: Sequence[StoredRequest]
) -> dict[uuid.UUID, Progress]:
    """How far each request's incident got, by intake id; a request whose incident the
    read model does not show yet is left out. The incident is the one the gateway's
    consumer noted, else the one the read model's intakes name."""
    rows = await reads.fetch(
        """
        SELECT a.intake_id, i.incident_id, i.status, i.status_at, i.agency, i.classified_at,
               i.kecamatan, i.desa, i.lat, i.lon,
               w.agency AS order_agency, w.issued_at, w.due_at, w.answered_at, w.response,
               w.closed_at, w.resolution
          FROM unnest($1::uuid[], $2::uuid[]) AS a (intake_id, incident_id)
          LEFT JOIN intakes t ON t.intake_id = a.intake_id
          JOIN incidents i ON i.incident_id = COALESCE(a.incident_id, t.incident_id)
          LEFT JOIN LATERAL (
                SELECT agency, issued_at, due_at, answered_at, response, closed_at, resolution
                  FROM work_orders
                 WHERE work_orders.incident_id = i.incident_id
                 ORDER BY issued_at DESC
                 LIMIT 1
          ) w ON true
        """,
        [r.intake_id for r in requests],
        [r.incident_id for r in requests],
    )
    return {
        row["intake_id"]: Progress(**{k: v for k, v in row.items() if k != "intake_id"})
        for row in rows
    }
