"""The one check of a unit's report: every stage acts on a report only once it passed here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
    if refused := _implausible_time(unit, report.reported_at, now=now, limits=limits):
        return refused
    if report.status is U.DISPATCHED:
        return Refused("illegal_transition", "only the dispatcher dispatches a unit")
    if report.status in FREEING:
        return _check_freeing(unit, report, limits)
    return _check_step(unit, report, limits)


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
    unit: UnitState, report: UnitStatusReportedV1, limits: ReportLimits
) -> Accepted | Refused:
    """A report that frees a unit names its order's incident, if it has one, and not an
    incident it never had an order on."""
    named = report.incident_id
    if unit.incident_id is not None and named != unit.incident_id:
        return Refused(
            "not_its_incident",
            f"unit {unit.unit_id} is on incident {unit.incident_id}: "
            f"a report freeing it must name that incident" + (f", not {named}" if named else ""),
        )
    if named is not None and named != unit.last_incident_id:
        return Refused("not_its_incident", f"unit {unit.unit_id} had no order on incident {named}")
    if named is not None and (refused := _before_order(unit, report.reported_at, limits)):
        return refused
    return Accepted(incident_id=named, previous=unit.status)


def _check_step(
    unit: UnitState, report: UnitStatusReportedV1, limits: ReportLimits
) -> Accepted | Refused:
    """A step of an order (en route, on scene ...) comes from a unit on that order, after
    it was given, and goes forward."""
    named, status = report.incident_id, report.status
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
    if refused := _before_order(unit, report.reported_at, limits):
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
