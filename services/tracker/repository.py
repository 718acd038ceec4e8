"""The tracker's incidents (status and eTimes) and unit assignments (its own schema)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from schemas.envelope import Event
from schemas.vocabulary import IncidentStatus

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
    """The tracker's state for one batch: the incidents its events name are locked and read
    in one statement, their steps kept in memory and written back in one statement, and
    the SLA timers the batch starts are started in one."""

    def __init__(self) -> None:
        self._known: dict[UUID, _Incident] = {}
        self._timers: list[SlaTimer] = []

    async def prepare(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Lock and read, in one go, the incidents the batch's events name."""
        ids = {getattr(e.payload, "incident_id", None) for e in events}
        await self._read(conn, [i for i in ids if isinstance(i, UUID)])

    async def _read(self, conn: asyncpg.Connection, ids: Collection[UUID]) -> None:
        wanted = sorted(set(ids) - self._known.keys())
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

    def start_timer(self, timer: SlaTimer) -> None:
        """Start the clock on a target with the batch's writes (in any order with its stops:
        a stop is kept, and a timer started after it starts stopped)."""
        self._timers.append(timer)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write the batch's steps and timers, and start afresh."""
        written = sorted(
            ((i, row) for i, row in self._known.items() if row.written), key=lambda x: x[0]
        )
        timers, self._timers = self._timers, []
        self._known = {}
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


async def assign(
    conn: asyncpg.Connection, *, incident_id: UUID, unit_id: str, at: datetime
) -> None:
    """A unit was ordered to an incident (a no-op when its report already opened the row)."""
    await conn.execute(
        "INSERT INTO assignments (incident_id, unit_id, dispatched_at) "
        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        incident_id,
        unit_id,
        at,
    )


async def active_assignment(
    conn: asyncpg.Connection, *, unit_id: str, incident_id: UUID | None
) -> dict[str, Any] | None:
    """The unit's current order (for `incident_id` if given)."""
    row = await conn.fetchrow(
        """
        SELECT incident_id, unit_id, reached_scene
          FROM assignments
         WHERE unit_id = $1 AND active AND ($2::uuid IS NULL OR incident_id = $2)
         ORDER BY dispatched_at DESC
         LIMIT 1
        """,
        unit_id,
        incident_id,
    )
    return dict(row) if row else None


async def last_assignment(
    conn: asyncpg.Connection, *, unit_id: str, incident_id: UUID | None
) -> UUID | None:
    """The incident of the unit's most recent order, open or not."""
    value = await conn.fetchval(
        """
        SELECT incident_id FROM assignments
         WHERE unit_id = $1 AND ($2::uuid IS NULL OR incident_id = $2)
         ORDER BY dispatched_at DESC LIMIT 1
        """,
        unit_id,
        incident_id,
    )
    return value if isinstance(value, UUID) else None


async def mark_reached_scene(conn: asyncpg.Connection, *, incident_id: UUID, unit_id: str) -> None:
    """The unit got to the scene of this incident."""
    await conn.execute(
        "UPDATE assignments SET reached_scene = true WHERE incident_id = $1 AND unit_id = $2",
        incident_id,
        unit_id,
    )


async def end_assignment(conn: asyncpg.Connection, *, incident_id: UUID, unit_id: str) -> None:
    """The unit is done with, or released from, this incident."""
    await conn.execute(
        "UPDATE assignments SET active = false WHERE incident_id = $1 AND unit_id = $2",
        incident_id,
        unit_id,
    )


async def incident_progress(
    conn: asyncpg.Connection, *, incident_id: UUID
) -> tuple[int, list[str]]:
    """Orders still open on the incident, and every unit that reached its scene."""
    rows = await conn.fetch(
        "SELECT unit_id, active, reached_scene FROM assignments WHERE incident_id = $1",
        incident_id,
    )
    open_orders = sum(1 for r in rows if r["active"])
    served = sorted({r["unit_id"] for r in rows if r["reached_scene"]})
    return open_orders, served


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


async def stop_sla_timer(
    conn: asyncpg.Connection, *, incident_id: UUID, target: str | None, at: datetime, met: bool
) -> None:
    """The target was met (or no longer applies); `target` None stops them all. The earliest
    stop counts (on a tie, met before voided), whatever order they are read in; it is kept,
    so a timer started later (its classification read after) starts stopped."""
    await conn.execute(
        """
        WITH stopped AS (
            UPDATE sla_timers
               SET met_at = CASE WHEN $4 THEN $3 END,
                   voided_at = CASE WHEN $4 THEN NULL ELSE $3 END
             WHERE incident_id = $1 AND ($2::text IS NULL OR target = $2)
               AND breached_at IS NULL
               AND (met_at IS NULL AND voided_at IS NULL
                    OR ($3, NOT $4) < (COALESCE(met_at, voided_at), met_at IS NULL))
        )
        INSERT INTO sla_stops (incident_id, target, at, met)
        VALUES ($1, COALESCE($2, '*'), $3, $4)
        ON CONFLICT (incident_id, target) DO UPDATE
           SET at = EXCLUDED.at, met = EXCLUDED.met
         WHERE (EXCLUDED.at, NOT EXCLUDED.met) < (sla_stops.at, NOT sla_stops.met)
        """,
        incident_id,
        target,
        at,
        met,
    )


async def breach_due_timers(
    conn: asyncpg.Connection, *, now: datetime, limit: int = 200
) -> list[dict[str, Any]]:
    """Timers past due and unmet, stamped breached now: each is returned exactly once."""
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
        RETURNING t.*
        """,
        now,
        limit,
    )
    return [dict(r) for r in rows]
