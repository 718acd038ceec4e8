"""Writes to the read model; each is an idempotent, order-tolerant upsert."""

from __future__ import annotations

from dataclasses import astuple
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from schemas.common import Place
from services.projector.board import RANK, STEPS, BoardRow, UnitChange, fold


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


_STEPS_SQL = "ARRAY[" + ", ".join(f"'{step}'" for step in STEPS) + "]"


async def unit_on_incident(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    unit_id: str,
    status: str,
    at: datetime,
    unit_type: str | None = None,
    dispatch_id: UUID | None = None,
    eta_seconds: int | None = None,
) -> None:
    """A unit's step on one incident; the furthest step wins, in whatever order they come."""
    await conn.execute(
        f"""
        INSERT INTO incident_units AS iu
            (incident_id, unit_id, unit_type, dispatch_id, dispatched_at, eta_seconds, status, status_at)
        VALUES ($1, $2, $3, $4, CASE WHEN $4::uuid IS NULL THEN NULL ELSE $6::timestamptz END, $5, $7, $6)
        ON CONFLICT (incident_id, unit_id) DO UPDATE
           SET unit_type = COALESCE(EXCLUDED.unit_type, iu.unit_type),
               dispatch_id = COALESCE(EXCLUDED.dispatch_id, iu.dispatch_id),
               dispatched_at = COALESCE(EXCLUDED.dispatched_at, iu.dispatched_at),
               eta_seconds = COALESCE(EXCLUDED.eta_seconds, iu.eta_seconds),
               status = CASE WHEN array_position({_STEPS_SQL}, EXCLUDED.status)
                                  > array_position({_STEPS_SQL}, iu.status)
                             THEN EXCLUDED.status ELSE iu.status END,
               status_at = GREATEST(iu.status_at, EXCLUDED.status_at)
        """,
        incident_id,
        unit_id,
        unit_type,
        dispatch_id,
        eta_seconds,
        at,
        status,
    )


