"""The dispatcher's fleet, orders, waiting slots and work orders (its own schema)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from schemas.common import Place
from schemas.events import UnitRegisteredV1, WorkOrderIssuedV1
from schemas.vocabulary import Category, Priority, UnitStatus, UnitType
from services.common.db import lock_in_order
from services.dispatcher.decisions import Dispatch, Need
from services.dispatcher.runcards import Slot
from services.dispatcher.unit_reports import UnitState

# ---------------------------------------------------------------- fleet


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


async def move_unit(
    conn: asyncpg.Connection, *, unit_id: str, lat: float, lon: float, base: str | None
) -> bool:
    """A unit's new position (and base); False for an unknown unit."""
    done = await conn.execute(
        "UPDATE units SET lat = $2, lon = $3, base = COALESCE($4, base) WHERE unit_id = $1",
        unit_id,
        lat,
        lon,
        base,
    )
    return done != "UPDATE 0"


async def unit_type_of(conn: asyncpg.Connection, *, unit_id: str) -> str | None:
    """The kind of a known unit, or None."""
    value = await conn.fetchval("SELECT unit_type FROM units WHERE unit_id = $1", unit_id)
    return None if value is None else str(value)


async def any_unit_free(conn: asyncpg.Connection, *, unit_type: str) -> bool:
    """Whether any unit of the type is available."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM units WHERE status = 'available' AND unit_type = $1)",
            unit_type,
        )
    )


_UNIT_TYPES = "siaga.dispatch."  # namespace of the unit-type claim locks


async def lock_unit_type(conn: asyncpg.Connection, *, unit_type: str) -> None:
    """Serialise, across dispatcher instances, who claims and who frees units of a type.

    Without it, one instance's claim can skip a unit another instance is freeing and
    queue its incident as pending, while the other, not yet seeing that pending row,
    finds nothing to serve: the incident would wait with a free unit at hand.
    """
    await lock_in_order(conn, namespace=_UNIT_TYPES, names=[unit_type])


async def lock_unit_types(conn: asyncpg.Connection, *, unit_types: Iterable[str]) -> list[str]:
    """`lock_unit_type` for several types in one statement, in name order; returns that
    order."""
    return await lock_in_order(conn, namespace=_UNIT_TYPES, names=unit_types)


class Fleet:
    """What one batch's transaction knows of the fleet: the unit types whose claim lock
    (`lock_unit_type`) it holds, so each is taken once, and the types of the units its
    reports name, read in one statement.

    It serves only the connection `hold` was given, until `flush` or `discard`: the
    dispatcher's timer jobs run meanwhile on other connections and lock for themselves.
    """

    def __init__(self) -> None:
        self._conn: asyncpg.Connection | None = None
        self._held: set[str] = set()
        self._types: dict[str, str | None] = {}

    async def hold(
        self,
        conn: asyncpg.Connection,
        *,
        unit_types: Iterable[str],
        unit_ids: Iterable[str],
        incident_ids: Iterable[UUID] = (),
    ) -> None:
        """Read the types of `unit_ids` and of the open orders of `incident_ids`, then lock
        those and `unit_types` in name order (two dispatchers, or a dispatcher and its
        ack-timeout job, locking some types in common cannot deadlock)."""
        self._conn, self._held, self._types = conn, set(), {}
        ids = sorted(set(unit_ids))
        if ids:
            self._types = dict.fromkeys(ids)
            rows = await conn.fetch(
                "SELECT unit_id, unit_type FROM units WHERE unit_id = ANY($1::text[])", ids
            )
            self._types.update((row["unit_id"], row["unit_type"]) for row in rows)
        ordered: list[str] = []
        if incidents := sorted(set(incident_ids)):
            rows = await conn.fetch(
                "SELECT DISTINCT unit_type FROM dispatches WHERE incident_id = ANY($1::uuid[]) "
                "AND status IN ('dispatched', 'acknowledged')",
                incidents,
            )
            ordered = [row["unit_type"] for row in rows]
        named = (t for t in self._types.values() if t is not None)
        self._held.update(await lock_unit_types(conn, unit_types=[*unit_types, *named, *ordered]))

    async def lock(self, conn: asyncpg.Connection, *, unit_type: str) -> None:
        """`lock_unit_type`, unless this transaction already holds it."""
        if conn is self._conn and unit_type in self._held:
            return
        await lock_unit_type(conn, unit_type=unit_type)
        if conn is self._conn:
            self._held.add(unit_type)

    async def unit_type_of(self, conn: asyncpg.Connection, *, unit_id: str) -> str | None:
        """The kind of a known unit, or None (read by `hold` when it was named there)."""
        if conn is self._conn and unit_id in self._types:
            return self._types[unit_id]
        return await unit_type_of(conn, unit_id=unit_id)

    def registered(self, conn: asyncpg.Connection, *, unit_id: str, unit_type: str) -> None:
        """A unit was (re-)registered in this transaction, perhaps as another type."""
        if conn is self._conn:
            self._types[unit_id] = unit_type

    async def flush(self, conn: asyncpg.Connection) -> None:
        """The transaction is about to commit: what it held ends with it."""
        self.discard()

    def discard(self) -> None:
        """The transaction rolled back (or ended): forget it."""
        self._conn, self._held, self._types = None, set(), {}


async def claim_unit(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    unit_type: str,
    capability: str | None,
    lat: float,
    lon: float,
    at: datetime,
) -> ClaimedUnit | None:
    """Atomically take the nearest free unit of a type for an incident, the nearest with
    `capability` if any has it (an ALS ambulance for a P1; any unit of the type beats none),
    never one already passed over for it; None if none is free.

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
               AND unit_id NOT IN (SELECT unit_id FROM passed_over WHERE incident_id = $1)
             ORDER BY coalesce($6 = ANY (capabilities), false) DESC,
                      (lat - $3) ^ 2 + ((lon - $4) * cos(radians($3))) ^ 2, unit_id
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
        capability,
    )
    if row is None:
        return None
    return ClaimedUnit(row["unit_id"], row["unit_type"], row["lat"], row["lon"])


