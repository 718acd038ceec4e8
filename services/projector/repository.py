"""Writes to the read model; each is an idempotent, order-tolerant upsert.

Because their order does not matter, a batch's upserts are collected (`ReadModelWrites`)
and sent as one pipelined `executemany` per statement, and the unit board is folded once
per unit per batch, instead of a round trip to the database for every row of every event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from schemas.cap import CapAlert
from schemas.common import Place
from schemas.envelope import Event
from schemas.events import IncidentClassifiedV1, IncidentStatusChangedV1, TriageReviewedV1
from services.common.processing import Deferred, Rows
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


def upsert_intake(writes: Deferred, **fields: Any) -> None:
    """Create or complete an intake row; given fields overwrite, missing ones are kept."""
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = COALESCE(EXCLUDED.{c}, intakes.{c})" for c in columns[1:])
    writes.add(
        f"INSERT INTO intakes ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT (intake_id) DO UPDATE SET {updates}",
        *fields.values(),
    )


def upsert_incident(writes: Deferred, *, incident_id: UUID, **fields: Any) -> None:
    """Create or complete an incident row with the given columns."""
    columns = ["incident_id", *fields]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in fields)
    writes.add(
        f"INSERT INTO incidents ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT (incident_id) DO UPDATE SET {updates}",
        incident_id,
        *fields.values(),
    )


def classify_incident(
    writes: Deferred,
    *,
    incident_id: UUID,
    category: str,
    priority: str,
    agency: str,
    needs_review: bool,
    needs_confirmation: bool,
    questions: list[str],
    life_threat: str,
    **fields: Any,
) -> None:
    """Triage's decision; a call-taker's review (`review_incident`), read before or after
    it, keeps its own category, priority and agency and takes the incident off the queue."""
    columns = [
        "incident_id",
        "category",
        "priority",
        "agency",
        "needs_review",
        "needs_confirmation",
        "questions",
        "life_threat",
        *fields,
    ]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    decided = {
        "category",
        "priority",
        "agency",
        "needs_review",
        "needs_confirmation",
        "sla_seconds",
    }
    updates = [
        f"{c} = CASE WHEN incidents.reviewed_at IS NULL THEN EXCLUDED.{c} ELSE incidents.{c} END"
        if c in decided
        else f"{c} = EXCLUDED.{c}"
        for c in columns[1:]
    ]
    writes.add(
        f"INSERT INTO incidents ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT (incident_id) DO UPDATE SET {', '.join(updates)}",
        incident_id,
        category,
        priority,
        agency,
        needs_review,
        needs_confirmation,
        questions,
        life_threat,
        *fields.values(),
    )


def review_incident(
    writes: Deferred,
    *,
    incident_id: UUID,
    category: str,
    priority: str,
    agency: str,
    sla_seconds: int,
    decision: str,
    note: str,
    reviewed_by: str,
    reviewed_at: datetime,
) -> None:
    """A call-taker's decision; of several reviews the latest stands."""
    writes.add(
        """
        INSERT INTO incidents (incident_id, category, priority, agency, sla_seconds,
                               review_decision, review_note, reviewed_by, reviewed_at,
                               needs_review, needs_confirmation)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, false, false)
        ON CONFLICT (incident_id) DO UPDATE
           SET category = EXCLUDED.category, priority = EXCLUDED.priority,
               agency = EXCLUDED.agency, sla_seconds = EXCLUDED.sla_seconds,
               review_decision = EXCLUDED.review_decision, review_note = EXCLUDED.review_note,
               reviewed_by = EXCLUDED.reviewed_by, reviewed_at = EXCLUDED.reviewed_at,
               needs_review = false, needs_confirmation = false
         WHERE incidents.reviewed_at IS NULL OR incidents.reviewed_at <= EXCLUDED.reviewed_at
        """,
        incident_id,
        category,
        priority,
        agency,
        sla_seconds,
        decision,
        note,
        reviewed_by,
        reviewed_at,
    )


def place_incident(writes: Deferred, *, incident_id: UUID, place: Place | None) -> None:
    """Set where the incident is."""
    if place is None:
        return
    upsert_incident(
        writes,
        incident_id=incident_id,
        **dict(
            zip(
                ("kecamatan_code", "kecamatan", "desa_code", "desa", "lat", "lon"),
                _place_values(place),
                strict=True,
            )
        ),
    )


