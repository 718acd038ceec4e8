"""Triage's own records: incidents it opened, the intakes that belong to them, and which are
still open for duplicate calls to join."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from schemas.common import Place
from schemas.envelope import Event
from schemas.events import IncidentStatusChangedV1
from schemas.vocabulary import Category, Channel, Priority
from services.common.processing import Deferred, Rows
from services.triage.correlation import Nearby, OpenIncident, ends_incident


@dataclass
class Correlation:
    """Triage's state for one batch: each category it correlates in is locked and read once,
    the incidents the batch opens or ends are kept in step, and the incidents it opens and
    the intake links are sent in one go each at the end (or when the incidents are about to
    be read back)."""

    openings: Deferred = field(default_factory=Deferred)
    links: Deferred = field(default_factory=Deferred)
    _read: dict[str, tuple[datetime, datetime, Nearby]] = field(default_factory=dict)

    async def screen(self, conn: asyncpg.Connection, events: Sequence[Event]) -> set[str]:
        """The batch's events that may change triage's records: all but the incident events
        that end nothing (most status changes: dispatched, on scene), passed over with no
        inbox row."""
        return {
            e.id
            for e in events
            if not isinstance(e.payload, IncidentStatusChangedV1) or ends_incident(e.payload)
        }

    async def open_incidents(
        self,
        conn: asyncpg.Connection,
        *,
        category: str,
        around: datetime,
        window: timedelta,
        near: tuple[float, float],
        radius_km: float,
    ) -> list[OpenIncident]:
        """Open, placed incidents of a category whose first call is within `window` of
        `around` and that may lie within `radius_km` of `near` (lat, lon); the category
        stays locked until the transaction ends."""
        low, high = around - window, around + window
        known = self._read.get(category)
        if known is None:
            await lock_category(conn, category=category)
        if known is None or low < known[0] or high > known[1] or known[2].radius_km != radius_km:
            await self.openings.flush(conn)  # what the batch opened is read back with the rest
            # Read twice the window each way, so the batch's other calls (received
            # moments apart, in any order) are answered from what was read.
            wide = (around - 2 * window, around + 2 * window)
            nearby = Nearby(radius_km)
            nearby.add_all(await open_incidents(conn, category=category, low=wide[0], high=wide[1]))
            known = (*wide, nearby)
            self._read[category] = known
        return [i for i in known[2].around(*near) if low <= i.received_at <= high]

    def opened(self, incident: OpenIncident) -> None:
        """An incident this batch opened can take the batch's later duplicate calls."""
        known = self._read.get(incident.category.value)
        if known is not None:
            known[2].add(incident)

    async def end(self, conn: asyncpg.Connection, *, incident_id: UUID, at: datetime) -> None:
        """An incident resolved, closed, cancelled or merged takes no more duplicate calls."""
        await self.openings.flush(conn)  # it may have been opened in this batch
        await conn.execute(
            "UPDATE incidents SET ended_at = LEAST(COALESCE(ended_at, $2), $2) "
            "WHERE incident_id = $1",
            incident_id,
            at,
        )
        for _, _, nearby in self._read.values():
            nearby.remove(incident_id)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Send the incidents, then the links to them; the next batch reads afresh."""
        self._read.clear()
        await self.openings.flush(conn)
        await self.links.flush(conn)


_OPENINGS = Rows(
    """
    INSERT INTO incidents (incident_id, category, priority, kecamatan_code, lat, lon,
                           opened_at, received_at, needs_review, agency, channel, text, place)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::float8[],
                         $6::float8[], $7::timestamptz[], $8::timestamptz[], $9::bool[],
                         $10::text[], $11::text[], $12::text[], $13::jsonb[])
    ON CONFLICT (incident_id) DO NOTHING
    """
)
_LINKS = Rows(
    "INSERT INTO intakes (intake_id, incident_id, linked_at, reason) "
    "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[]) "
    "ON CONFLICT (intake_id) DO NOTHING"
)


def open_incident(
    batch: Correlation,
    *,
    incident_id: UUID,
    intake_id: UUID,
    category: str,
    priority: str,
    place: Place | None,
    received_at: datetime,
    needs_review: bool,
    agency: str,
    channel: str,
    text: str,
    at: datetime,
) -> None:
    """Record a new incident and its first intake (sent with the batch)."""
    batch.openings.add(
        _OPENINGS,
        incident_id,
        category,
        priority,
        place.kecamatan_code if place else None,
        place.lat if place else None,
        place.lon if place else None,
        at,
        received_at,
        needs_review,
        agency,
        channel,
        text,
        place.model_dump(mode="json") if place else None,
    )
    link_intake(batch.links, intake_id=intake_id, incident_id=incident_id, at=at, reason="opened")


def link_intake(
    links: Deferred, *, intake_id: UUID, incident_id: UUID, at: datetime, reason: str
) -> None:
    """Record that an intake belongs to an incident."""
    links.add(
        _LINKS,
        intake_id,
        incident_id,
        at,
        reason,
    )


async def lock_category(conn: asyncpg.Connection, *, category: str) -> None:
    """Serialise correlation per category until the transaction ends, so two calls about one
    fire handled at once (two instances, or two partitions) cannot both open an incident."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('siaga.triage.correlate'), hashtext($1))",
        category,
    )