async def claim_named_unit(
    conn: asyncpg.Connection, *, unit_id: str, incident_id: UUID, at: datetime
) -> ClaimedUnit | None:
    """Take a supervisor's chosen unit, if it is free (same atomic rule as `claim_unit`)."""
    row = await conn.fetchrow(
        """
        UPDATE units SET status = 'dispatched', incident_id = $2, status_at = $3
         WHERE unit_id = $1 AND status = 'available'
        RETURNING unit_id, unit_type, lat, lon
        """,
        unit_id,
        incident_id,
        at,
    )
    if row is None:
        return None
    return ClaimedUnit(row["unit_id"], row["unit_type"], row["lat"], row["lon"])


async def release_unit(
    conn: asyncpg.Connection, *, unit_id: str, incident_id: UUID, status: str, at: datetime
) -> None:
    """Take a unit off an incident (if it is still on it), leaving it `status`."""
    await conn.execute(
        """
        UPDATE units SET status = $3, incident_id = NULL, status_at = GREATEST(status_at, $4)
         WHERE unit_id = $1 AND incident_id = $2
        """,
        unit_id,
        incident_id,
        status,
        at,
    )


async def pass_over(conn: asyncpg.Connection, *, incident_id: UUID, unit_id: str) -> None:
    """Do not offer this unit to this incident again."""
    await conn.execute(
        "INSERT INTO passed_over (incident_id, unit_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        incident_id,
        unit_id,
    )


async def unit_for_report(conn: asyncpg.Connection, *, unit_id: str) -> UnitState | None:
    """What a unit's report is checked against: its status, its open order and its latest
    order; None for a unit not in the fleet."""
    row = await conn.fetchrow(
        """
        SELECT u.unit_id, u.unit_type, u.status, u.incident_id,
               d.incident_id AS last_incident_id, d.dispatched_at
          FROM units AS u
          LEFT JOIN LATERAL (
                SELECT incident_id, dispatched_at FROM dispatches
                 WHERE unit_id = u.unit_id
                 ORDER BY (incident_id = u.incident_id) DESC NULLS LAST, dispatched_at DESC
                 LIMIT 1
               ) AS d ON true
         WHERE u.unit_id = $1
        """,
        unit_id,
    )
    if row is None:
        return None
    return UnitState(
        unit_id=row["unit_id"],
        unit_type=row["unit_type"],
        status=UnitStatus(row["status"]),
        incident_id=row["incident_id"],
        last_incident_id=row["last_incident_id"],
        ordered_at=row["dispatched_at"],
    )


