"""The tracker's incidents (status and eTimes) and unit assignments (its own schema)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from schemas.events import SlaBreachedV1
from schemas.vocabulary import Category, Channel, IncidentStatus, Priority
from services.common.db import lock_in_order

TIME_COLUMNS = frozenset(
    {
        "call_received_at",
        "classified_at",
        "unit_notified_at",
        "acknowledged_at",
        "en_route_at",
        "on_scene_at",
        "left_scene_at",
        "at_destination_at",
        "back_in_service_at",
        "resolved_at",
    }
)


@dataclass
class _Incident:
    """An incident as this batch has it: its status and the steps it first saw."""

    status: IncidentStatus | None
    stamps: dict[str, datetime] = field(default_factory=dict)
    written: bool = False


# Every eTimes column in one order, for the one upsert that writes a batch's steps.
_COLUMNS = sorted(TIME_COLUMNS)
_WRITE_STEPS = f"""
    INSERT INTO incidents (incident_id, status, updated_at, {", ".join(_COLUMNS)})
    SELECT k.incident_id, k.status, now(), {", ".join(f"k.{c}" for c in _COLUMNS)}
      FROM unnest($1::uuid[], $2::text[],
                  {", ".join(f"${n}::timestamptz[]" for n in range(3, 3 + len(_COLUMNS)))})
           AS k(incident_id, status, {", ".join(_COLUMNS)})
    ON CONFLICT (incident_id) DO UPDATE
       SET status = EXCLUDED.status, updated_at = now(),
           {", ".join(f"{c} = COALESCE(incidents.{c}, EXCLUDED.{c})" for c in _COLUMNS)}
"""


class Incidents:
    """The tracker's incidents for one batch: those its events name are locked and read in
    one statement, their steps kept in memory and written back in one statement, and the
    SLA timers the batch stops and starts are stopped in one and started in one."""

    def __init__(self) -> None:
        self._known: dict[UUID, _Incident] = {}
        self._timers: list[SlaTimer] = []
        self._stops: list[SlaStop] = []

    async def lock(self, conn: asyncpg.Connection, ids: Collection[UUID]) -> None:
        """Lock and read, in one go, the incidents a batch will change (those not read yet)."""
        await self._read(conn, ids)

    async def _read(self, conn: asyncpg.Connection, ids: Collection[UUID]) -> None:
        # Not `set(ids) - self._known.keys()`: that walks (and hashes) every incident the
        # batch has read, once per event.
        wanted = sorted({i for i in ids if i not in self._known})
        if not wanted:
            return
        # Locked in one order, so two instances with incidents in common cannot deadlock.
        rows = await conn.fetch(
            "SELECT incident_id, status FROM incidents "
            "WHERE incident_id = ANY($1::uuid[]) ORDER BY incident_id FOR UPDATE",
            wanted,
        )
        self._known.update({i: _Incident(None) for i in wanted})
        for row in rows:
            self._known[row["incident_id"]] = _Incident(IncidentStatus(row["status"]))

    async def status_of(
        self, conn: asyncpg.Connection, *, incident_id: UUID
    ) -> IncidentStatus | None:
        """Current status, locked for the rest of the transaction; None for a new incident."""
        await self._read(conn, (incident_id,))
        return self._known[incident_id].status

    def record_step(
        self,
        *,
        incident_id: UUID,
        status: IncidentStatus,
        time_column: str | None,
        at: datetime,
    ) -> None:
        """Set the status and, the first time only, when this kind of step happened (the
        incident was read by `status_of`)."""
        incident = self._known[incident_id]
        incident.status = status
        incident.written = True
        if time_column is not None:
            self._stamp(incident, time_column, at)

    async def stamp(
        self, conn: asyncpg.Connection, *, incident_id: UUID, column: str, at: datetime
    ) -> None:
        """Record when a step happened the first time, without changing the status (an
        incident the tracker has no status for yet gets no times)."""
        await self._read(conn, (incident_id,))
        incident = self._known[incident_id]
        if incident.status is not None:
            incident.written = True
            self._stamp(incident, column, at)

    @staticmethod
    def _stamp(incident: _Incident, column: str, at: datetime) -> None:
        if column not in TIME_COLUMNS:
            raise ValueError(f"unknown eTimes column {column}")
        incident.stamps.setdefault(column, at)

    def stop_timer(self, stop: SlaStop) -> None:
        """Stop the clock on a target with the batch's writes (the earliest stop counts)."""
        self._stops.append(stop)

    def start_timer(self, timer: SlaTimer) -> None:
        """Start the clock on a target with the batch's writes (in any order with its stops:
        a stop is kept, and a timer started after it starts stopped)."""
        self._timers.append(timer)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write the batch's steps and timers, and start afresh."""
        written = sorted(
            ((i, row) for i, row in self._known.items() if row.written), key=lambda x: x[0]
        )
        stops, timers = self._stops, self._timers
        self.discard()
        # Stops first: a timer this batch starts takes a stop the batch read before it.
        if stops:
            await stop_sla_timers(conn, stops)
        if timers:
            await start_sla_timers(conn, timers)
        if not written:
            return
        await conn.execute(
            _WRITE_STEPS,
            [i for i, _ in written],
            [row.status.value if row.status else None for _, row in written],
            *([row.stamps.get(c) for _, row in written] for c in _COLUMNS),
        )

    def discard(self) -> None:
        """Forget everything (the transaction rolled back)."""
        self._known = {}
        self._timers = []
        self._stops = []


