"""The dispatcher's decisions, as pure functions of what its handlers read: what an incident
needs, which free unit goes, the order, the escalation, the withdrawal and the work order.

Handlers fetch, call one of these and write what it returns; nothing here reads a clock or a
database, so each rule is tested in milliseconds (`tests/unit/test_dispatch_decisions.py`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from schemas.common import Place
from schemas.events import (
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentEscalatedV1,
    TriageReviewedV1,
    UnitDispatchedV1,
    WorkOrderIssuedV1,
)
from schemas.ids import derive_id
from schemas.vocabulary import NOT_INCIDENTS, Category, Priority, UnitStatus, UnitType
from services.common.geo import haversine_km
from services.dispatcher.runcards import RunCards, Slot


@dataclass(frozen=True)
class Need:
    """A run-card slot of an incident, with what it takes to fill it."""

    incident_id: UUID
    slot: int
    wanted: Slot
    category: Category
    priority: Priority
    place: Place | None


@dataclass(frozen=True)
class Response:
    """What an incident asks of the dispatcher: units for slots, a work order, or nothing."""

    needs: tuple[Need, ...] = ()
    work_order: bool = False


@dataclass(frozen=True)
class FreeUnit:
    """A unit that may be claimed, as the ranking sees it."""

    unit_id: str
    capabilities: Collection[str]
    lat: float
    lon: float


@dataclass(frozen=True)
class Dispatch:
    """An order decided: the row to record and the event to send."""

    order: UnitDispatchedV1
    slot: int
    wanted: Slot
    ack_due_at: datetime


def response_to_classification(incident: IncidentClassifiedV1, run_cards: RunCards) -> Response:
    """Units for each slot of the run card; a work order for a report without one; nothing
    for a report a human triages first (held for review), a prank or a silent call."""
    if incident.needs_review:
        return Response()
    slots = run_cards.slots(incident.category, incident.priority)
    if not slots:
        return Response(work_order=incident.category not in NOT_INCIDENTS)
    return Response(
        needs=tuple(
            Need(
                incident.incident_id,
                number,
                wanted,
                incident.category,
                incident.priority,
                incident.place,
            )
            for number, wanted in enumerate(slots)
        )
    )


def response_to_review(
    review: TriageReviewedV1, run_cards: RunCards, *, taken: dict[int, Slot]
) -> Response:
    """What the reviewed category and priority need beyond the slots already sent or waited
    for (`taken`), numbered after them; a lowered priority recalls nobody."""
    slots = run_cards.slots(review.category, review.priority)
    if not slots:
        return Response(work_order=review.category not in NOT_INCIDENTS)
    first = max(taken, default=-1) + 1
    return Response(
        needs=tuple(
            Need(review.incident_id, number, wanted, review.category, review.priority, review.place)
            for number, wanted in enumerate(still_needed(slots, taken), start=first)
        )
    )


def still_needed(wanted: Sequence[Slot], taken: dict[int, Slot]) -> list[Slot]:
    """The run card's slots no unit sent (or waited for) already covers: a unit of the type,
    with the capability when the slot names one."""
    free = list(taken.values())
    missing = []
    for slot in wanted:
        match = next(
            (
                t
                for t in free
                if t.unit_type is slot.unit_type
                and (slot.capability is None or t.capability == slot.capability)
            ),
            None,
        )
        if match is None:
            missing.append(slot)
        else:
            free.remove(match)
    return missing


def scene_of(need: Need, *, fallback: tuple[float, float]) -> tuple[float, float]:
    """Where the units go: the resolved place, else the regency's fallback point."""
    return (need.place.lat, need.place.lon) if need.place else fallback


def rank_units(
    need: Need,
    units: Sequence[FreeUnit],
    *,
    passed_over: Collection[str] = (),
    fallback: tuple[float, float],
) -> list[str]:
    """The free units of the need's type in the order the claim takes them: those with the
    slot's capability first (an ALS ambulance for a P1; any unit of the type beats none),
    then the nearest, then by name; never one already passed over for the incident. The
    claim (`repository.claim_unit`) does the same in one statement, so that no unit goes
    to two incidents; a test holds the two to each other."""
    lat, lon = scene_of(need, fallback=fallback)
    scale = math.cos(math.radians(lat))

    def key(unit: FreeUnit) -> tuple[bool, float, str]:
        has = need.wanted.capability is not None and need.wanted.capability in unit.capabilities
        return (not has, (unit.lat - lat) ** 2 + ((unit.lon - lon) * scale) ** 2, unit.unit_id)

    return [u.unit_id for u in sorted(units, key=key) if u.unit_id not in passed_over]


def dispatch(
    need: Need,
    *,
    unit_id: str,
    unit_type: UnitType,
    unit_at: tuple[float, float],
    run_cards: RunCards,
    fallback: tuple[float, float],
    ack_timeout: timedelta,
    cause_id: str,
    now: datetime,
) -> Dispatch:
    """The order for a claimed unit: its id follows from its cause and slot, the trip is
    estimated from where the unit is, and it must be acknowledged within `ack_timeout`."""
    lat, lon = scene_of(need, fallback=fallback)
    distance_km, eta = run_cards.travel(
        haversine_km(unit_at[0], unit_at[1], lat, lon), unit_type=unit_type, priority=need.priority
    )
    order = UnitDispatchedV1(
        dispatch_id=derive_id(cause_id, f"dispatch/{need.incident_id}/{need.slot}"),
        incident_id=need.incident_id,
        unit_id=unit_id,
        unit_type=unit_type,
        category=need.category,
        priority=need.priority,
        place=need.place,
        distance_km=distance_km,
        eta_seconds=eta,
        dispatched_at=now,
    )
    return Dispatch(order, need.slot, need.wanted, ack_due_at=now + ack_timeout)


def escalation(need: Need, *, now: datetime) -> IncidentEscalatedV1:
    """No unit of the slot's type is free: the slot waits for the first to clear."""
    return IncidentEscalatedV1(
        incident_id=need.incident_id,
        unit_type=need.wanted.unit_type,
        priority=need.priority,
        reason=f"no {need.wanted.unit_type.value} free; waiting for the first to clear",
        escalated_at=now,
    )


def withdrawal(
    *,
    dispatch_id: UUID,
    incident_id: UUID,
    unit_id: str,
    reason: str,
    unit_after: UnitStatus,
    now: datetime,
) -> DispatchCancelledV1:
    """An order withdrawn, and the state its unit is left in."""
    return DispatchCancelledV1(
        dispatch_id=dispatch_id,
        incident_id=incident_id,
        unit_id=unit_id,
        reason=reason,
        unit_status_after=unit_after,
        cancelled_at=now,
    )


def work_order(
    incident: IncidentClassifiedV1 | TriageReviewedV1,
    *,
    summary: str,
    due_after: timedelta,
    now: datetime,
) -> WorkOrderIssuedV1:
    """An agency's work order, due `due_after` from when the report came in (the 3-day rule
    runs from the citizen's report, not from triage)."""
    return WorkOrderIssuedV1(
        work_order_id=derive_id(incident.incident_id, "work_order"),
        incident_id=incident.incident_id,
        agency=incident.agency,
        category=incident.category,
        priority=incident.priority,
        summary=summary,
        issued_at=now,
        due_at=incident.received_at + due_after,
    )
