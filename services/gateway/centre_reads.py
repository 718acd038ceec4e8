"""What the command-centre page reads from the read model beyond `services.projector.queries`:
incidents and units with their positions, incidents waiting for a unit, an incident's calls,
and the day's facts behind its counters (computed here, without a database)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

import asyncpg

from schemas.vocabulary import ENDED_STATUSES, Priority
from services.triage.classifier import SLA_SECONDS

# Indonesia keeps no daylight saving time: Western Indonesian Time is UTC+7 all year.
WIB = timezone(timedelta(hours=7), "WIB")
# The ended statuses as the read model stores them (text), for its queries.
ENDED = tuple(sorted(s.value for s in ENDED_STATUSES))
# The promise to complainants (the P3 target): a first answer within 3 days.
ANSWER_WITHIN = timedelta(seconds=SLA_SECONDS[Priority.P3])


@dataclass(frozen=True)
class MapIncident:
    """An incident not ended yet, where it is and what waits on it."""

    incident_id: UUID
    status: str | None
    category: str | None
    priority: str | None
    agency: str | None
    kecamatan: str | None
    desa: str | None
    lat: float | None
    lon: float | None
    received_at: datetime | None
    needs_review: bool
    needs_confirmation: bool
    escalated_at: datetime | None
    units: str | None  # the unit ids sent to it, comma-separated
    work_order_agency: str | None


async def active_incidents(conn: asyncpg.Connection, *, limit: int = 5000) -> list[MapIncident]:
    """Incidents not yet resolved, closed, cancelled or merged: the most urgent first."""
    rows = await conn.fetch(
        """
        SELECT i.incident_id, i.status, i.category, i.priority, i.agency, i.kecamatan, i.desa,
               i.lat, i.lon, i.received_at, i.needs_review, i.needs_confirmation, i.escalated_at,
               (SELECT string_agg(u.unit_id, ',' ORDER BY u.unit_id)
                  FROM incident_units u
                 WHERE u.incident_id = i.incident_id AND u.status IS DISTINCT FROM 'cancelled')
                   AS units,
               (SELECT min(w.agency) FROM work_orders w WHERE w.incident_id = i.incident_id)
                   AS work_order_agency
          FROM incidents i
         WHERE COALESCE(i.status, '') <> ALL($2::text[])
         ORDER BY i.priority NULLS LAST, i.received_at DESC NULLS LAST
         LIMIT $1
        """,
        limit,
        list(ENDED),
    )
    return [MapIncident(**r) for r in rows]


@dataclass(frozen=True)
class MapUnit:
    """A unit of the fleet where it was last reported, and what it is doing."""

    unit_id: str
    unit_type: str | None
    agency: str | None
    status: str | None
    lat: float | None
    lon: float | None
    incident_id: UUID | None
    status_at: datetime | None


async def units_on_map(conn: asyncpg.Connection) -> list[MapUnit]:
    """Every unit with its last position and status."""
    rows = await conn.fetch(
        "SELECT unit_id, unit_type, agency, status, lat, lon, incident_id, status_at "
        "FROM units ORDER BY unit_type, unit_id"
    )
    return [MapUnit(**r) for r in rows]


@dataclass(frozen=True)
class WaitingIncident:
    """An incident the dispatcher found no free unit for, still waiting."""

    incident_id: UUID
    priority: str | None
    category: str | None
    kecamatan: str | None
    received_at: datetime | None
    escalated_at: datetime
    reason: str | None  # the escalation's line in the timeline


async def waiting_for_unit(conn: asyncpg.Connection, *, limit: int = 50) -> list[WaitingIncident]:
    """Escalated incidents not ended that no unit has been sent to since: oldest first."""
    rows = await conn.fetch(
        """
        SELECT i.incident_id, i.priority, i.category, i.kecamatan, i.received_at, i.escalated_at,
               (SELECT t.summary FROM timeline t
                 WHERE t.incident_id = i.incident_id AND t.event_type LIKE 'siaga.incident.escalated.%'
                 ORDER BY t.at DESC LIMIT 1) AS reason
          FROM incidents i
         WHERE i.escalated_at IS NOT NULL
           AND COALESCE(i.status, '') <> ALL($2::text[])
           AND NOT EXISTS (
                SELECT 1 FROM incident_units u
                 WHERE u.incident_id = i.incident_id AND u.dispatched_at >= i.escalated_at
                   AND u.status IS DISTINCT FROM 'cancelled')
         ORDER BY i.priority NULLS LAST, i.escalated_at
         LIMIT $1
        """,
        limit,
        list(ENDED),
    )
    return [WaitingIncident(**r) for r in rows]


@dataclass(frozen=True)
class CallerCall:
    """One call of an incident with what the enricher knew of its caller; the number is
    as the read model keeps it (masked)."""

    intake_id: UUID
    channel: str | None
    received_at: datetime | None
    caller_phone: str | None
    operator_id: str | None
    text: str | None
    repeat_caller: bool | None
    prank_flagged: bool | None


async def calls_of(conn: asyncpg.Connection, incident_id: UUID) -> list[CallerCall]:
    """The calls of an incident in the order they came."""
    rows = await conn.fetch(
        """
        SELECT intake_id, channel, received_at, caller_phone, operator_id, text, repeat_caller,
               prank_flagged
          FROM intakes WHERE incident_id = $1 ORDER BY received_at NULLS LAST, intake_id
        """,
        incident_id,
    )
    return [CallerCall(**r) for r in rows]


@dataclass(frozen=True)
class Owner:
    """Whose an incident is: triage's agency, and the agency of its work order if any."""

    agency: str | None
    work_order_agency: str | None


