"""The one check of a unit's report: every stage acts on a report only once it passed here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from schemas.events import UnitStatusReportedV1
from schemas.vocabulary import UnitStatus as U

# The steps of one order, in the order a crew goes through them; a report may skip steps
# (an en_route without an acknowledgement) but not go back.
ORDER_STEPS: tuple[U, ...] = (
    U.DISPATCHED,
    U.ACKNOWLEDGED,
    U.EN_ROUTE,
    U.ON_SCENE,
    U.TRANSPORTING,
    U.AT_HOSPITAL,
    U.RETURNING,
)
STEP_RANK = {status: i for i, status in enumerate(ORDER_STEPS)}
# What frees a unit from its order: back in service, or out of it.
FREEING = frozenset({U.AVAILABLE, U.OUT_OF_SERVICE})


@dataclass(frozen=True)
class UnitState:
    """What the dispatcher knows of a unit when its report comes in."""

    unit_id: str
    unit_type: str
    status: U
    incident_id: UUID | None  # the incident of its open order
    last_incident_id: UUID | None  # the incident of its latest order, open or ended
    ordered_at: datetime | None  # when that latest order was given


class OnBoard(Protocol):
    """A unit as the read model's board shows it (`services.projector.queries.BoardUnit`)."""

    @property
    def unit_id(self) -> str: ...
    @property
    def unit_type(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def incident_id(self) -> UUID | None: ...
    @property
    def assigned_at(self) -> datetime | None: ...
    @property
    def cleared_incident_id(self) -> UUID | None: ...


def state_on_board(row: OnBoard) -> UnitState:
    """What the dispatcher knows of a unit, as the board shows it (a moment behind the
    dispatcher): a withdrawn order (`cancelled`) or no status at all is a free unit."""
    try:
        status = U(row.status or U.AVAILABLE.value)
    except ValueError:
        status = U.AVAILABLE
    return UnitState(
        unit_id=row.unit_id,
        unit_type=row.unit_type or "",
        status=status,
        incident_id=row.incident_id,
        last_incident_id=row.incident_id or row.cleared_incident_id,
        ordered_at=row.assigned_at if row.incident_id else None,
    )


@dataclass(frozen=True)
class ReportLimits:
    """How far a report's time may stray from the dispatcher's clock."""

    clock_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Accepted:
    """The report stands; `incident_id` is the incident it is about (None: no incident)."""

    incident_id: UUID | None
    previous: U


@dataclass(frozen=True)
class Refused:
    """The report changes nothing; `kind` and `reason` go into its dead letter."""

    kind: str
    reason: str


def check_report(
    unit: UnitState | None,
    report: UnitStatusReportedV1,
    *,
    now: datetime,
    limits: ReportLimits = ReportLimits(),
) -> Accepted | Refused:
    """Whether a unit's report may change anything: the unit is in the fleet, its time is
    plausible, a step of an order comes from a unit on that order and goes forward, and a
    report that frees a unit names its order's incident (a report sent before the crew saw
    a new order must not free it)."""
    if unit is None:
        return Refused("unknown_unit", f"unit {report.unit_id} is not in the fleet")
    return check_status(
        unit,
        report.status,
        incident_id=report.incident_id,
        reported_at=report.reported_at,
        now=now,
        limits=limits,
    )


def check_status(
    unit: UnitState,
    status: U,
    *,
    incident_id: UUID | None,
    reported_at: datetime,
    now: datetime,
    limits: ReportLimits = ReportLimits(),
) -> Accepted | Refused:
    """`check_report` for a unit of the fleet reporting `status` about `incident_id` at
    `reported_at` (what a report says, without the report)."""
    if refused := _implausible_time(unit, reported_at, now=now, limits=limits):
        return refused
    if status is U.DISPATCHED:
        return Refused("illegal_transition", "only the dispatcher dispatches a unit")
    if status in FREEING:
        return _check_freeing(unit, incident_id, reported_at, limits)
    return _check_step(unit, status, incident_id, reported_at, limits)


def next_statuses(
    unit: UnitState, *, now: datetime, among: Iterable[U] = tuple(U)
) -> tuple[U, ...]:
    """The statuses of `among` the crew may report now, in that order: those the check
    accepts for a report naming the unit's order (as a crew's device does), other than the
    status the unit has."""
    return tuple(
        status
        for status in among
        if status is not unit.status
        and isinstance(
            check_status(unit, status, incident_id=unit.incident_id, reported_at=now, now=now),
            Accepted,
        )
    )


def _implausible_time(
    unit: UnitState, at: datetime, *, now: datetime, limits: ReportLimits
) -> Refused | None:
    """A report dated too far ahead of the dispatcher's clock, or too long ago."""
    if at > now + limits.clock_skew:
        return Refused(
            "implausible_time",
            f"unit {unit.unit_id} reported at {at.isoformat()}, "
            f"more than {_minutes(limits.clock_skew)} ahead of the dispatcher's clock",
        )
    if at < now - limits.max_age:
        return Refused(
            "implausible_time",
            f"unit {unit.unit_id} reported at {at.isoformat()}, "
            f"more than {_minutes(limits.max_age)} ago",
        )
    return None


def _check_freeing(
    unit: UnitState, named: UUID | None, at: datetime, limits: ReportLimits
) -> Accepted | Refused:
    """A report that frees a unit names its order's incident, if it has one, and not an
    incident it never had an order on."""
    if unit.incident_id is not None and named != unit.incident_id:
        return Refused(
            "not_its_incident",
            f"unit {unit.unit_id} is on incident {unit.incident_id}: "
            f"a report freeing it must name that incident" + (f", not {named}" if named else ""),
        )
    if named is not None and named != unit.last_incident_id:
        return Refused("not_its_incident", f"unit {unit.unit_id} had no order on incident {named}")
    if named is not None and (refused := _before_order(unit, at, limits)):
        return refused
    return Accepted(incident_id=named, previous=unit.status)


def _check_step(
    unit: UnitState, status: U, named: UUID | None, at: datetime, limits: ReportLimits
) -> Accepted | Refused:
    """A step of an order (en route, on scene ...) comes from a unit on that order, after
    it was given, and goes forward."""
    if unit.incident_id is None:
        return Refused(
            "no_order",
            f"unit {unit.unit_id} reported {status.value} without an open order"
            + (f" on incident {named}" if named else ""),
        )
    if named is not None and named != unit.incident_id:
        return Refused(
            "not_its_incident",
            f"unit {unit.unit_id} reported {status.value} on incident {named}, "
            f"but its order is incident {unit.incident_id}",
        )
    if refused := _before_order(unit, at, limits):
        return refused
    if STEP_RANK[status] < STEP_RANK.get(unit.status, 0):
        return Refused(
            "illegal_transition",
            f"unit {unit.unit_id} reported {status.value} after {unit.status.value}",
        )
    return Accepted(incident_id=unit.incident_id, previous=unit.status)


def _before_order(unit: UnitState, at: datetime, limits: ReportLimits) -> Refused | None:
    if unit.ordered_at is not None and at < unit.ordered_at - limits.clock_skew:
        return Refused(
            "implausible_time",
            f"unit {unit.unit_id} reported at {at.isoformat()}, "
            f"before its order at {unit.ordered_at.isoformat()}",
        )
    return None


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes >= 120 and minutes % 60 == 0 else f"{minutes} min"