@dataclass
class Assignment:
    """A unit's order on an incident, as the batch has it."""

    incident_id: UUID
    unit_id: str
    dispatched_at: datetime
    active: bool = True
    reached_scene: bool = False
    changed: bool = False


# Only ever from open to ended and from not yet to reached scene, so the write commutes with
# any other instance's write of the same row.
_WRITE_ASSIGNMENTS = """
    INSERT INTO assignments (incident_id, unit_id, dispatched_at, active, reached_scene)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::bool[], $5::bool[])
    ON CONFLICT (incident_id, unit_id) DO UPDATE
       SET active = assignments.active AND EXCLUDED.active,
           reached_scene = assignments.reached_scene OR EXCLUDED.reached_scene
"""


class Assignments:
    """Units' orders for one batch: every order of the incidents named by its events that
    name a unit, and of the incidents its units are on or were on last, read in one
    statement, changed in memory, and written back in one."""

    def __init__(self) -> None:
        self._orders: dict[tuple[UUID, str], Assignment] = {}
        self._of_unit: dict[str, list[Assignment]] = {}
        self._of_incident: dict[UUID, list[Assignment]] = {}
        self._incidents: set[UUID] = set()  # every order of these is in `_orders`
        self._units: set[str] = set()  # the open and the latest order of these are too
        self._asked: set[str] = set()  # units whose incidents `incidents_of` found ...
        self._theirs: set[UUID] = set()  # ... these, which `read` reads next

    async def incidents_of(self, conn: asyncpg.Connection, units: Collection[str]) -> set[UUID]:
        """The incidents `units` (those not read yet) have open orders on or had their
        latest order on: what a batch that names the units must lock; `read` reads them.

        The units are locked first, in name order: every batch that changes a unit's orders
        names the unit, so no other instance can give it a new order until this
        transaction ends, and the incidents found stay all of its incidents."""
        wanted = sorted(set(units) - self._units)
        if not wanted:
            return set()
        await lock_in_order(conn, namespace="siaga.tracker.unit.", names=wanted)
        rows = await conn.fetch(
            """
            SELECT DISTINCT mine.incident_id
              FROM unnest($1::text[]) AS u(unit_id)
             CROSS JOIN LATERAL (
                   (SELECT incident_id FROM assignments WHERE unit_id = u.unit_id AND active)
                   UNION ALL
                   (SELECT incident_id FROM assignments WHERE unit_id = u.unit_id
                     ORDER BY dispatched_at DESC LIMIT 1)
             ) AS mine
            """,
            wanted,
        )
        theirs = {row["incident_id"] for row in rows}
        self._asked.update(wanted)
        self._theirs.update(theirs)
        return theirs

    async def read(self, conn: asyncpg.Connection, *, incidents: Collection[UUID]) -> None:
        """Read every order of `incidents` and of those `incidents_of` found: then every
        open and latest order of the units it was asked about is known too."""
        wanted = sorted((set(incidents) | self._theirs) - self._incidents)
        if wanted:
            rows = await conn.fetch(
                "SELECT incident_id, unit_id, dispatched_at, active, reached_scene "
                "FROM assignments WHERE incident_id = ANY($1::uuid[])",
                wanted,
            )
            for row in rows:
                if (row["incident_id"], row["unit_id"]) not in self._orders:
                    self._add(Assignment(**dict(row)))
            self._incidents.update(wanted)
        self._units.update(self._asked)
        self._asked, self._theirs = set(), set()

    async def _ensure(
        self, conn: asyncpg.Connection, *, unit_id: str | None, incident_id: UUID | None
    ) -> None:
        # Only when a batch was not prepared for this event (a handler called on its own).
        if unit_id is not None:
            await self.incidents_of(conn, [unit_id])
        await self.read(conn, incidents=[] if incident_id is None else [incident_id])

    async def assign(
        self, conn: asyncpg.Connection, *, incident_id: UUID, unit_id: str, at: datetime
    ) -> Assignment:
        """A unit was ordered to an incident (nothing changes when its report already opened
        the order, or the order was ended); returns the order."""
        await self._ensure(conn, unit_id=unit_id, incident_id=incident_id)
        order = self._orders.get((incident_id, unit_id))
        if order is None:
            order = self._add(Assignment(incident_id, unit_id, dispatched_at=at, changed=True))
        return order

    def _add(self, order: Assignment) -> Assignment:
        self._orders[order.incident_id, order.unit_id] = order
        self._of_unit.setdefault(order.unit_id, []).append(order)
        self._of_incident.setdefault(order.incident_id, []).append(order)
        return order

    async def active(
        self, conn: asyncpg.Connection, *, unit_id: str, incident_id: UUID | None
    ) -> Assignment | None:
        """The unit's current order (on `incident_id` if given), the latest if several."""
        return await self._latest(conn, unit_id=unit_id, incident_id=incident_id, open_only=True)

    async def last(
        self, conn: asyncpg.Connection, *, unit_id: str, incident_id: UUID | None
    ) -> UUID | None:
        """The incident of the unit's latest order (on `incident_id` if given), open or not."""
        order = await self._latest(conn, unit_id=unit_id, incident_id=incident_id, open_only=False)
        return None if order is None else order.incident_id

    async def _latest(
        self,
        conn: asyncpg.Connection,
        *,
        unit_id: str,
        incident_id: UUID | None,
        open_only: bool,
    ) -> Assignment | None:
        await self._ensure(conn, unit_id=unit_id, incident_id=incident_id)
        mine = [
            order
            for order in self._of_unit.get(unit_id, ())
            if (order.active or not open_only)
            and (incident_id is None or order.incident_id == incident_id)
        ]
        return max(mine, key=lambda order: order.dispatched_at, default=None)

    def reached_scene(self, order: Assignment) -> None:
        """The unit got to the scene of its order's incident."""
        order.reached_scene = order.changed = True

    async def end(self, conn: asyncpg.Connection, *, incident_id: UUID, unit_id: str) -> None:
        """The unit is done with, or released from, this incident (if it was ordered there)."""
        await self._ensure(conn, unit_id=None, incident_id=incident_id)
        order = self._orders.get((incident_id, unit_id))
        if order is not None and order.active:
            order.active = False
            order.changed = True

    async def progress(
        self, conn: asyncpg.Connection, *, incident_id: UUID
    ) -> tuple[int, list[str]]:
        """Orders still open on the incident, and every unit that reached its scene."""
        await self._ensure(conn, unit_id=None, incident_id=incident_id)
        orders = self._of_incident.get(incident_id, [])
        served = sorted({o.unit_id for o in orders if o.reached_scene})
        return sum(1 for o in orders if o.active), served

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write the batch's changed orders in one statement, and start afresh."""
        # In key order, so two instances writing orders in common cannot deadlock.
        changed = sorted(
            (o for o in self._orders.values() if o.changed),
            key=lambda o: (o.incident_id, o.unit_id),
        )
        self.discard()
        if changed:
            await conn.execute(
                _WRITE_ASSIGNMENTS,
                [o.incident_id for o in changed],
                [o.unit_id for o in changed],
                [o.dispatched_at for o in changed],
                [o.active for o in changed],
                [o.reached_scene for o in changed],
            )

    def discard(self) -> None:
        """Forget everything (the transaction rolled back)."""
        self._orders = {}
        self._of_unit = {}
        self._of_incident = {}
        self._incidents = set()
        self._units = set()
        self._asked = set()
        self._theirs = set()


