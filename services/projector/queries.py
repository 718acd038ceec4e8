"""Read-model look-ups behind `siaga incident show/list`, the field-unit client and the
gateway's public alerts."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

if TYPE_CHECKING:  # the alert model (pydantic) is loaded by the look-ups of alerts alone
    from schemas.cap import CapAlert


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


class _Row:
    """A look-up's row: `to_json()` gives its fields by name, in order (what `--json`
    prints)."""

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class IncidentUnit(_Row):
    """A unit ever sent to an incident, and how far it got."""

    unit_id: str
    unit_type: str | None
    status: str | None
    dispatched_at: datetime | None
    eta_seconds: int | None


@dataclass(frozen=True)
class TimelineEntry(_Row):
    """One line of an incident's history."""

    at: datetime
    event_type: str
    summary: str


@dataclass(frozen=True)
class Review:
    """A call-taker's decision on triage's."""

    decision: str | None
    by: str | None
    at: datetime
    note: str | None


@dataclass(frozen=True)
class IncidentView:
    """An incident as `siaga incident show` presents it: triage's decision (or the review
    that replaced it), the place, the intakes, every unit sent, the timeline."""

    incident_id: UUID
    status: str | None
    category: str | None
    priority: str | None
    agency: str | None
    confidence: float | None
    explanation: str | None
    needs_review: bool
    needs_confirmation: bool
    life_threat: str | None
    questions: tuple[str, ...]
    review: Review | None
    channel: str | None
    text: str | None
    kecamatan: str | None
    desa: str | None
    lat: float | None
    lon: float | None
    received_at: datetime | None
    first_dispatched_at: datetime | None
    resolved_at: datetime | None
    intake_ids: tuple[UUID, ...]
    units: tuple[IncidentUnit, ...]
    timeline: tuple[TimelineEntry, ...]


_INCIDENT_COLUMNS = """
    i.incident_id, i.status, i.category, i.priority, i.agency, i.confidence, i.explanation,
    i.needs_review, i.needs_confirmation, i.life_threat, i.questions, i.review_decision,
    i.reviewed_by, i.reviewed_at, i.review_note, i.channel, i.text, i.kecamatan, i.desa,
    i.lat, i.lon, i.received_at, i.first_dispatched_at, i.resolved_at
"""


async def find_incident(conn: asyncpg.Connection, ident: str) -> IncidentView | None:
    """One incident by incident id or by any of its intake ids, with intakes, units, timeline."""
    key = _uuid(ident)
    if key is None:
        return None
    row = await conn.fetchrow(
        f"""
        SELECT {_INCIDENT_COLUMNS} FROM incidents i
         WHERE i.incident_id = $1
            OR i.incident_id = (SELECT incident_id FROM intakes WHERE intake_id = $1)
         LIMIT 1
        """,
        key,
    )
    if row is None:
        return None
    incident_id = row["incident_id"]
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
    reviewed_at = row["reviewed_at"]
    return IncidentView(
        incident_id=incident_id,
        status=row["status"],
        category=row["category"],
        priority=row["priority"],
        agency=row["agency"],
        confidence=row["confidence"],
        explanation=row["explanation"],
        needs_review=row["needs_review"],
        needs_confirmation=row["needs_confirmation"],
        life_threat=row["life_threat"],
        questions=tuple(row["questions"] or ()),
        review=None
        if reviewed_at is None
        else Review(row["review_decision"], row["reviewed_by"], reviewed_at, row["review_note"]),
        channel=row["channel"],
        text=row["text"],
        kecamatan=row["kecamatan"],
        desa=row["desa"],
        lat=row["lat"],
        lon=row["lon"],
        received_at=row["received_at"],
        first_dispatched_at=row["first_dispatched_at"],
        resolved_at=row["resolved_at"],
        intake_ids=tuple(r["intake_id"] for r in intakes),
        units=tuple(IncidentUnit(**r) for r in units),
        timeline=tuple(TimelineEntry(**r) for r in timeline),
    )


@dataclass(frozen=True)
class IncidentSummary(_Row):
    """An incident as `siaga incident list` shows it."""

    incident_id: UUID
    status: str | None
    category: str | None
    priority: str | None
    agency: str | None
    kecamatan: str | None
    needs_review: bool
    needs_confirmation: bool
    received_at: datetime | None
    units: str | None  # the unit ids sent to it, comma-separated