def first_dispatch(writes: Deferred, *, incident_id: UUID, at: datetime) -> None:
    """Keep the earliest dispatch time of the incident."""
    writes.add(
        """
        INSERT INTO incidents (incident_id, first_dispatched_at) VALUES ($1, $2)
        ON CONFLICT (incident_id) DO UPDATE
           SET first_dispatched_at = LEAST(incidents.first_dispatched_at, EXCLUDED.first_dispatched_at)
        """,
        incident_id,
        at,
    )


def set_incident_status(writes: Deferred, *, incident_id: UUID, status: str, at: datetime) -> None:
    """The tracker's latest status (its events of one incident arrive in order)."""
    writes.add(
        """
        INSERT INTO incidents (incident_id, status, status_at) VALUES ($1, $2, $3)
        ON CONFLICT (incident_id) DO UPDATE SET status = EXCLUDED.status, status_at = EXCLUDED.status_at
        """,
        incident_id,
        status,
        at,
    )


_STEPS_SQL = "ARRAY[" + ", ".join(f"'{step}'" for step in STEPS) + "]"


def unit_on_incident(
    writes: Deferred,
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
    writes.add(
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


@dataclass(frozen=True)
class BoardChange:
    """An order, cancellation or report bound for the unit board."""

    unit_id: str
    change: UnitChange
    change_id: str
    unit_type: str | None = None

    @property
    def key(self) -> tuple[str, datetime, int, str]:
        """Where the change sits in the unit's history: time, then step, then id."""
        return (
            self.unit_id,
            self.change.at,
            RANK.get(self.change.status, len(STEPS)),
            self.change_id,
        )


_ROW = "row_status, row_status_at, row_incident_id, row_assigned_at, row_cleared_incident_id, row_cleared_at"
_KEYS = "unnest($1::text[], $2::timestamptz[], $3::int[], $4::text[]) AS k(unit_id, at, rank, change_id)"


async def apply_board(conn: asyncpg.Connection, changes: list[BoardChange]) -> None:
    """Apply a batch's orders and reports to the unit board. A unit's row is the fold of
    `board.apply` over all its changes in time order (`unit_changes` keeps each change with
    the row after it), so a change that arrives late is folded in where it belongs, and
    the same changes give the same row in any order of arrival; each unit is refolded once
    per batch, from its earliest new change."""
    if not changes:
        return
    types: dict[str, str | None] = {}
    for c in changes:
        types[c.unit_id] = c.unit_type or types.get(c.unit_id)
    units = sorted(types)
    # Upserting locks each unit's row (in one order, so replicas cannot deadlock), which
    # serialises folds of the same unit.
    await conn.execute(
        """
        INSERT INTO units (unit_id, unit_type) SELECT * FROM unnest($1::text[], $2::text[])
        ON CONFLICT (unit_id) DO UPDATE SET unit_type = COALESCE(EXCLUDED.unit_type, units.unit_type)
        """,
        units,
        [types[u] for u in units],
    )
    new = await conn.fetch(
        """
        INSERT INTO unit_changes (unit_id, at, rank, change_id, status, incident_id)
        SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::text[], $5::text[], $6::uuid[])
        ON CONFLICT DO NOTHING RETURNING unit_id, at, rank, change_id
        """,
        *(
            list(column)
            for column in zip(
                *((*c.key, c.change.status, c.change.incident_id) for c in changes), strict=True
            )
        ),
    )
    earliest: dict[str, tuple[str, datetime, int, str]] = {}
    for r in new:
        key = (r["unit_id"], r["at"], r["rank"], r["change_id"])
        earliest[key[0]] = min(earliest.get(key[0], key), key)
    if earliest:
        await _refold(conn, list(earliest.values()))


async def _refold(conn: asyncpg.Connection, starts: list[tuple[str, datetime, int, str]]) -> None:
    """Fold each unit's changes from its start key on, beginning with the row before it;
    store each row after and the last one on the board."""
    columns = [list(c) for c in zip(*starts, strict=True)]
    before = {
        r["unit_id"]: BoardRow(*list(r.values())[1:])
        for r in await conn.fetch(
            f"""
            SELECT k.unit_id, b.* FROM {_KEYS}
            CROSS JOIN LATERAL (
                SELECT {_ROW} FROM unit_changes c
                 WHERE c.unit_id = k.unit_id AND (c.at, c.rank, c.change_id) < (k.at, k.rank, k.change_id)
                 ORDER BY c.at DESC, c.rank DESC, c.change_id DESC LIMIT 1
            ) b
            """,
            *columns,
        )
    }
    later: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in await conn.fetch(
        f"""
        SELECT c.unit_id, c.at, c.rank, c.change_id, c.status, c.incident_id
          FROM {_KEYS}
          JOIN unit_changes c
            ON c.unit_id = k.unit_id AND (c.at, c.rank, c.change_id) >= (k.at, k.rank, k.change_id)
         ORDER BY c.unit_id, c.at, c.rank, c.change_id
        """,
        *columns,
    ):
        later[r["unit_id"]].append(r)
    changes, boards = [], []
    for unit_id, history in later.items():
        rows = fold(
            before.get(unit_id),
            [UnitChange(c["status"], c["at"], c["incident_id"]) for c in history],
        )
        changes += [
            (unit_id, c["at"], c["rank"], c["change_id"], *after.columns())
            for c, after in zip(history, rows, strict=True)
        ]
        boards.append((unit_id, *rows[-1].columns()))
    await conn.executemany(
        """
        UPDATE unit_changes
           SET row_status = $5, row_status_at = $6, row_incident_id = $7, row_assigned_at = $8,
               row_cleared_incident_id = $9, row_cleared_at = $10
         WHERE unit_id = $1 AND at = $2 AND rank = $3 AND change_id = $4
        """,
        changes,
    )
    await conn.executemany(
        """
        UPDATE units
           SET status = $2, status_at = $3, incident_id = $4, assigned_at = $5,
               cleared_incident_id = $6, cleared_at = $7
         WHERE unit_id = $1
        """,
        boards,
    )


# The incident events that may carry an incident's public alert on (services/projector/alerts.py).
ALERTING = (IncidentClassifiedV1, TriageReviewedV1, IncidentStatusChangedV1)


@dataclass(frozen=True)
class DerivedAlert:
    """An incident's derived alert and its place among the incident's alerts (0, 1, ...)."""

    seq: int
    alert: CapAlert


@dataclass
class AlertThreads:
    """The latest derived alert of each incident a batch may alert about, read once for
    the batch and kept up to date by its handlers (an incident's events arrive in order
    on its partition, so each follows the one before)."""

    latest: dict[UUID, DerivedAlert] = field(default_factory=dict)

    async def prepare(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Read the latest derived alert of every incident of the batch's alerting events."""
        wanted = sorted({e.payload.incident_id for e in events if isinstance(e.payload, ALERTING)})
        if not wanted:
            return
        rows = await conn.fetch(
            """
            SELECT DISTINCT ON (incident_id) incident_id, incident_seq, message FROM cap_alerts
             WHERE origin = 'incident' AND incident_id = ANY($1::uuid[])
             ORDER BY incident_id, incident_seq DESC
            """,
            wanted,
        )
        self.latest = {
            r["incident_id"]: DerivedAlert(r["incident_seq"], CapAlert.model_validate(r["message"]))
            for r in rows
        }

    def last(self, incident_id: UUID) -> CapAlert | None:
        """The incident's latest derived alert, or None when it has none."""
        found = self.latest.get(incident_id)
        return None if found is None else found.alert

    def follow(self, writes: Deferred, incident_id: UUID, alert: CapAlert) -> None:
        """Record the incident's next derived alert: stored, and the latest from now on."""
        before = self.latest.get(incident_id)
        seq = 0 if before is None else before.seq + 1
        self.latest[incident_id] = DerivedAlert(seq, alert)
        add_cap_alert(writes, alert=alert, origin="incident", incident_seq=seq)


@dataclass
class ReadModelWrites:
    """What the projector collects while it handles a batch: upserts, board changes, and
    the incidents' latest alerts."""

    upserts: Deferred = field(default_factory=Deferred)
    board: list[BoardChange] = field(default_factory=list)
    alerts: AlertThreads = field(default_factory=AlertThreads)

    async def prepare(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Read what the batch's handlers will ask: the latest alert of its incidents."""
        await self.alerts.prepare(conn, events)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Send the upserts, then fold the board."""
        board, self.board = self.board, []
        await self.upserts.flush(conn)
        await apply_board(conn, board)


def add_cap_alert(
    writes: Deferred, *, alert: CapAlert, origin: str, incident_seq: int | None = None
) -> None:
    """A public alert message; the same identifier twice is the same message."""
    writes.add(
        """
        INSERT INTO cap_alerts (identifier, origin, incident_id, msg_type, status, sent, expires,
                                thread_length, refs, message, incident_seq)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (identifier) DO NOTHING
        """,
        alert.identifier,
        origin,
        alert.incident_id,
        alert.msg_type,
        alert.status,
        alert.sent,
        alert.expires,
        len(alert.references),
        [r.model_dump(mode="json") for r in alert.references],
        alert.model_dump(mode="json"),
        incident_seq,
    )


def unit_registered(writes: Deferred, **fields: Any) -> None:
    """Unit details from the fleet register; a unit first seen here is available at base."""
    writes.add(
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


_TIMELINE = Rows(
    "INSERT INTO timeline (event_id, incident_id, at, event_type, summary) "
    "SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[]) "
    "ON CONFLICT (event_id) DO NOTHING"
)


def add_timeline(
    writes: Deferred,
    *,
    event_id: str,
    incident_id: UUID,
    at: datetime,
    event_type: str,
    summary: str,
) -> None:
    """One line of an incident's history."""
    writes.add(
        _TIMELINE,
        event_id,
        incident_id,
        at,
        event_type,
        summary,
    )


def add_work_order(writes: Deferred, **fields: Any) -> None:
    """An agency work order, open until answered."""
    writes.add(
        """
        INSERT INTO work_orders (work_order_id, incident_id, agency, category, priority, summary, issued_at, due_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (work_order_id) DO NOTHING
        """,
        *fields.values(),
    )


def add_dead_letter(writes: Deferred, **fields: Any) -> None:
    """A dead-lettered message, for `siaga dlq list`."""
    writes.add(
        """
        INSERT INTO dead_letters (event_id, stage, reason, source_topic, source_partition, source_offset, at, preview, redrive_of)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING
        """,
        *fields.values(),
    )


def add_redrive(writes: Deferred, **fields: Any) -> None:
    """A dead letter sent back to its source topic."""
    writes.add(
        """
        INSERT INTO dead_letter_redrives (event_id, dead_letter_id, source_topic, partition, "offset", redriven_at, operator)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING
        """,
        *fields.values(),
    )


def escalate_incident(writes: Deferred, *, incident_id: UUID, at: datetime) -> None:
    """The incident waited for a unit: keep when it first did."""
    writes.add(
        """
        INSERT INTO incidents (incident_id, escalated_at) VALUES ($1, $2)
        ON CONFLICT (incident_id) DO UPDATE
           SET escalated_at = LEAST(incidents.escalated_at, EXCLUDED.escalated_at)
        """,
        incident_id,
        at,
    )


def add_sla_breach(writes: Deferred, **fields: Any) -> None:
    """A missed target, once per incident and target."""
    writes.add(
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
    upsert_incident(writes, incident_id=fields["incident_id"], sla_breached=True)


async def work_order_step(
    conn: asyncpg.Connection,
    writes: ReadModelWrites,
    *,
    work_order_id: UUID,
    at: datetime,
    step: str,
    **details: Any,
) -> None:
    """Stamp a step of a work order (the first time counts) with its details. An update, not
    an upsert, so what the batch collected is sent first: the work order may have been
    issued earlier in the same batch."""
    await writes.flush(conn)
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


def move_unit(
    writes: Deferred,
    *,
    unit_id: str,
    lat: float,
    lon: float,
    base: str | None,
    at: datetime,
) -> None:
    """A unit's position (and base), from a report or a move: the latest by time wins, a
    tie goes to the smaller coordinates, so the same positions give the same row in any
    order of arrival. Only a unit on the board moves: one the fleet does not know (its
    registration comes first on the unit's partition) gets no row."""
    writes.add(
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