async def open_incidents(
    conn: asyncpg.Connection, *, category: str, low: datetime, high: datetime
) -> list[OpenIncident]:
    """Incidents of a category, not ended, placed, whose first call is between two times."""
    rows = await conn.fetch(
        """
        SELECT incident_id, category, priority, lat, lon, COALESCE(received_at, opened_at) AS at
          FROM incidents
         WHERE category = $1 AND ended_at IS NULL AND NOT needs_review
           AND lat IS NOT NULL AND lon IS NOT NULL
           AND COALESCE(received_at, opened_at) BETWEEN $2 AND $3
        """,
        category,
        low,
        high,
    )
    return [
        OpenIncident(
            incident_id=r["incident_id"],
            category=Category(r["category"]),
            priority=Priority(r["priority"]),
            lat=r["lat"],
            lon=r["lon"],
            received_at=r["at"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Classified:
    """An incident as triage last decided it (opened, or reviewed since)."""

    incident_id: UUID
    category: Category
    priority: Priority
    agency: str
    channel: Channel
    text: str
    place: Place | None
    received_at: datetime
    ended: bool


async def classified(conn: asyncpg.Connection, *, incident_id: UUID) -> Classified | None:
    """The incident's current decision, locked until the transaction ends, or None."""
    row = await conn.fetchrow(
        """
        SELECT incident_id, category, priority, agency, channel, text, place,
               COALESCE(received_at, opened_at) AS received_at, ended_at IS NOT NULL AS ended
          FROM incidents WHERE incident_id = $1 FOR UPDATE
        """,
        incident_id,
    )
    if row is None or row["agency"] is None:
        return None  # unknown, or opened before triage kept its decisions
    return Classified(
        incident_id=row["incident_id"],
        category=Category(row["category"]),
        priority=Priority(row["priority"]),
        agency=row["agency"],
        channel=Channel(row["channel"]),
        text=row["text"] or "",
        place=None if row["place"] is None else Place.model_validate(row["place"]),
        received_at=row["received_at"],
        ended=row["ended"],
    )


async def record_review(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    category: Category,
    priority: Priority,
    agency: str,
    at: datetime,
) -> None:
    """A call-taker's decision replaces triage's: no longer under review."""
    await conn.execute(
        """
        UPDATE incidents
           SET category = $2, priority = $3, agency = $4, needs_review = false, reviewed_at = $5
         WHERE incident_id = $1
        """,
        incident_id,
        category.value,
        priority.value,
        agency,
        at,
    )
