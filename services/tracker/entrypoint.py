"""Tracker handlers: every fact about an incident moves its lifecycle, or is refused."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from schemas.commands import CancelIncidentV1, CloseIncidentV1
from schemas.envelope import Event, new_event
from schemas.events import (
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentOpenedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    UnitDispatchedV1,
    UnitStatusChangedV1,
    WorkOrderAnsweredV1,
    WorkOrderClosedV1,
    WorkOrderIssuedV1,
)
from schemas.ids import derive_id
from schemas.topics import Topics
from schemas.vocabulary import Category, IncidentStatus, Priority, UnitStatus
from services.common.logging import get_logger
from services.common.outbox import Outgoing
from services.common.processing import Rejected
from services.common.uow import UnitOfWork
from services.tracker import repository
from services.tracker.lifecycle import (
    ON_OR_PAST_SCENE,
    UNIT_CLEARED,
    UNIT_PROGRESS,
    IllegalTransition,
    advance,
)

SOURCE = "/siaga/tracker"
log = get_logger("tracker")
NO_SLA = frozenset({Category.PRANK, Category.GHOST})


def sla_target(priority: Priority) -> str:
    """Emergencies are measured to the first unit notified, complaints to the first answer."""
    return "dispatch" if priority in (Priority.P1, Priority.P2) else "first_response"


TIME_OF_STEP: dict[IncidentStatus, str] = {
    IncidentStatus.RECEIVED: "call_received_at",
    IncidentStatus.CLASSIFIED: "classified_at",
    IncidentStatus.DISPATCHED: "unit_notified_at",
    IncidentStatus.ACKNOWLEDGED: "acknowledged_at",
    IncidentStatus.EN_ROUTE: "en_route_at",
    IncidentStatus.ON_SCENE: "on_scene_at",
    IncidentStatus.TRANSPORTING: "left_scene_at",
    IncidentStatus.AT_HOSPITAL: "at_destination_at",
    IncidentStatus.RESOLVED: "resolved_at",
}


@dataclass
class TrackerBatch:
    """What one tracker transaction holds: the incidents it changes (locked, read up front,
    written back at its end) and the orders of their units."""

    incidents: repository.Incidents = field(default_factory=repository.Incidents)
    assignments: repository.Assignments = field(default_factory=repository.Assignments)

    async def prepare(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Lock the incidents the batch will change, then read their units' orders: those
        its events name, and those its units are on or were on last."""
        named: set[UUID] = set()
        ordered: set[UUID] = set()
        units: set[str] = set()
        for event in events:
            incident_id = getattr(event.payload, "incident_id", None)
            unit_id = getattr(event.payload, "unit_id", None)
            if isinstance(incident_id, UUID):
                named.add(incident_id)
            if isinstance(unit_id, str):
                units.add(unit_id)
                if isinstance(incident_id, UUID):
                    ordered.add(incident_id)
        theirs = await self.assignments.incidents_of(conn, units)  # locks the units
        # Locked before their orders are read, so the orders read are the latest.
        await self.incidents.lock(conn, named | theirs)
        await self.assignments.read(conn, incidents=ordered)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write the batch's steps, timers and orders."""
        await self.incidents.flush(conn)
        await self.assignments.flush(conn)


