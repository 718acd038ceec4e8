"""Dispatcher handlers: units for emergencies, work orders for complaints, and the timers
and supervisor commands that keep both moving."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import asyncpg

from schemas.commands import (
    AnswerWorkOrderV1,
    CancelDispatchV1,
    CloseWorkOrderV1,
    ReassignDispatchV1,
)
from schemas.common import Contract
from schemas.envelope import Event, new_event
from schemas.events import (
    IncidentClassifiedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    TriageReviewedV1,
    UnitMovedV1,
    UnitRegisteredV1,
    UnitStatusChangedV1,
    UnitStatusReportedV1,
    WorkOrderAnsweredV1,
    WorkOrderClosedV1,
    WorkOrderEscalatedV1,
    WorkOrderReminderSentV1,
)
from schemas.ids import derive_id
from schemas.topics import Topics
from schemas.vocabulary import (
    ENDED_STATUSES,
    Category,
    IncidentStatus,
    Priority,
    UnitStatus,
    UnitType,
)
from services.common.logging import get_logger
from services.common.outbox import Outgoing
from services.common.processing import Rejected
from services.common.uow import UnitOfWork
from services.dispatcher import repository
from services.dispatcher.decisions import (
    Need,
    dispatch,
    escalation,
    response_to_classification,
    response_to_review,
    scene_of,
    withdrawal,
    work_order,
)
from services.dispatcher.repository import ClaimedUnit, Fleet, Order, WorkOrder
from services.dispatcher.runcards import RunCards, Slot
from services.dispatcher.unit_reports import Refused, ReportLimits, check_report

SOURCE = "/siaga/dispatcher"
log = get_logger("dispatcher")


def _need_of(order: Order) -> Need:
    """The slot an order was filling, to fill it again."""
    return Need(
        incident_id=order.incident_id,
        slot=order.slot,
        wanted=Slot(UnitType(order.unit_type), order.capability),
        category=Category(order.category),
        priority=Priority(order.priority),
        place=order.place,
    )


@dataclass
class DispatcherBatch:
    """What one dispatcher transaction holds: the unit types it has locked (its `Fleet`)."""

    fleet: Fleet
    run_cards: RunCards

    async def prepare(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Lock at once the unit types the batch's events will claim or free: those of its
        run cards, of the units its reports, commands and registrations name, and of the
        open orders of the incidents it cancels or merges."""
        unit_types: set[str] = set()
        unit_ids: set[str] = set()
        incident_ids: set[UUID] = set()
        for event in events:
            payload = event.payload
            if (
                isinstance(payload, IncidentClassifiedV1) and not payload.needs_review
            ) or isinstance(payload, TriageReviewedV1):
                slots = self.run_cards.slots(payload.category, payload.priority)
                unit_types.update(slot.unit_type.value for slot in slots)
            elif isinstance(payload, UnitStatusReportedV1 | CancelDispatchV1):
                unit_ids.add(payload.unit_id)
            elif isinstance(payload, ReassignDispatchV1):
                unit_ids.update(u for u in (payload.unit_id, payload.to_unit_id) if u)
            elif isinstance(payload, UnitRegisteredV1):
                unit_ids.add(payload.unit_id)  # its type so far, if it changes type
                unit_types.add(payload.unit_type.value)
            elif isinstance(payload, IncidentStatusChangedV1) and payload.to_status in (
                IncidentStatus.CANCELLED,
                IncidentStatus.MERGED,
            ):
                incident_ids.add(payload.incident_id)
        await self.fleet.hold(
            conn, unit_types=unit_types, unit_ids=unit_ids, incident_ids=incident_ids
        )

    async def flush(self, conn: asyncpg.Connection) -> None:
        """The transaction is about to commit."""
        await self.fleet.flush(conn)


