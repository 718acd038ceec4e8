"""Duplicate calls: several callers reporting the same fire or crash join one incident.

A new call joins an open incident of the same category whose first call came in within
`window` of it and whose place lies within `radius_km`, the nearest such incident first.
It does not join when it says something more urgent than the incident's priority (a life
at risk the first caller did not report): a new incident is dispatched instead, since
sending twice is safer than sending too little. Calls without a place, calls a human must
triage, and categories outside `categories` always open their own incident.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from schemas.common import Contract, Place
from schemas.events import IncidentResolvedV1, IncidentStatusChangedV1
from schemas.vocabulary import ENDED_STATUSES, Category, Priority
from services.common.geo import EARTH_RADIUS_KM, haversine_km

URGENCY = {Priority.P1: 1, Priority.P2: 2, Priority.P3: 3, Priority.P4: 4}


def ends_incident(payload: Contract) -> bool:
    """Whether an incident event ends the incident, so that it takes no more calls."""
    if isinstance(payload, IncidentStatusChangedV1):
        return payload.to_status in ENDED_STATUSES
    return isinstance(payload, IncidentResolvedV1)


@dataclass(frozen=True)
class DuplicateRule:
    """How near in time and space two calls must be to be one incident."""

    window: timedelta
    radius_km: float
    categories: frozenset[Category]


@dataclass(frozen=True)
class OpenIncident:
    """An incident triage opened and that has not ended."""

    incident_id: UUID
    category: Category
    priority: Priority
    lat: float
    lon: float
    received_at: datetime


@dataclass(frozen=True)
class Call:
    """A classified call that might repeat an open incident."""

    category: Category
    priority: Priority
    place: Place | None
    received_at: datetime
    needs_review: bool


@dataclass(frozen=True)
class Link:
    """The incident a call joins and why."""

    incident_id: UUID
    reason: str


def may_repeat(call: Call, rule: DuplicateRule) -> bool:
    """Whether a call could be a repeat at all (else it opens its own incident)."""
    return call.place is not None and not call.needs_review and call.category in rule.categories


def find_link(call: Call, candidates: Sequence[OpenIncident], rule: DuplicateRule) -> Link | None:
    """The open incident this call repeats, if any; nearest first, then the oldest."""
    if call.place is None or not may_repeat(call, rule):
        return None
    scored = []
    for incident in candidates:
        if incident.category is not call.category:
            continue
        gap = abs(call.received_at - incident.received_at)
        if gap > rule.window:
            continue
        if URGENCY[call.priority] < URGENCY[incident.priority]:
            continue
        km = haversine_km(call.place.lat, call.place.lon, incident.lat, incident.lon)
        if km <= rule.radius_km:
            scored.append((km, incident.received_at, str(incident.incident_id), incident, gap))
    if not scored:
        return None
    km, _, _, incident, gap = min(scored)
    reason = (
        f"same {call.category.value} {km:.1f} km and {int(gap.total_seconds())} s from "
        f"the first call"
    )
    return Link(incident.incident_id, reason)


@dataclass
class Nearby:
    """Open incidents filed by cells as tall as the duplicate radius (in degrees of latitude
    and longitude), so that a call is compared with the incidents of the cells around it,
    not with every open incident of its category (a busy night keeps hundreds open). What
    `around` gives is a superset of those within `radius_km`; `find_link` still measures
    each one."""

    radius_km: float
    _cells: dict[tuple[int, int] | None, list[OpenIncident]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def __post_init__(self) -> None:
        # The radius as an angle: how far apart in latitude two points within it can be.
        self._angle = self.radius_km / EARTH_RADIUS_KM
        # A hair wider than the radius, so rounding never pushes a point a cell further.
        self._cell_deg = max(math.degrees(self._angle) * (1 + 1e-9), 1e-9)

    @staticmethod
    def _on_globe(lat: float, lon: float) -> bool:
        return math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180

    def _cell(self, lat: float, lon: float) -> tuple[int, int] | None:
        """The cell of a point; None for one the grid cannot file (not a finite point on
        the globe), which every look-up then considers."""
        if not self._on_globe(lat, lon):
            return None
        return math.floor(lat / self._cell_deg), math.floor(lon / self._cell_deg)

    def add(self, incident: OpenIncident) -> None:
        """File an incident (one this batch read or opened)."""
        self._cells[self._cell(incident.lat, incident.lon)].append(incident)

    def add_all(self, incidents: Iterable[OpenIncident]) -> None:
        """File several incidents."""
        for incident in incidents:
            self.add(incident)

    def remove(self, incident_id: UUID) -> None:
        """An incident that ended takes no more calls."""
        for cell in self._cells.values():
            cell[:] = [i for i in cell if i.incident_id != incident_id]

    def _reach(self, lat: float, lon: float) -> tuple[float, float] | None:
        """How far in degrees of latitude and longitude the radius reaches from a place;
        None where the cells cannot bound it (near a pole, across the antimeridian, a
        radius of a quarter of the globe or more, a place off the globe)."""
        if not self._on_globe(lat, lon) or self._angle >= math.pi / 2:
            return None
        # Within an angle d of latitude lat0 the longitude differs by at most
        # asin(sin d / cos lat0), for d under a quarter of the globe.
        cos_lat = math.cos(math.radians(lat))
        sin_d = math.sin(self._angle)
        if cos_lat <= sin_d:
            return None
        lon_span = math.degrees(math.asin(sin_d / cos_lat))
        if lon - lon_span < -180 or lon + lon_span > 180:
            return None
        return math.degrees(self._angle), lon_span

    def around(self, lat: float, lon: float) -> Iterator[OpenIncident]:
        """The incidents that may lie within the radius of a place (every incident where
        the cells cannot bound it)."""
        reach = self._reach(lat, lon)
        if reach is None:
            yield from (i for cell in self._cells.values() for i in cell)
            return
        lat_span, lon_span = reach
        yield from self._cells.get(None, ())
        c = self._cell_deg
        for row in range(math.floor((lat - lat_span) / c), math.floor((lat + lat_span) / c) + 1):
            for col in range(
                math.floor((lon - lon_span) / c), math.floor((lon + lon_span) / c) + 1
            ):
                found = self._cells.get((row, col))
                if found:
                    yield from found