async def update_unit_status(
    conn: asyncpg.Connection,
    *,
    unit_id: str,
    status: str,
    at: datetime,
    lat: float | None,
    lon: float | None,
) -> None:
    """Apply a unit's report that `unit_reports.check_report` accepted (it is the one
    check: a unit is freed only by a report naming its order's incident, and so on)."""
    await conn.execute(
        """
        UPDATE units
           SET status = $2,
               status_at = GREATEST(status_at, $3),
               lat = COALESCE($4, lat),
               lon = COALESCE($5, lon),
               incident_id = CASE WHEN $2 IN ('available', 'out_of_service') THEN NULL
                                  ELSE incident_id END
         WHERE unit_id = $1
        """,
        unit_id,
        status,
        at,
        lat,
        lon,
    )
    if status == "acknowledged":
        await conn.execute(
            "UPDATE dispatches SET status = 'acknowledged', acknowledged_at = $2 "
            "WHERE unit_id = $1 AND status = 'dispatched'",
            unit_id,
            at,
        )
    elif status in ("available", "out_of_service"):
        await conn.execute(
            "UPDATE dispatches SET status = 'closed', ended_at = $2, end_reason = $3 "
            "WHERE unit_id = $1 AND status IN ('dispatched', 'acknowledged')",
            unit_id,
            at,
            f"unit reported {status}",
        )


# ---------------------------------------------------------------- orders


@dataclass(frozen=True)
class Order:
    """An order given to a unit, with what it takes to give it to another."""

    dispatch_id: UUID
    incident_id: UUID
    unit_id: str
    slot: int
    unit_type: str
    capability: str | None
    category: str
    priority: str
    place: Place | None


def place_of(value: dict[str, Any] | None) -> Place | None:
    """A place kept as jsonb (decoded by the pool's codec), or None."""
    return None if value is None else Place.model_validate(value)


def place_json(place: Place | None) -> dict[str, Any] | None:
    """A place as the jsonb column keeps it (the pool's codec encodes it)."""
    return None if place is None else place.model_dump(mode="json")


def _order(row: asyncpg.Record) -> Order:
    return Order(
        dispatch_id=row["dispatch_id"],
        incident_id=row["incident_id"],
        unit_id=row["unit_id"],
        slot=row["slot"],
        unit_type=row["unit_type"],
        capability=row["capability"],
        category=row["category"],
        priority=row["priority"],
        place=place_of(row["place"]),
    )


_ORDER_COLUMNS = (
    "dispatch_id, incident_id, unit_id, slot, unit_type, capability, category, priority, place"
)


async def record_dispatch(conn: asyncpg.Connection, *, order: Dispatch) -> None:
    """Keep the order given to a unit, due to be acknowledged by its `ack_due_at`."""
    given = order.order
    await conn.execute(
        """
        INSERT INTO dispatches (dispatch_id, incident_id, unit_id, status, dispatched_at, slot,
                                unit_type, capability, category, priority, place, ack_due_at)
        VALUES ($1, $2, $3, 'dispatched', $4, $5, $6, $7, $8, $9, $10::jsonb, $11)
        ON CONFLICT (dispatch_id) DO NOTHING
        """,
        given.dispatch_id,
        given.incident_id,
        given.unit_id,
        given.dispatched_at,
        order.slot,
        order.wanted.unit_type.value,
        order.wanted.capability,
        given.category.value,
        given.priority.value,
        place_json(given.place),
        order.ack_due_at,
    )