async def move_on_board(
    conn: asyncpg.Connection,
    *,
    unit_id: str,
    change: UnitChange,
    change_id: str,
    unit_type: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> None:
    """Apply an order or report to the unit board. The row is the fold of `board.apply`
    over all the unit's changes in time order (`unit_changes` keeps each change with the
    row after it), so a change that arrives late is folded in where it belongs, and the
    same changes give the same row in any order of arrival."""
    await conn.execute(
        """
        INSERT INTO units (unit_id, unit_type) VALUES ($1, $2)
        ON CONFLICT (unit_id) DO UPDATE SET unit_type = COALESCE(EXCLUDED.unit_type, units.unit_type)
        """,
        unit_id,
        unit_type,
    )
    await conn.execute("SELECT 1 FROM units WHERE unit_id = $1 FOR UPDATE", unit_id)
    key = (unit_id, change.at, RANK.get(change.status, len(STEPS)), change_id)
    if await conn.fetchval(
        """
        INSERT INTO unit_changes (unit_id, at, rank, change_id, status, incident_id)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true
        """,
        *key,
        change.status,
        change.incident_id,
    ):
        await _refold(conn, key)
    if lat is not None and lon is not None:
        await move_unit(conn, unit_id=unit_id, lat=lat, lon=lon, base=None, at=change.at)


_ROW = "row_status, row_status_at, row_incident_id, row_assigned_at, row_cleared_incident_id, row_cleared_at"


async def _refold(conn: asyncpg.Connection, key: tuple[str, datetime, int, str]) -> None:
    """Fold the changes from `key` on, starting from the row before it; store each row
    after and the last one on the board."""
    before = await conn.fetchrow(
        f"""
        SELECT {_ROW} FROM unit_changes
         WHERE unit_id = $1 AND (at, rank, change_id) < ($2, $3, $4)
         ORDER BY at DESC, rank DESC, change_id DESC LIMIT 1
        """,
        *key,
    )
    row: BoardRow | None = BoardRow(*before.values()) if before is not None else None
    later = await conn.fetch(
        """
        SELECT at, rank, change_id, status, incident_id FROM unit_changes
         WHERE unit_id = $1 AND (at, rank, change_id) >= ($2, $3, $4)
         ORDER BY at, rank, change_id
        """,
        *key,
    )
    rows = fold(row, [UnitChange(c["status"], c["at"], c["incident_id"]) for c in later])
    updates = [
        (key[0], c["at"], c["rank"], c["change_id"], *astuple(after))
        for c, after in zip(later, rows, strict=True)
    ]
    row = rows[-1]
    await conn.executemany(
        """
        UPDATE unit_changes
           SET row_status = $5, row_status_at = $6, row_incident_id = $7, row_assigned_at = $8,
               row_cleared_incident_id = $9, row_cleared_at = $10
         WHERE unit_id = $1 AND at = $2 AND rank = $3 AND change_id = $4
        """,
        updates,
    )
    await conn.execute(
        """
        UPDATE units
           SET status = $2, status_at = $3, incident_id = $4, assigned_at = $5,
               cleared_incident_id = $6, cleared_at = $7
         WHERE unit_id = $1
        """,
        key[0],
        *astuple(row),
    )


async def unit_registered(conn: asyncpg.Connection, **fields: Any) -> None:
    """Unit details from the fleet register; a unit first seen here is available at base."""
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
        INSERT INTO dead_letters (event_id, stage, reason, source_topic, source_partition, source_offset, at, preview, redrive_of)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING
        """,
        *fields.values(),
    )


async def add_redrive(conn: asyncpg.Connection, **fields: Any) -> None:
    """A dead letter sent back to its source topic."""
    await conn.execute(
        """
        INSERT INTO dead_letter_redrives (event_id, dead_letter_id, source_topic, partition, "offset", redriven_at, operator)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING
        """,
        *fields.values(),
    )


async def escalate_incident(conn: asyncpg.Connection, *, incident_id: UUID, at: datetime) -> None:
    """The incident waited for a unit: keep when it first did."""
    await conn.execute(
        """
        INSERT INTO incidents (incident_id, escalated_at) VALUES ($1, $2)
        ON CONFLICT (incident_id) DO UPDATE
           SET escalated_at = LEAST(incidents.escalated_at, EXCLUDED.escalated_at)
        """,
        incident_id,
        at,
    )


async def add_sla_breach(conn: asyncpg.Connection, **fields: Any) -> None:
    """A missed target, once per incident and target."""
    await conn.execute(
        """
        INSERT INTO sla_breaches
            (incident_id, target, priority, channel, category, received_at, due_at, breached_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING
        """,
        fields["incident_id"],
        fields["target"],
        fields["priority"],
        fields["channel"],
        fields["category"],
        fields["received_at"],
        fields["due_at"],
        fields["breached_at"],
    )
    await upsert_incident(conn, incident_id=fields["incident_id"], sla_breached=True)


async def work_order_step(
    conn: asyncpg.Connection, *, work_order_id: UUID, at: datetime, step: str, **details: Any
) -> None:
    """Stamp a step of a work order (the first time counts) with its details."""
    columns = {
        "reminded": ("reminded_at", ()),
        "overdue": ("overdue_at", ()),
        "answered": ("answered_at", ("answered_by", "response")),
        "closed": ("closed_at", ("resolution",)),
    }
    stamp, extra = columns[step]
    sets = [f"{stamp} = LEAST({stamp}, $2)"]
    values: list[Any] = [work_order_id, at]
    for name in extra:
        values.append(details[name])
        sets.append(f"{name} = COALESCE({name}, ${len(values)})")
    if step == "closed":  # closing is also a response, if none came before
        sets.append("answered_at = COALESCE(answered_at, $2)")
    await conn.execute(
        f"UPDATE work_orders SET {', '.join(sets)} WHERE work_order_id = $1", *values
    )


async def move_unit(
    conn: asyncpg.Connection,
    *,
    unit_id: str,
    lat: float,
    lon: float,
    base: str | None,
    at: datetime,
) -> None:
    """A unit's position (and base), from a report or a move: the latest by time wins, a
    tie goes to the smaller coordinates, so the same positions give the same row in any
    order of arrival."""
    await conn.execute(
        "INSERT INTO units (unit_id) VALUES ($1) ON CONFLICT (unit_id) DO NOTHING", unit_id
    )
    await conn.execute(
        """
        UPDATE units SET lat = $2, lon = $3, position_at = $4, base = COALESCE($5, base)
         WHERE unit_id = $1
           AND (position_at IS NULL OR position_at < $4
                OR (position_at = $4 AND (lat, lon) < ($2::float8, $3::float8)))
        """,
        unit_id,
        lat,
        lon,
        at,
        base,
    )