@dataclass(frozen=True)
class ReviewItem(IncidentSummary):
    """An incident in the call-taker's review queue, with why and what to ask."""

    confidence: float | None
    explanation: str | None
    text: str | None
    questions: tuple[str, ...]
    life_threat: str | None


async def list_incidents(
    conn: asyncpg.Connection, *, limit: int = 20, status: str | None = None
) -> list[IncidentSummary]:
    """The newest incidents first, optionally of one status."""
    rows = await conn.fetch(
        """
        SELECT i.incident_id, i.status, i.category, i.priority, i.agency, i.kecamatan,
               i.needs_review, i.needs_confirmation, i.received_at,
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
    return [IncidentSummary(**r) for r in rows]


async def review_queue(
    conn: asyncpg.Connection, *, limit: int = 20, status: str | None = None
) -> list[ReviewItem]:
    """The human triage queue (view `review_queue`), oldest first, optionally of one status."""
    rows = await conn.fetch(
        """
        SELECT q.incident_id, q.status, q.category, q.priority, q.agency, q.kecamatan,
               q.needs_review, q.needs_confirmation, q.received_at, NULL::text AS units,
               q.confidence, q.explanation, q.text, q.questions, q.life_threat
          FROM review_queue q
         WHERE $2::text IS NULL OR q.status = $2
         LIMIT $1
        """,
        limit,
        status,
    )
    return [ReviewItem(**{**r, "questions": tuple(r["questions"] or ())}) for r in rows]


@dataclass(frozen=True)
class BoardUnit:
    """A unit as the board shows it."""

    unit_id: str
    unit_type: str | None
    status: str | None
    incident_id: UUID | None  # the incident it serves now
    assigned_at: datetime | None
    cleared_incident_id: UUID | None  # the incident it last left behind
    status_at: datetime | None
    lat: float | None  # where it was last known to be
    lon: float | None


async def board_unit(conn: asyncpg.Connection, unit_id: str) -> BoardUnit | None:
    """A unit of the fleet on the board, or None for a unit the fleet does not know."""
    row = await conn.fetchrow(
        "SELECT unit_id, unit_type, status, incident_id, assigned_at, cleared_incident_id, "
        "status_at, lat, lon FROM units WHERE unit_id = $1",
        unit_id,
    )
    return None if row is None else BoardUnit(**row)


@dataclass(frozen=True)
class QueuedWorkOrder(_Row):
    """A work order in an agency's queue: where it stands, and whether it is overdue."""

    work_order_id: UUID
    incident_id: UUID
    agency: str
    category: str
    priority: str
    summary: str
    issued_at: datetime
    due_at: datetime
    reminded_at: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None
    response: str | None
    state: str  # open, answered or closed
    overdue: bool
    kecamatan: str | None
    channel: str | None


async def agency_queue(
    conn: asyncpg.Connection,
    *,
    agency: str | None = None,
    overdue_only: bool = False,
    open_only: bool = False,
    incident_id: UUID | None = None,
) -> list[QueuedWorkOrder]:
    """Work orders per agency, open ones first, with their overdue flag; `open_only`: not
    closed yet; `incident_id`: that incident's."""
    rows = await conn.fetch(
        """
        SELECT w.work_order_id, w.incident_id, w.agency, w.category, w.priority, w.summary,
               w.issued_at, w.due_at, w.reminded_at, w.answered_at, w.closed_at, w.response,
               CASE WHEN w.closed_at IS NOT NULL THEN 'closed'
                    WHEN w.answered_at IS NOT NULL THEN 'answered'
                    ELSE 'open' END AS state,
               (w.overdue_at IS NOT NULL
                OR (w.answered_at IS NULL AND w.closed_at IS NULL AND w.due_at < now())) AS overdue,
               i.kecamatan, i.channel
          FROM work_orders w LEFT JOIN incidents i USING (incident_id)
         WHERE ($1::text IS NULL OR w.agency = $1)
           AND (NOT $2 OR w.closed_at IS NULL)
           AND ($3::uuid IS NULL OR w.incident_id = $3)
         ORDER BY (w.closed_at IS NOT NULL), w.due_at
        """,
        agency,
        open_only,
        incident_id,
    )
    found = [QueuedWorkOrder(**r) for r in rows]
    return [r for r in found if r.overdue] if overdue_only else found


@dataclass(frozen=True)
class SlaFigures(_Row):
    """One day's SLA figures for one channel, category or kecamatan (`dimension`)."""

    day: date
    dimension: str  # channel, category or kecamatan
    value: str
    incidents: int
    p1: int
    p1_dispatch_p50_s: float | None
    p1_dispatch_p90_s: float | None
    complaints: int
    complaints_pending: int
    answered_in_3_days_share: Decimal | None  # of the complaints decided
    sla_breaches: int


async def sla_statistics(conn: asyncpg.Connection, *, days: int = 7) -> list[SlaFigures]:
    """Daily SLA figures (Asia/Jakarta days) per channel, per category and per kecamatan:
    P1 intake-to-dispatch percentiles and the share of complaints answered within 3 days,
    of those decided (answered, or unanswered for 3 days): a complaint minutes old is
    pending, not late, and counts in `complaints_pending` instead."""
    rows = await conn.fetch(
        """
        WITH facts AS (
            SELECT (i.received_at AT TIME ZONE 'Asia/Jakarta')::date AS day,
                   i.channel, COALESCE(i.category, '(unclassified)') AS category,
                   COALESCE(i.kecamatan, '(unknown)') AS kecamatan,
                   i.priority,
                   EXTRACT(EPOCH FROM i.first_dispatched_at - i.received_at) AS to_dispatch_s,
                   w.work_order_id IS NOT NULL AS complaint,
                   -- true: answered in time; false: answered late, or 3 days passed without
                   -- an answer; NULL: not answered and still within its 3 days (pending)
                   CASE WHEN w.answered_at IS NOT NULL
                            THEN w.answered_at - i.received_at <= interval '3 days'
                        WHEN now() - i.received_at > interval '3 days' THEN false
                   END AS answered_in_3_days,
                   i.sla_breached
              FROM incidents i LEFT JOIN work_orders w USING (incident_id)
             WHERE i.received_at >= now() - make_interval(days => $1)
        )
        SELECT day,
               CASE WHEN GROUPING(channel) = 0 THEN 'channel'
                    WHEN GROUPING(category) = 0 THEN 'category'
                    ELSE 'kecamatan' END AS dimension,
               COALESCE(channel, category, kecamatan) AS value,
               count(*) AS incidents,
               count(*) FILTER (WHERE priority = 'P1') AS p1,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY to_dispatch_s)
                   FILTER (WHERE priority = 'P1') AS p1_dispatch_p50_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY to_dispatch_s)
                   FILTER (WHERE priority = 'P1') AS p1_dispatch_p90_s,
               count(*) FILTER (WHERE complaint) AS complaints,
               count(*) FILTER (WHERE complaint AND answered_in_3_days IS NULL)
                   AS complaints_pending,
               avg(answered_in_3_days::int) FILTER (WHERE complaint) AS answered_in_3_days_share,
               count(*) FILTER (WHERE sla_breached) AS sla_breaches
          FROM facts
         GROUP BY GROUPING SETS ((day, channel), (day, category), (day, kecamatan))
         ORDER BY day DESC, dimension, value
        """,
        days,
    )
    return [SlaFigures(**r) for r in rows]


@dataclass(frozen=True)
class DeadLetterEntry(_Row):
    """A dead letter as `siaga dlq list` shows it, with when (if ever) it was redriven."""

    event_id: str
    stage: str
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    at: datetime
    preview: str
    redrive_of: str | None
    redriven_at: datetime | None


async def dead_letters(
    conn: asyncpg.Connection, *, limit: int = 50, stage: str | None = None, only_open: bool = False
) -> list[DeadLetterEntry]:
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
    return [DeadLetterEntry(**r) for r in rows]


@dataclass(frozen=True)
class UnitOnBoard(_Row):
    """A unit of the fleet as `siaga unit list` shows it."""

    unit_id: str
    unit_type: str | None
    agency: str | None
    base: str | None
    status: str | None
    incident_id: UUID | None
    status_at: datetime | None


async def unit_board(conn: asyncpg.Connection) -> list[UnitOnBoard]:
    """Every unit on the board, by type and id."""
    rows = await conn.fetch(
        "SELECT unit_id, unit_type, agency, base, status, incident_id, status_at "
        "FROM units ORDER BY unit_type, unit_id"
    )
    return [UnitOnBoard(**r) for r in rows]


@dataclass(frozen=True)
class IncidentCall(_Row):
    """An intake of an incident as a call: how and when it came in, the caller's number as
    the read model keeps it (masked), the operator who took it, and the caller's words."""

    intake_id: UUID
    channel: str | None
    received_at: datetime | None
    caller_phone: str | None
    operator_id: str | None
    place_hint: str | None
    text: str | None


@dataclass(frozen=True)
class UnitOnIncident(_Row):
    """A unit sent to an incident: the agency that owns it and when its status there last
    changed."""

    unit_id: str
    agency: str | None
    status_at: datetime | None


@dataclass(frozen=True)
class IncidentRecord:
    """What an incident's EIDO needs beyond `IncidentView`: its calls in order, the region
    codes of its place, when its status last changed, and its units' agencies."""

    calls: tuple[IncidentCall, ...]
    kecamatan_code: str | None
    desa_code: str | None
    status_at: datetime | None
    units: tuple[UnitOnIncident, ...]


async def incident_record(conn: asyncpg.Connection, incident_id: UUID) -> IncidentRecord:
    """The calls, place codes and units' agencies of one incident (empty when unknown)."""
    place = await conn.fetchrow(
        "SELECT kecamatan_code, desa_code, status_at FROM incidents WHERE incident_id = $1",
        incident_id,
    )
    calls = await conn.fetch(
        """
        SELECT intake_id, channel, received_at, caller_phone, operator_id, place_hint, text
          FROM intakes WHERE incident_id = $1 ORDER BY received_at NULLS LAST, intake_id
        """,
        incident_id,
    )
    units = await conn.fetch(
        """
        SELECT iu.unit_id, u.agency, iu.status_at
          FROM incident_units iu LEFT JOIN units u USING (unit_id)
         WHERE iu.incident_id = $1 ORDER BY iu.unit_id
        """,
        incident_id,
    )
    return IncidentRecord(
        calls=tuple(IncidentCall(**r) for r in calls),
        kecamatan_code=None if place is None else place["kecamatan_code"],
        desa_code=None if place is None else place["desa_code"],
        status_at=None if place is None else place["status_at"],
        units=tuple(UnitOnIncident(**r) for r in units),
    )


# ---------------------------------------------------------------- public alerts (CAP 1.2)


@dataclass(frozen=True)
class AlertEntry:
    """A public alert message of the read model, with where it came from and whether a
    later message of its thread has replaced it."""

    alert: CapAlert
    origin: str  # 'issued' by an officer, or 'incident' (derived from a disaster incident)
    replaced_by: str | None  # identifier of the latest message that references it


def _alert(message: Any) -> CapAlert:
    """A stored message (jsonb, as a Python value or as text) as a checked CapAlert."""
    from schemas.cap import CapAlert

    if isinstance(message, str):
        return CapAlert.model_validate_json(message)
    return CapAlert.model_validate(message)


async def current_cap_alerts(conn: asyncpg.Connection, *, now: datetime) -> list[CapAlert]:
    """The alerts in effect at `now`, newest first: every message no later one references
    (the latest of each thread, a Cancel included, so a reader learns the alert it saw is
    over) and that has not expired."""
    rows = await conn.fetch(
        """
        SELECT a.message FROM cap_alerts a
         WHERE (a.expires IS NULL OR a.expires > $1)
           AND NOT EXISTS (
               SELECT 1 FROM cap_alerts later
                WHERE later.refs @> jsonb_build_array(jsonb_build_object('identifier', a.identifier))
           )
         ORDER BY a.sent DESC, a.identifier
        """,
        now,
    )
    return [_alert(r["message"]) for r in rows]


async def cap_alert(conn: asyncpg.Connection, identifier: str) -> CapAlert | None:
    """One alert message by its identifier, current or not (None when there is none)."""
    message = await conn.fetchval(
        "SELECT message FROM cap_alerts WHERE identifier = $1", identifier
    )
    return None if message is None else _alert(message)


async def cap_alert_entry(conn: asyncpg.Connection, identifier: str) -> AlertEntry | None:
    """One alert message with its origin and the message that replaced it, if any."""
    row = await conn.fetchrow(
        """
        SELECT a.message, a.origin,
               (SELECT later.identifier FROM cap_alerts later
                 WHERE later.refs @> jsonb_build_array(jsonb_build_object('identifier', a.identifier))
                 ORDER BY later.thread_length DESC, later.sent DESC, later.identifier LIMIT 1
               ) AS replaced_by
          FROM cap_alerts a WHERE a.identifier = $1
        """,
        identifier,
    )
    if row is None:
        return None
    return AlertEntry(_alert(row["message"]), row["origin"], row["replaced_by"])