async def unacknowledged_types(conn: asyncpg.Connection, *, now: datetime) -> list[str]:
    """The unit types of the orders past their acknowledgement time (nothing locked)."""
    rows = await conn.fetch(
        "SELECT DISTINCT unit_type FROM dispatches WHERE status = 'dispatched' AND ack_due_at <= $1",
        now,
    )
    return [row["unit_type"] for row in rows]


async def unacknowledged(
    conn: asyncpg.Connection, *, now: datetime, unit_types: Sequence[str], limit: int = 100
) -> list[Order]:
    """Orders for units of `unit_types` past their acknowledgement time, locked for this
    transaction (those another transaction has locked are left for the next look)."""
    rows = await conn.fetch(
        f"""
        SELECT {_ORDER_COLUMNS} FROM dispatches
         WHERE status = 'dispatched' AND ack_due_at <= $1 AND unit_type = ANY($2::text[])
         ORDER BY ack_due_at
         LIMIT $3
           FOR UPDATE SKIP LOCKED
        """,
        now,
        list(unit_types),
        limit,
    )
    return [_order(r) for r in rows]


async def active_orders(
    conn: asyncpg.Connection, *, incident_id: UUID, unit_id: str | None = None
) -> list[Order]:
    """Orders of an incident not yet ended (of one unit, if given), locked."""
    rows = await conn.fetch(
        f"""
        SELECT {_ORDER_COLUMNS} FROM dispatches
         WHERE incident_id = $1 AND status IN ('dispatched', 'acknowledged')
           AND ($2::text IS NULL OR unit_id = $2)
         ORDER BY slot
           FOR UPDATE
        """,
        incident_id,
        unit_id,
    )
    return [_order(r) for r in rows]


async def end_order(
    conn: asyncpg.Connection, *, dispatch_id: UUID, reason: str, at: datetime
) -> None:
    """An order is withdrawn."""
    await conn.execute(
        "UPDATE dispatches SET status = 'cancelled', ended_at = $2, end_reason = $3 "
        "WHERE dispatch_id = $1",
        dispatch_id,
        at,
        reason,
    )


# ---------------------------------------------------------------- waiting slots


async def queue_pending(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    slot: int,
    unit_type: str,
    capability: str | None,
    priority: str,
    category: str,
    place: Place | None,
    at: datetime,
) -> bool:
    """Remember a run-card slot that no free unit could fill; False if it already waits."""
    inserted = await conn.fetchval(
        """
        INSERT INTO pending (incident_id, slot, unit_type, capability, priority, category, place, queued_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
        ON CONFLICT DO NOTHING
        RETURNING true
        """,
        incident_id,
        slot,
        unit_type,
        capability,
        priority,
        category,
        place_json(place),
        at,
    )
    return bool(inserted)


@dataclass(frozen=True)
class PendingSlot:
    """A run-card slot waiting for a free unit of its type, since `queued_at`."""

    need: Need
    queued_at: datetime


async def next_pending(
    conn: asyncpg.Connection, *, unit_type: str, skip: int = 0
) -> PendingSlot | None:
    """The most urgent, oldest waiting slot for a unit type (after `skip` others), locked
    (read by the function of migration 006, planned at each call)."""
    row = await conn.fetchrow(
        """
        SELECT incident_id, slot, unit_type, capability, priority, category, place, queued_at
          FROM next_pending($1, $2)
        """,
        unit_type,
        skip,
    )
    if row is None:
        return None
    need = Need(
        incident_id=row["incident_id"],
        slot=row["slot"],
        wanted=Slot(UnitType(row["unit_type"]), row["capability"]),
        category=Category(row["category"]),
        priority=Priority(row["priority"]),
        place=place_of(row["place"]),
    )
    return PendingSlot(need, row["queued_at"])


async def remove_pending(conn: asyncpg.Connection, *, incident_id: UUID, slot: int) -> None:
    """A waiting slot was served."""
    await conn.execute(
        "DELETE FROM pending WHERE incident_id = $1 AND slot = $2", incident_id, slot
    )


