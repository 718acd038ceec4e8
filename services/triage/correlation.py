"""Duplicate calls: several callers reporting the same fire or crash join one incident.

A new call joins an open incident of the same category whose first call came in within
`window` of it and whose place lies within `radius_km`, the nearest such incident first.
It does not join when it says something more urgent than the incident's priority (a life
at risk the first caller did not report): a new incident is dispatched instead, since
sending twice is safer than sending too little. Calls without a place, calls a human must
triage, and categories outside `categories` always open their own incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from schemas.common import Place
from schemas.vocabulary import Category, Priority
from services.common.geo import haversine_km

URGENCY = {Priority.P1: 1, Priority.P2: 2, Priority.P3: 3, Priority.P4: 4}


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