# ---------------------------------------------------------------- SLA timers


@dataclass(frozen=True)
class SlaTimer:
    """The clock on one target of an incident (`dispatch` or `first_response`)."""

    incident_id: UUID
    target: str
    due_at: datetime
    priority: str
    channel: str
    category: str
    received_at: datetime


async def start_sla_timers(conn: asyncpg.Connection, timers: Sequence[SlaTimer]) -> None:
    """Start the clock on targets (once per incident and target), in one statement; a stop
    that came first (an order read before its classification) applies at once, the
    earliest one winning."""
    await conn.execute(
        """
        INSERT INTO sla_timers
            (incident_id, target, due_at, priority, channel, category, received_at,
             met_at, voided_at)
        SELECT k.incident_id, k.target, k.due_at, k.priority, k.channel, k.category,
               k.received_at, CASE WHEN stop.met THEN stop.at END,
               CASE WHEN NOT stop.met THEN stop.at END
          FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                      $6::text[], $7::timestamptz[])
               AS k(incident_id, target, due_at, priority, channel, category, received_at)
          LEFT JOIN LATERAL (
                SELECT at, met FROM sla_stops
                 WHERE incident_id = k.incident_id AND target IN (k.target, '*')
                 ORDER BY at, met DESC
                 LIMIT 1
          ) AS stop ON true
        ON CONFLICT DO NOTHING
        """,
        [t.incident_id for t in timers],
        [t.target for t in timers],
        [t.due_at for t in timers],
        [t.priority for t in timers],
        [t.channel for t in timers],
        [t.category for t in timers],
        [t.received_at for t in timers],
    )