@dataclass
class Dispatcher:
    """Claims the nearest free units for emergencies; queues complaints with agencies."""

    topics: Topics
    run_cards: RunCards
    fallback_point: tuple[float, float]
    ack_timeouts: dict[Priority, timedelta]
    work_order_due: timedelta
    work_order_reminder: timedelta
    report_limits: ReportLimits = field(default_factory=ReportLimits)

    def new_batch(self) -> DispatcherBatch:
        """The state of one transaction (a batch, or a timer's run)."""
        return DispatcherBatch(Fleet(), self.run_cards)

    # ------------------------------------------------------------ incidents

    async def on_incident_classified(
        self, uow: UnitOfWork[DispatcherBatch], event: Event[IncidentClassifiedV1]
    ) -> Sequence[Outgoing]:
        """Send the run card's units, or issue a work order for a non-emergency report."""
        incident = event.payload
        response = response_to_classification(incident, self.run_cards)
        if response.work_order:
            return await self._work_order(
                uow, incident, summary=incident.text or incident.explanation, cause=event
            )
        out: list[Outgoing] = []
        for need in response.needs:
            out += await self._fill(uow, need, cause=event)
        return out

    async def on_triage_reviewed(
        self, uow: UnitOfWork[DispatcherBatch], event: Event[TriageReviewedV1]
    ) -> Sequence[Outgoing]:
        """A call-taker's decision: what its run card needs beyond the units already sent or
        waited for goes now (all of it for an incident that was held for review); a lowered
        priority recalls nobody (a supervisor cancels units that are not needed)."""
        review = event.payload
        taken = await repository.run_card_slots(uow.conn, incident_id=review.incident_id)
        response = response_to_review(review, self.run_cards, taken=taken)
        if response.work_order:
            return await self._work_order(
                uow, review, summary=review.text or review.note, cause=event
            )
        out: list[Outgoing] = []
        for need in response.needs:
            out += await self._fill(uow, need, cause=event)
        return out

    async def on_incident_finished(
        self,
        uow: UnitOfWork[DispatcherBatch],
        event: Event[IncidentStatusChangedV1 | IncidentResolvedV1],
    ) -> Sequence[Outgoing]:
        """A finished incident stops waiting for units; a cancelled one releases its units."""
        payload = event.payload
        if isinstance(payload, IncidentStatusChangedV1) and payload.to_status not in ENDED_STATUSES:
            return []
        await repository.withdraw_pending(uow.conn, incident_id=payload.incident_id)
        if not (
            isinstance(payload, IncidentStatusChangedV1)
            and payload.to_status in (IncidentStatus.CANCELLED, IncidentStatus.MERGED)
        ):
            return []
        out: list[Outgoing] = []
        for order in await repository.active_orders(uow.conn, incident_id=payload.incident_id):
            out += await self._withdraw(
                uow,
                order,
                reason=f"incident {payload.to_status.value}",
                unit_after=UnitStatus.AVAILABLE,
                cause=event,
            )
        return out

    # ------------------------------------------------------------ units

    async def on_unit_registered(
        self, uow: UnitOfWork[DispatcherBatch], event: Event[UnitRegisteredV1]
    ) -> Sequence[Outgoing]:
        """A unit joins the fleet (or changes details) and may serve a waiting incident."""
        unit = event.payload
        await uow.state.fleet.lock(uow.conn, unit_type=unit.unit_type.value)
        await repository.register_unit(uow.conn, unit=unit)
        uow.state.fleet.registered(uow.conn, unit_id=unit.unit_id, unit_type=unit.unit_type.value)
        return await self._serve_waiting(uow, unit_type=unit.unit_type.value, cause=event)

    async def on_unit_moved(
        self, uow: UnitOfWork[DispatcherBatch], event: Event[UnitMovedV1]
    ) -> Sequence[Outgoing]:
        """A unit's position changed: the next ranking uses it."""
        moved = event.payload
        known = await repository.move_unit(
            uow.conn,
            unit_id=moved.unit_id,
            lat=moved.location.lat,
            lon=moved.location.lon,
            base=moved.base,
        )
        if not known:
            raise Rejected("unknown_unit", f"unit {moved.unit_id} is not in the fleet")
        return []

    async def on_unit_status(
        self, uow: UnitOfWork[DispatcherBatch], event: Event[UnitStatusReportedV1]
    ) -> Sequence[Outgoing]:
        """Check a unit's report (the one check every stage relies on) and apply it; an
        accepted report is published as `UnitStatusChanged`, a refused one is a dead
        letter. A unit that frees up goes to the most urgent waiting incident."""
        report = event.payload
        unit_type = await uow.state.fleet.unit_type_of(uow.conn, unit_id=report.unit_id)
        if unit_type is not None:
            await uow.state.fleet.lock(uow.conn, unit_type=unit_type)
        unit = await repository.unit_for_report(uow.conn, unit_id=report.unit_id)
        verdict = check_report(unit, report, now=uow.now, limits=self.report_limits)
        if isinstance(verdict, Refused):
            raise Rejected(verdict.kind, verdict.reason)
        assert unit is not None
        await repository.update_unit_status(
            uow.conn,
            unit_id=report.unit_id,
            status=report.status.value,
            at=report.reported_at,
            lat=report.location.lat if report.location else None,
            lon=report.location.lon if report.location else None,
        )
        changed = UnitStatusChangedV1(
            unit_id=report.unit_id,
            status=report.status,
            previous_status=verdict.previous,
            incident_id=verdict.incident_id,
            reported_at=report.reported_at,
            location=report.location,
            note=report.note,
        )
        out = [self._emit(changed, cause=event, role="accepted")]
        if report.status is UnitStatus.AVAILABLE:
            out += await self._serve_waiting(uow, unit_type=unit.unit_type, cause=event)
        return out

    # ------------------------------------------------------------ supervisor commands

    async def on_cancel_dispatch(
        self, uow: UnitOfWork[DispatcherBatch], event: Event[CancelDispatchV1]
    ) -> Sequence[Outgoing]:
        """Withdraw a unit's order; by default the next best unit fills the slot."""
        command = event.payload
        order = await self._active_order(uow, command.incident_id, command.unit_id)
        out = await self._withdraw(
            uow,
            order,
            reason=f"cancelled by {command.requested_by}: {command.reason}",
            unit_after=UnitStatus.AVAILABLE,
            cause=event,
        )
        if command.redispatch:
            out += await self._fill(uow, _need_of(order), cause=event)
        return out

    async def on_reassign_dispatch(
        self, uow: UnitOfWork[DispatcherBatch], event: Event[ReassignDispatchV1]
    ) -> Sequence[Outgoing]:
        """Give a unit's order to a named unit (which must be free) or to the next best."""
        command = event.payload
        order = await self._active_order(uow, command.incident_id, command.unit_id)
        out = list(
            await self._withdraw(
                uow,
                order,
                reason=f"reassigned by {command.requested_by}: {command.reason}",
                unit_after=UnitStatus.AVAILABLE,
                cause=event,
            )
        )
        need = _need_of(order)
        if command.to_unit_id is None:
            return out + list(await self._fill(uow, need, cause=event))
        unit_type = await uow.state.fleet.unit_type_of(uow.conn, unit_id=command.to_unit_id)
        if unit_type is None:
            raise Rejected("unknown_unit", f"unit {command.to_unit_id} is not in the fleet")
        await uow.state.fleet.lock(uow.conn, unit_type=unit_type)
        unit = await repository.claim_named_unit(
            uow.conn, unit_id=command.to_unit_id, incident_id=order.incident_id, at=uow.now
        )
        if unit is None:
            raise Rejected("unit_busy", f"unit {command.to_unit_id} is not available")
        return [*out, await self._order(uow, need, unit, cause=event)]

    async def on_answer_work_order(
        self, uow: UnitOfWork[DispatcherBatch], event: Event[AnswerWorkOrderV1]
    ) -> Sequence[Outgoing]:
        """An agency's first response; answering twice is refused."""
        command = event.payload
        order = await self._open_work_order(uow, command.incident_id)
        if order.answered_at is not None:
            raise Rejected("already_answered", f"work order of {command.incident_id} was answered")
        await repository.mark_work_order(
            uow.conn,
            work_order_id=order.work_order_id,
            column="answered_at",
            at=command.requested_at,
        )
        answered = WorkOrderAnsweredV1(
            work_order_id=order.work_order_id,
            incident_id=command.incident_id,
            agency=order.agency,
            response=command.response,
            answered_by=command.requested_by,
            answered_at=command.requested_at,
        )
        return [self._emit(answered, cause=event, role="answered")]

    async def on_close_work_order(
        self, uow: UnitOfWork[DispatcherBatch], event: Event[CloseWorkOrderV1]
    ) -> Sequence[Outgoing]:
        """An agency finished the work (closing also counts as the first response)."""
        command = event.payload
        order = await self._open_work_order(uow, command.incident_id)
        for column in ("answered_at", "closed_at"):
            await repository.mark_work_order(
                uow.conn, work_order_id=order.work_order_id, column=column, at=command.requested_at
            )
        closed = WorkOrderClosedV1(
            work_order_id=order.work_order_id,
            incident_id=command.incident_id,
            agency=order.agency,
            resolution=command.resolution,
            closed_by=command.requested_by,
            closed_at=command.requested_at,
        )
        return [self._emit(closed, cause=event, role="closed")]

    # ------------------------------------------------------------ timers

    async def expire_unacknowledged(self, uow: UnitOfWork[DispatcherBatch]) -> Sequence[Outgoing]:
        """Orders not acknowledged in time go to the next best unit; the silent unit is set
        out of service until it reports again, so it is not offered the next call either."""
        out: list[Outgoing] = []
        now = uow.now
        # The types are locked before any order: a batch holding a type may go on to lock
        # that type's orders, and the job must not hold one then.
        types = await repository.lock_unit_types(
            uow.conn, unit_types=await repository.unacknowledged_types(uow.conn, now=now)
        )
        if not types:
            return out
        for order in await repository.unacknowledged(uow.conn, now=now, unit_types=types):
            cancelled = await self._withdraw(
                uow,
                order,
                reason="no acknowledgement in time",
                unit_after=UnitStatus.OUT_OF_SERVICE,
                cause=None,
            )
            out += cancelled
            out += await self._fill(uow, _need_of(order), cause=cancelled[0].event)
        return out

    async def remind_and_escalate_work_orders(self, uow: UnitOfWork[None]) -> Sequence[Outgoing]:
        """Remind agencies before a work order falls due; escalate it once it is overdue."""
        now = uow.now
        out: list[Outgoing] = []
        for row in await repository.due_work_orders(
            uow.conn, step="reminded_at", when_due_before=now + self.work_order_reminder
        ):
            reminder = WorkOrderReminderSentV1(
                work_order_id=row.work_order_id,
                incident_id=row.incident_id,
                agency=row.agency,
                due_at=row.due_at,
                reminded_at=row.at,
            )
            out.append(self._emit(reminder, cause=None, role=f"{row.work_order_id}/reminder"))
        for row in await repository.due_work_orders(
            uow.conn, step="escalated_at", when_due_before=now
        ):
            escalated = WorkOrderEscalatedV1(
                work_order_id=row.work_order_id,
                incident_id=row.incident_id,
                agency=row.agency,
                due_at=row.due_at,
                escalated_at=row.at,
            )
            out.append(self._emit(escalated, cause=None, role=f"{row.work_order_id}/escalated"))
        return out

    # ------------------------------------------------------------ the mechanics

    async def _fill(
        self, uow: UnitOfWork[DispatcherBatch], need: Need, *, cause: Event
    ) -> list[Outgoing]:
        """Claim the best free unit for a slot, or queue the slot and escalate."""
        unit = await self._claim(uow, need)
        if unit is not None:
            return [await self._order(uow, need, unit, cause=cause)]
        queued = await repository.queue_pending(
            uow.conn,
            incident_id=need.incident_id,
            slot=need.slot,
            unit_type=need.wanted.unit_type.value,
            capability=need.wanted.capability,
            priority=need.priority.value,
            category=need.category.value,
            place=need.place,
            at=uow.now,
        )
        if not queued:
            return []
        escalated = escalation(need, now=uow.now)
        return [
            self._emit(escalated, cause=cause, role=f"escalated/{need.incident_id}/{need.slot}")
        ]

    async def _claim(self, uow: UnitOfWork[DispatcherBatch], need: Need) -> ClaimedUnit | None:
        lat, lon = scene_of(need, fallback=self.fallback_point)
        unit_type = need.wanted.unit_type.value
        await uow.state.fleet.lock(uow.conn, unit_type=unit_type)
        return await repository.claim_unit(
            uow.conn,
            incident_id=need.incident_id,
            unit_type=unit_type,
            capability=need.wanted.capability,
            lat=lat,
            lon=lon,
            at=uow.now,
        )

    async def _order(
        self, uow: UnitOfWork[DispatcherBatch], need: Need, unit: ClaimedUnit, *, cause: Event
    ) -> Outgoing:
        decided = dispatch(
            need,
            unit_id=unit.unit_id,
            unit_type=UnitType(unit.unit_type),
            unit_at=(unit.lat, unit.lon),
            run_cards=self.run_cards,
            fallback=self.fallback_point,
            ack_timeout=self.ack_timeouts[need.priority],
            cause_id=cause.id,
            now=uow.now,
        )
        await repository.record_dispatch(uow.conn, order=decided)
        return Outgoing.of(
            new_event(
                decided.order,
                id=decided.order.dispatch_id,
                source=SOURCE,
                correlationid=cause.envelope.correlationid,
                causationid=cause.id,
            ),
            self.topics,
        )

    async def _withdraw(
        self,
        uow: UnitOfWork[DispatcherBatch],
        order: Order,
        *,
        reason: str,
        unit_after: UnitStatus,
        cause: Event | None,
    ) -> list[Outgoing]:
        now = uow.now
        await repository.end_order(uow.conn, dispatch_id=order.dispatch_id, reason=reason, at=now)
        await repository.release_unit(
            uow.conn,
            unit_id=order.unit_id,
            incident_id=order.incident_id,
            status=unit_after.value,
            at=now,
        )
        await repository.pass_over(uow.conn, incident_id=order.incident_id, unit_id=order.unit_id)
        cancelled = withdrawal(
            dispatch_id=order.dispatch_id,
            incident_id=order.incident_id,
            unit_id=order.unit_id,
            reason=reason,
            unit_after=unit_after,
            now=now,
        )
        out = [self._emit(cancelled, cause=cause, role=f"cancelled/{order.dispatch_id}")]
        if unit_after is UnitStatus.AVAILABLE:
            out += await self._serve_waiting(uow, unit_type=order.unit_type, cause=out[0].event)
        return out

    async def _serve_waiting(
        self, uow: UnitOfWork[DispatcherBatch], *, unit_type: str, cause: Event
    ) -> list[Outgoing]:
        """Free units of a type go to the waiting slots, most urgent and oldest first."""
        out: list[Outgoing] = []
        skip = 0
        while (
            waiting := await repository.next_pending(uow.conn, unit_type=unit_type, skip=skip)
        ) is not None:
            need = waiting.need
            unit = await self._claim(uow, need)
            if unit is None:
                # Nothing free for this slot (the free unit may have been passed over for
                # this incident): try the next waiting slot, until one is served or none is.
                skip += 1
            else:
                await repository.remove_pending(
                    uow.conn, incident_id=need.incident_id, slot=need.slot
                )
                out.append(await self._order(uow, need, unit, cause=cause))
            # Asked after a served slot too: usually that was the one free unit, and asking
            # is cheaper than locking the next waiting slot and failing to claim for it (in
            # a busy hour, a quarter of the database's time went to that look-up).
            if not await repository.any_unit_free(uow.conn, unit_type=unit_type):
                break
        return out

    async def _active_order(
        self, uow: UnitOfWork[DispatcherBatch], incident_id: UUID, unit_id: str
    ) -> Order:
        orders = await repository.active_orders(uow.conn, incident_id=incident_id, unit_id=unit_id)
        if not orders:
            raise Rejected(
                "no_such_order", f"unit {unit_id} has no open order on incident {incident_id}"
            )
        return orders[0]

    async def _open_work_order(
        self, uow: UnitOfWork[DispatcherBatch], incident_id: UUID
    ) -> WorkOrder:
        order = await repository.work_order_of(uow.conn, incident_id=incident_id)
        if order is None:
            raise Rejected("no_such_work_order", f"incident {incident_id} has no work order")
        if order.closed_at is not None:
            raise Rejected("work_order_closed", f"work order of {incident_id} is closed")
        return order

    async def _work_order(
        self,
        uow: UnitOfWork[DispatcherBatch],
        incident: IncidentClassifiedV1 | TriageReviewedV1,
        *,
        summary: str,
        cause: Event,
    ) -> Sequence[Outgoing]:
        order = work_order(incident, summary=summary, due_after=self.work_order_due, now=uow.now)
        if not await repository.issue_work_order(uow.conn, order=order):
            return []
        return [
            Outgoing.of(
                new_event(
                    order,
                    id=order.work_order_id,
                    source=SOURCE,
                    correlationid=cause.envelope.correlationid,
                    causationid=cause.id,
                ),
                self.topics,
            )
        ]

    def _emit(self, payload: Contract, *, cause: Event | None, role: str) -> Outgoing:
        """An event whose id follows from its cause (or, for timers, from what fired)."""
        return Outgoing.of(
            new_event(
                payload,
                id=derive_id(cause.id if cause else "timer", role),
                source=SOURCE,
                correlationid=cause.envelope.correlationid if cause else None,
                causationid=cause.id if cause else None,
            ),
            self.topics,
        )