async def run_card_slots(conn: asyncpg.Connection, *, incident_id: UUID) -> dict[int, Slot]:
    """The slots of an incident that a unit was sent for (and not withdrawn from) or that
    wait for one, by slot number."""
    rows = await conn.fetch(
        """
        SELECT slot, unit_type, capability FROM dispatches
         WHERE incident_id = $1 AND status <> 'cancelled'
        UNION ALL
        SELECT slot, unit_type, capability FROM pending WHERE incident_id = $1
        """,
        incident_id,
    )
    return {r["slot"]: Slot(UnitType(r["unit_type"]), r["capability"]) for r in rows}


async def withdraw_pending(conn: asyncpg.Connection, *, incident_id: UUID) -> int:
    """A finished incident no longer waits for units; returns how many slots were dropped."""
    dropped = await conn.execute("DELETE FROM pending WHERE incident_id = $1", incident_id)
    return int(dropped.split()[-1])


# ---------------------------------------------------------------- work orders


async def issue_work_order(conn: asyncpg.Connection, *, order: WorkOrderIssuedV1) -> bool:
    """Record a work order; False when the incident already has one."""
    inserted = await conn.fetchval(
        """
        INSERT INTO work_orders (work_order_id, incident_id, agency, category, priority, issued_at, due_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true
        """,
        order.work_order_id,
        order.incident_id,
        order.agency,
        order.category.value,
        order.priority.value,
        order.issued_at,
        order.due_at,
    )
    return bool(inserted)


@dataclass(frozen=True)
class WorkOrder:
    """An agency's work order as the dispatcher keeps it, with the steps it went through."""

    work_order_id: UUID
    incident_id: UUID
    agency: str
    category: str | None
    priority: str | None
    issued_at: datetime
    due_at: datetime
    answered_at: datetime | None
    closed_at: datetime | None
    reminded_at: datetime | None
    escalated_at: datetime | None


async def work_order_of(conn: asyncpg.Connection, *, incident_id: UUID) -> WorkOrder | None:
    """An incident's work order, locked for this transaction."""
    row = await conn.fetchrow(
        """
        SELECT work_order_id, incident_id, agency, category, priority, issued_at, due_at,
               answered_at, closed_at, reminded_at, escalated_at
          FROM work_orders WHERE incident_id = $1 FOR UPDATE
        """,
        incident_id,
    )
    return None if row is None else WorkOrder(**row)


async def mark_work_order(
    conn: asyncpg.Connection, *, work_order_id: UUID, column: str, at: datetime
) -> None:
    """Stamp a step of a work order (answered, closed)."""
    if column not in ("answered_at", "closed_at"):
        raise ValueError(f"not a work order step: {column}")
    await conn.execute(
        f"UPDATE work_orders SET {column} = COALESCE({column}, $2) WHERE work_order_id = $1",
        work_order_id,
        at,
    )


@dataclass(frozen=True)
class DueWorkOrder:
    """An open work order whose reminder (or escalation) fell due, stamped `at`."""

    work_order_id: UUID
    incident_id: UUID
    agency: str
    due_at: datetime
    at: datetime


async def due_work_orders(
    conn: asyncpg.Connection, *, step: str, when_due_before: datetime, limit: int = 100
) -> list[DueWorkOrder]:
    """Open work orders whose reminder (or escalation) falls due, stamped now, exactly once."""
    if step not in ("reminded_at", "escalated_at"):
        raise ValueError(f"not a work order timer: {step}")
    rows = await conn.fetch(
        f"""
        WITH due AS (
            SELECT work_order_id FROM work_orders
             WHERE answered_at IS NULL AND closed_at IS NULL AND {step} IS NULL
               AND due_at <= $1
             ORDER BY due_at
             LIMIT $2
               FOR UPDATE SKIP LOCKED
        )
        UPDATE work_orders w SET {step} = now()
          FROM due WHERE w.work_order_id = due.work_order_id
        RETURNING w.work_order_id, w.incident_id, w.agency, w.due_at, w.{step} AS at
        """,
        when_due_before,
        limit,
    )
    return [DueWorkOrder(**r) for r in rows]