@dataclass(frozen=True)
class SlaStop:
    """A target met (or no longer applying) at a time; target `*` stops every target."""

    incident_id: UUID
    target: str
    at: datetime
    met: bool

    def precedes(self, other: SlaStop) -> bool:
        """The earlier stop counts; on a tie, met before voided."""
        return (self.at, not self.met) < (other.at, not other.met)


async def stop_sla_timers(conn: asyncpg.Connection, stops: Sequence[SlaStop]) -> None:
    """Stop the clock on targets, in one statement. The earliest stop counts (on a tie, met
    before voided), whatever order they are read in; it is kept, so a timer started later
    (its classification read after) starts stopped."""
    earliest: dict[tuple[UUID, str], SlaStop] = {}
    for stop in stops:
        kept = earliest.get((stop.incident_id, stop.target))
        if kept is None or stop.precedes(kept):
            earliest[stop.incident_id, stop.target] = stop
    if not earliest:
        return
    # A running timer takes the earliest of the stops for its target or for every target.
    await conn.execute(
        """
        WITH stop AS (
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::bool[])
                   AS s(incident_id, target, at, met)
        ), first AS (
            SELECT DISTINCT ON (t.incident_id, t.target) t.incident_id, t.target, s.at, s.met
              FROM sla_timers t
              JOIN stop s ON s.incident_id = t.incident_id AND s.target IN (t.target, '*')
             ORDER BY t.incident_id, t.target, s.at, s.met DESC
        ), stopped AS (
            UPDATE sla_timers t
               SET met_at = CASE WHEN f.met THEN f.at END,
                   voided_at = CASE WHEN f.met THEN NULL ELSE f.at END
              FROM first f
             WHERE t.incident_id = f.incident_id AND t.target = f.target
               AND t.breached_at IS NULL
               AND (t.met_at IS NULL AND t.voided_at IS NULL
                    OR (f.at, NOT f.met) < (COALESCE(t.met_at, t.voided_at), t.met_at IS NULL))
        )
        INSERT INTO sla_stops (incident_id, target, at, met)
        SELECT incident_id, target, at, met FROM stop
        ON CONFLICT (incident_id, target) DO UPDATE
           SET at = EXCLUDED.at, met = EXCLUDED.met
         WHERE (EXCLUDED.at, NOT EXCLUDED.met) < (sla_stops.at, NOT sla_stops.met)
        """,
        [s.incident_id for s in earliest.values()],
        [s.target for s in earliest.values()],
        [s.at for s in earliest.values()],
        [s.met for s in earliest.values()],
    )


async def breach_due_timers(
    conn: asyncpg.Connection, *, now: datetime, limit: int = 200
) -> list[SlaBreachedV1]:
    """Timers past due and unmet, stamped breached now: each is returned exactly once, as
    the breach the tracker announces."""
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT incident_id, target FROM sla_timers
             WHERE met_at IS NULL AND voided_at IS NULL AND breached_at IS NULL AND due_at <= $1
             ORDER BY due_at
             LIMIT $2
               FOR UPDATE SKIP LOCKED
        )
        UPDATE sla_timers t SET breached_at = $1
          FROM due WHERE t.incident_id = due.incident_id AND t.target = due.target
        RETURNING t.incident_id, t.target, t.priority, t.channel, t.category, t.received_at,
                  t.due_at, t.breached_at
        """,
        now,
        limit,
    )
    return [
        SlaBreachedV1(
            incident_id=r["incident_id"],
            target=r["target"],
            priority=Priority(r["priority"]),
            channel=Channel(r["channel"]),
            category=Category(r["category"]),
            received_at=r["received_at"],
            due_at=r["due_at"],
            breached_at=r["breached_at"],
        )
        for r in rows
    ]