@dataclass
class Tracker:
    """Applies incident, dispatch and unit events to the lifecycle state machine, in the
    unit of work's `TrackerBatch`."""

    topics: Topics

    async def on_incident_opened(
        self, uow: UnitOfWork[TrackerBatch], event: Event[IncidentOpenedV1]
    ) -> Sequence[Outgoing]:
        """An incident starts as received, at the time its call came in."""
        opened = event.payload
        return await self._step(
            uow,
            opened.incident_id,
            IncidentStatus.RECEIVED,
            opened.received_at,
            "call received",
            event,
        )

    async def on_incident_classified(
        self, uow: UnitOfWork[TrackerBatch], event: Event[IncidentClassifiedV1]
    ) -> Sequence[Outgoing]:
        """Triage has decided what it is."""
        classified = event.payload
        if classified.category not in NO_SLA:
            uow.state.incidents.start_timer(
                repository.SlaTimer(
                    incident_id=classified.incident_id,
                    target=sla_target(classified.priority),
                    due_at=classified.received_at + timedelta(seconds=classified.sla_seconds),
                    priority=classified.priority.value,
                    channel=classified.channel.value,
                    category=classified.category.value,
                    received_at=classified.received_at,
                )
            )
        reason = f"{classified.category.value} {classified.priority.value}"
        return await self._step(
            uow,
            classified.incident_id,
            IncidentStatus.CLASSIFIED,
            classified.classified_at,
            reason,
            event,
        )

    async def on_unit_dispatched(
        self, uow: UnitOfWork[TrackerBatch], event: Event[UnitDispatchedV1]
    ) -> Sequence[Outgoing]:
        """A unit has its order."""
        order = event.payload
        uow.state.incidents.stop_timer(
            repository.SlaStop(order.incident_id, "dispatch", order.dispatched_at, met=True)
        )
        await uow.state.assignments.assign(
            uow.conn, incident_id=order.incident_id, unit_id=order.unit_id, at=order.dispatched_at
        )
        return await self._step(
            uow,
            order.incident_id,
            IncidentStatus.DISPATCHED,
            order.dispatched_at,
            f"{order.unit_id} dispatched",
            event,
            unit_id=order.unit_id,
        )

    async def on_dispatch_cancelled(
        self, uow: UnitOfWork[TrackerBatch], event: Event[DispatchCancelledV1]
    ) -> Sequence[Outgoing]:
        """An order was withdrawn: the unit no longer counts for the incident."""
        cancelled = event.payload
        await uow.state.assignments.end(
            uow.conn, incident_id=cancelled.incident_id, unit_id=cancelled.unit_id
        )
        return []

    async def on_unit_status(
        self, uow: UnitOfWork[TrackerBatch], event: Event[UnitStatusChangedV1]
    ) -> Sequence[Outgoing]:
        """A unit's progress, as the dispatcher accepted it, moves its incident; the last
        unit to clear resolves it."""
        report = event.payload
        assignment = await uow.state.assignments.active(
            uow.conn, unit_id=report.unit_id, incident_id=report.incident_id
        )
        progress = UNIT_PROGRESS.get(report.status)
        if assignment is None and progress is not None and report.incident_id is not None:
            # The unit names its incident and its order is still on the way to us.
            assignment = await uow.state.assignments.assign(
                uow.conn,
                incident_id=report.incident_id,
                unit_id=report.unit_id,
                at=report.reported_at,
            )
        if assignment is None:
            await self._without_order(uow, report, moves_incident=progress is not None)
            return []  # nothing else to do with any incident
        incident_id = assignment.incident_id
        if progress is not None:
            if report.status in ON_OR_PAST_SCENE:
                uow.state.assignments.reached_scene(assignment)
            return await self._step(
                uow,
                incident_id,
                progress,
                report.reported_at,
                f"{report.unit_id} {report.status.value}",
                event,
                unit_id=report.unit_id,
                refuse=False,
            )
        if report.status in UNIT_CLEARED or report.status is UnitStatus.OUT_OF_SERVICE:
            await uow.state.assignments.end(
                uow.conn, incident_id=incident_id, unit_id=report.unit_id
            )
            if report.status is UnitStatus.AVAILABLE:
                await uow.state.incidents.stamp(
                    uow.conn,
                    incident_id=incident_id,
                    column="back_in_service_at",
                    at=report.reported_at,
                )
            open_orders, served = await uow.state.assignments.progress(
                uow.conn, incident_id=incident_id
            )
            if open_orders == 0 and served:
                return await self._resolve(uow, incident_id, report.reported_at, served, event)
        return []

    @staticmethod
    async def _without_order(
        uow: UnitOfWork[TrackerBatch], report: UnitStatusChangedV1, *, moves_incident: bool
    ) -> None:
        """A unit's report with no open order: a step of an incident is refused; back in
        service after `returning` closed the order still stamps the incident's eTimes."""
        if moves_incident:
            raise Rejected(
                "illegal_transition",
                f"unit {report.unit_id} reported {report.status.value} without an open order"
                + (f" on incident {report.incident_id}" if report.incident_id else ""),
            )
        if report.status is UnitStatus.AVAILABLE:
            last = await uow.state.assignments.last(
                uow.conn, unit_id=report.unit_id, incident_id=report.incident_id
            )
            if last is not None:
                await uow.state.incidents.stamp(
                    uow.conn, incident_id=last, column="back_in_service_at", at=report.reported_at
                )

    async def on_work_order_issued(
        self, uow: UnitOfWork[TrackerBatch], event: Event[WorkOrderIssuedV1]
    ) -> Sequence[Outgoing]:
        """A complaint is in an agency's queue: for its lifecycle, that is its dispatch."""
        order = event.payload
        return await self._step(
            uow,
            order.incident_id,
            IncidentStatus.DISPATCHED,
            order.issued_at,
            f"work order to {order.agency}",
            event,
        )

    async def on_work_order_answered(
        self, uow: UnitOfWork[TrackerBatch], event: Event[WorkOrderAnsweredV1]
    ) -> Sequence[Outgoing]:
        """The agency's first response meets the complaint's target."""
        answered = event.payload
        uow.state.incidents.stop_timer(
            repository.SlaStop(
                answered.incident_id, "first_response", answered.answered_at, met=True
            )
        )
        return await self._step(
            uow,
            answered.incident_id,
            IncidentStatus.ACKNOWLEDGED,
            answered.answered_at,
            f"{answered.agency} answered",
            event,
        )

    async def on_work_order_closed(
        self, uow: UnitOfWork[TrackerBatch], event: Event[WorkOrderClosedV1]
    ) -> Sequence[Outgoing]:
        """The agency finished: the complaint is resolved."""
        closed = event.payload
        uow.state.incidents.stop_timer(
            repository.SlaStop(closed.incident_id, "*", closed.closed_at, met=True)
        )
        return await self._resolve(uow, closed.incident_id, closed.closed_at, [], event)

    async def on_cancel_incident(
        self, uow: UnitOfWork[TrackerBatch], event: Event[CancelIncidentV1]
    ) -> Sequence[Outgoing]:
        """A supervisor cancels the incident; the dispatcher then releases its units."""
        command = event.payload
        if await uow.state.incidents.status_of(uow.conn, incident_id=command.incident_id) is None:
            # Nobody opened it: a cancel must not make an incident of its own.
            raise Rejected("unknown_incident", f"no incident {command.incident_id}")
        uow.state.incidents.stop_timer(
            repository.SlaStop(command.incident_id, "*", command.requested_at, met=False)
        )
        return await self._step(
            uow,
            command.incident_id,
            IncidentStatus.CANCELLED,
            command.requested_at,
            f"cancelled by {command.requested_by}: {command.reason}",
            event,
        )

    async def on_close_incident(
        self, uow: UnitOfWork[TrackerBatch], event: Event[CloseIncidentV1]
    ) -> Sequence[Outgoing]:
        """A supervisor closes a resolved incident."""
        command = event.payload
        if await uow.state.incidents.status_of(uow.conn, incident_id=command.incident_id) is None:
            raise Rejected("unknown_incident", f"no incident {command.incident_id}")
        return await self._step(
            uow,
            command.incident_id,
            IncidentStatus.CLOSED,
            command.requested_at,
            f"closed by {command.requested_by}" + (f": {command.note}" if command.note else ""),
            event,
        )

    async def raise_sla_breaches(self, uow: UnitOfWork[None]) -> Sequence[Outgoing]:
        """Every target past due and unmet is breached, exactly once."""
        out = []
        for breached in await repository.breach_due_timers(uow.conn, now=uow.now):
            out.append(
                Outgoing.of(
                    new_event(
                        breached,
                        id=derive_id(breached.incident_id, f"sla/{breached.target}"),
                        source=SOURCE,
                        correlationid=None,
                    ),
                    self.topics,
                )
            )
        return out

    async def _resolve(
        self,
        uow: UnitOfWork[TrackerBatch],
        incident_id: UUID,
        at: datetime,
        units: list[str],
        cause: Event,
    ) -> Sequence[Outgoing]:
        out = list(
            await self._step(
                uow, incident_id, IncidentStatus.RESOLVED, at, "all units cleared", cause
            )
        )
        if out:
            resolved = IncidentResolvedV1(incident_id=incident_id, resolved_at=at, units=units)
            out.append(
                Outgoing.of(
                    new_event(
                        resolved,
                        id=derive_id(incident_id, "resolved"),
                        source=SOURCE,
                        correlationid=cause.envelope.correlationid,
                        causationid=cause.id,
                    ),
                    self.topics,
                )
            )
        return out

    async def _step(
        self,
        uow: UnitOfWork[TrackerBatch],
        incident_id: UUID,
        proposed: IncidentStatus,
        at: datetime,
        reason: str,
        cause: Event,
        *,
        unit_id: str | None = None,
        refuse: bool = True,
    ) -> Sequence[Outgoing]:
        current = await uow.state.incidents.status_of(uow.conn, incident_id=incident_id)
        try:
            new = advance(current, proposed)
        except IllegalTransition as exc:
            if refuse:
                raise Rejected("illegal_transition", f"incident {incident_id}: {exc}") from None
            # The dispatcher, the authority on units, accepted the step before it knew the
            # incident had ended: a fact about the unit, not a step of the incident.
            log.info("unit step after the incident ended", incident_id=str(incident_id))
            return []
        uow.state.incidents.record_step(
            incident_id=incident_id,
            status=new or current or proposed,
            time_column=TIME_OF_STEP.get(proposed),
            at=at,
        )
        if new is None:
            return []
        changed = IncidentStatusChangedV1(
            incident_id=incident_id,
            from_status=current,
            to_status=new,
            changed_at=at,
            unit_id=unit_id,
            reason=reason,
        )
        return [
            Outgoing.of(
                new_event(
                    changed,
                    id=derive_id(cause.id, f"status/{new.value}"),
                    source=SOURCE,
                    time=at,
                    correlationid=cause.envelope.correlationid,
                    causationid=cause.id,
                ),
                self.topics,
            )
        ]