async def owner_of(conn: asyncpg.Connection, incident_id: UUID) -> Owner | None:
    """Whose the incident is, or None when the read model does not know it."""
    row = await conn.fetchrow(
        """
        SELECT i.agency,
               (SELECT min(w.agency) FROM work_orders w WHERE w.incident_id = i.incident_id)
                   AS work_order_agency
          FROM incidents i WHERE i.incident_id = $1
        """,
        incident_id,
    )
    return None if row is None else Owner(row["agency"], row["work_order_agency"])


# ---------------------------------------------------------------- the day's counters


@dataclass(frozen=True)
class P1Fact:
    """A P1 of the day: received, first dispatched (if yet), and its target."""

    received_at: datetime
    first_dispatched_at: datetime | None
    sla_seconds: int | None


@dataclass(frozen=True)
class ComplaintFact:
    """A complaint (a work order) whose answer may count today."""

    received_at: datetime
    answered_at: datetime | None


@dataclass(frozen=True)
class DayFacts:
    """What the day's counters are computed from."""

    p1: tuple[P1Fact, ...]
    complaints: tuple[ComplaintFact, ...]


def day_start(now: datetime) -> datetime:
    """Midnight WIB of the day `now` falls in (as an aware instant)."""
    local = now.astimezone(WIB)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def day_facts(conn: asyncpg.Connection, *, since: datetime) -> DayFacts:
    """Today's P1s, and the complaints whose answer or whose 3 days may fall after `since`."""
    p1 = await conn.fetch(
        "SELECT received_at, first_dispatched_at, sla_seconds FROM incidents "
        "WHERE priority = 'P1' AND received_at >= $1",
        since,
    )
    complaints = await conn.fetch(
        """
        SELECT i.received_at, w.answered_at
          FROM work_orders w JOIN incidents i USING (incident_id)
         WHERE i.received_at IS NOT NULL
           AND (i.received_at >= $1::timestamptz - $2::interval OR w.answered_at >= $1)
        """,
        since,
        ANSWER_WITHIN,
    )
    return DayFacts(tuple(P1Fact(**r) for r in p1), tuple(ComplaintFact(**r) for r in complaints))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile with linear interpolation between ranks (PostgreSQL's
    `percentile_cont`, which `siaga stats sla` uses); None of nothing."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class DayCounters:
    """The day's counters: P1 intake-to-dispatch p90 against its target, and complaints
    answered within 3 days of those decided today (answered today, or whose 3 days ended
    today unanswered); `complaints_pending` are open and still within their 3 days."""

    p1: int
    p1_waiting: int
    p1_dispatch_p90_s: float | None
    p1_target_s: int
    p1_on_target: bool | None
    complaints_decided: int
    complaints_in_time: int
    complaints_in_time_share: float | None
    complaints_pending: int


def day_counters(facts: DayFacts, *, now: datetime) -> DayCounters:
    """The counters of the day `now` falls in (WIB) from its facts."""
    start = day_start(now)
    p1 = [f for f in facts.p1 if f.received_at >= start]
    seconds = [
        (f.first_dispatched_at - f.received_at).total_seconds()
        for f in p1
        if f.first_dispatched_at is not None
    ]
    targets = [f.sla_seconds for f in p1 if f.sla_seconds]
    target = max(targets) if targets else SLA_SECONDS[Priority.P1]
    p90 = percentile(seconds, 0.9)
    in_time = late = pending = 0
    for c in facts.complaints:
        due = c.received_at + ANSWER_WITHIN
        answered_in_time = c.answered_at is not None and c.answered_at <= due
        if answered_in_time and c.answered_at is not None and start <= c.answered_at <= now:
            in_time += 1
        elif not answered_in_time and start <= due <= now:
            late += 1
        elif c.answered_at is None and due > now:
            pending += 1
    decided = in_time + late
    return DayCounters(
        p1=len(p1),
        p1_waiting=len(p1) - len(seconds),
        p1_dispatch_p90_s=p90,
        p1_target_s=target,
        p1_on_target=None if p90 is None else p90 <= target,
        complaints_decided=decided,
        complaints_in_time=in_time,
        complaints_in_time_share=in_time / decided if decided else None,
        complaints_pending=pending,
    )
