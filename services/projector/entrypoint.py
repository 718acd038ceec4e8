"""Projector handlers: every event becomes rows of the read model."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from schemas.cap import CapAlert
from schemas.envelope import Event
from schemas.events import (
    AlertIssuedV1,
    CallLinkedV1,
    DeadLetterRedrivenV1,
    DeadLetterV1,
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentEscalatedV1,
    IncidentOpenedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    IntakeEnrichedV1,
    IntakeReceivedV1,
    SlaBreachedV1,
    TriageReviewedV1,
    UnitDispatchedV1,
    UnitMovedV1,
    UnitRegisteredV1,
    UnitStatusChangedV1,
    WorkOrderAnsweredV1,
    WorkOrderClosedV1,
    WorkOrderEscalatedV1,
    WorkOrderIssuedV1,
    WorkOrderReminderSentV1,
)
from services.common.alerting import AlertPolicy, load_alert_policy
from services.common.datapack import resolve_pack
from services.common.deadletter import redrive_of
from services.common.logging import mask_phone
from services.common.outbox import Outgoing
from services.common.processing import Handler
from services.common.readable import eta_minutes
from services.common.uow import UnitOfWork
from services.projector import repository as rm
from services.projector.alerts import Triaged, on_status, on_triage
from services.projector.board import UnitChange
from services.projector.repository import BoardChange, ReadModelWrites

NOTHING: Sequence[Outgoing] = ()


def _preview(value_b64: str, limit: int = 160) -> str:
    raw = base64.b64decode(value_b64)[:limit]
    text = raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return " ".join(text.split())


def _builtin_policy() -> AlertPolicy:
    return load_alert_policy(resolve_pack(None))


@dataclass
class Projector:
    """Keeps the read model; produces no events. Handlers collect their writes in the unit
    of work's `ReadModelWrites`, which the batch processor flushes once per batch. The
    public alerts of disaster incidents follow `policy` (the data pack's `alerts.toml`)."""

    policy: AlertPolicy = field(default_factory=_builtin_policy)

    @staticmethod
    def _alert(
        writes: ReadModelWrites,
        incident_id: UUID,
        derive: Callable[[CapAlert | None], CapAlert | None],
    ) -> None:
        """The incident's next alert, if its latest one and this event call for one."""
        alert = derive(writes.alerts.last(incident_id))
        if alert is not None:
            writes.alerts.follow(writes.upserts, incident_id, alert)

    @staticmethod
    def _timeline(writes: ReadModelWrites, event: Event, incident_id: UUID, summary: str) -> None:
        rm.add_timeline(
            writes.upserts,
            event_id=event.id,
            incident_id=incident_id,
            at=event.envelope.time,
            event_type=event.envelope.type,
            summary=summary,
        )

    async def intake_received(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[IntakeReceivedV1]
    ) -> Sequence[Outgoing]:
        """An intake as received."""
        p = event.payload
        rm.upsert_intake(
            uow.state.upserts,
            intake_id=p.intake_id,
            channel=p.channel.value,
            received_at=p.received_at,
            caller_phone=mask_phone(p.caller.phone) if p.caller.phone else None,
            text=p.text,
            place_hint=p.place_hint,
            operator_id=p.operator_id,
        )
        return NOTHING

    async def intake_enriched(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[IntakeEnrichedV1]
    ) -> Sequence[Outgoing]:
        """Where the intake is, and what is known of its caller."""
        p = event.payload
        rm.upsert_intake(
            uow.state.upserts,
            intake_id=p.intake.intake_id,
            channel=p.intake.channel.value,
            received_at=p.intake.received_at,
            kecamatan=p.place.kecamatan if p.place else None,
            desa=p.place.desa if p.place else None,
            place_confidence=p.place.confidence if p.place else None,
            repeat_caller=p.signals.repeat_caller,
            prank_flagged=p.signals.prank_flagged,
            enriched_at=p.enriched_at,
        )
        return NOTHING

    async def incident_opened(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[IncidentOpenedV1]
    ) -> Sequence[Outgoing]:
        """A new incident and its first intake."""
        p = event.payload
        rm.upsert_incident(
            uow.state.upserts,
            incident_id=p.incident_id,
            channel=p.channel.value,
            text=p.text,
            received_at=p.received_at,
            opened_at=p.opened_at,
        )
        rm.place_incident(uow.state.upserts, incident_id=p.incident_id, place=p.place)
        rm.upsert_intake(uow.state.upserts, intake_id=p.intake_id, incident_id=p.incident_id)
        self._timeline(uow.state, event, p.incident_id, f"opened from {p.channel.value} intake")
        return NOTHING

    async def call_linked(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[CallLinkedV1]
    ) -> Sequence[Outgoing]:
        """Another call about the same incident."""
        p = event.payload
        rm.upsert_intake(uow.state.upserts, intake_id=p.intake_id, incident_id=p.incident_id)
        self._timeline(uow.state, event, p.incident_id, f"call linked ({p.reason})")
        return NOTHING

    async def incident_classified(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[IncidentClassifiedV1]
    ) -> Sequence[Outgoing]:
        """Category, priority, agency and confidence."""
        p = event.payload
        rm.classify_incident(
            uow.state.upserts,
            incident_id=p.incident_id,
            category=p.category.value,
            priority=p.priority.value,
            agency=p.agency,
            needs_review=p.needs_review,
            needs_confirmation=p.needs_confirmation,
            questions=p.questions,
            life_threat=p.life_threat,
            confidence=p.confidence,
            explanation=p.explanation,
            sla_seconds=p.sla_seconds,
            channel=p.channel.value,
            text=p.text,
            received_at=p.received_at,
            classified_at=p.classified_at,
        )
        rm.place_incident(uow.state.upserts, incident_id=p.incident_id, place=p.place)
        review = " (needs human triage)" if p.needs_review else ""
        if p.needs_confirmation:
            review = " (to confirm: " + " / ".join(p.questions[:2]) + ")"
        self._timeline(
            uow.state,
            event,
            p.incident_id,
            f"classified {p.category.value} {p.priority.value} -> {p.agency}{review}",
        )
        decided = Triaged(
            incident_id=p.incident_id,
            category=p.category,
            priority=p.priority,
            agency=p.agency,
            confirmed=not (p.needs_review or p.needs_confirmation),
            held=p.needs_review,
            channel=p.channel.value,
            place=p.place,
            at=p.classified_at,
        )
        self._alert(
            uow.state,
            p.incident_id,
            lambda latest: on_triage(
                latest, decided, cause=event.id, policy=self.policy, text=p.text
            ),
        )
        return NOTHING

    async def triage_reviewed(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[TriageReviewedV1]
    ) -> Sequence[Outgoing]:
        """A call-taker's decision on triage replaces it and ends its review."""
        p = event.payload
        rm.review_incident(
            uow.state.upserts,
            incident_id=p.incident_id,
            category=p.category.value,
            priority=p.priority.value,
            agency=p.agency,
            sla_seconds=p.sla_seconds,
            decision=p.decision,
            note=p.note,
            reviewed_by=p.reviewed_by,
            reviewed_at=p.reviewed_at,
        )
        change = (
            ""
            if p.decision == "confirmed"
            else f": {p.previous_category.value} {p.previous_priority.value} -> "
            f"{p.category.value} {p.priority.value}"
        )
        note = f" ({p.note})" if p.note else ""
        self._timeline(
            uow.state, event, p.incident_id, f"triage {p.decision} by {p.reviewed_by}{change}{note}"
        )
        decided = Triaged(
            incident_id=p.incident_id,
            category=p.category,
            priority=p.priority,
            agency=p.agency,
            confirmed=True,
            channel=p.channel.value,
            place=p.place,
            at=p.reviewed_at,
        )
        self._alert(
            uow.state,
            p.incident_id,
            lambda latest: on_triage(
                latest, decided, cause=event.id, policy=self.policy, text=p.text
            ),
        )
        return NOTHING

    async def status_changed(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[IncidentStatusChangedV1]
    ) -> Sequence[Outgoing]:
        """The tracker's lifecycle step."""
        p = event.payload
        rm.set_incident_status(
            uow.state.upserts,
            incident_id=p.incident_id,
            status=p.to_status.value,
            at=p.changed_at,
        )
        self._timeline(uow.state, event, p.incident_id, f"status {p.to_status.value}: {p.reason}")
        self._alert(
            uow.state,
            p.incident_id,
            lambda latest: on_status(
                latest, p.to_status, at=p.changed_at, cause=event.id, policy=self.policy
            ),
        )
        return NOTHING

    async def incident_resolved(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[IncidentResolvedV1]
    ) -> Sequence[Outgoing]:
        """All units cleared."""
        p = event.payload
        rm.upsert_incident(uow.state.upserts, incident_id=p.incident_id, resolved_at=p.resolved_at)
        self._timeline(uow.state, event, p.incident_id, f"resolved by {', '.join(p.units)}")
        return NOTHING

    async def unit_dispatched(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[UnitDispatchedV1]
    ) -> Sequence[Outgoing]:
        """A unit goes to an incident."""
        p = event.payload
        rm.unit_on_incident(
            uow.state.upserts,
            incident_id=p.incident_id,
            unit_id=p.unit_id,
            status="dispatched",
            at=p.dispatched_at,
            unit_type=p.unit_type.value,
            dispatch_id=p.dispatch_id,
            eta_seconds=p.eta_seconds,
        )
        uow.state.board.append(
            BoardChange(
                p.unit_id,
                UnitChange("dispatched", p.dispatched_at, p.incident_id),
                event.id,
                unit_type=p.unit_type.value,
            )
        )
        rm.first_dispatch(uow.state.upserts, incident_id=p.incident_id, at=p.dispatched_at)
        # The monitor's and the log's rounding, so `incident show` says what they say.
        eta = f", ETA {eta_minutes(p.eta_seconds)} min" if p.eta_seconds is not None else ""
        self._timeline(uow.state, event, p.incident_id, f"{p.unit_id} dispatched{eta}")
        return NOTHING

    async def dispatch_cancelled(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[DispatchCancelledV1]
    ) -> Sequence[Outgoing]:
        """An order withdrawn: the unit is released from the incident."""
        p = event.payload
        rm.unit_on_incident(
            uow.state.upserts,
            incident_id=p.incident_id,
            unit_id=p.unit_id,
            status="cancelled",
            at=p.cancelled_at,
        )
        uow.state.board.append(
            BoardChange(
                p.unit_id,
                UnitChange(p.unit_status_after.value, p.cancelled_at, p.incident_id),
                event.id,
            )
        )
        self._timeline(uow.state, event, p.incident_id, f"{p.unit_id} cancelled: {p.reason}")
        return NOTHING

    async def work_order_issued(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[WorkOrderIssuedV1]
    ) -> Sequence[Outgoing]:
        """A complaint in an agency's queue."""
        p = event.payload
        rm.add_work_order(
            uow.state.upserts,
            work_order_id=p.work_order_id,
            incident_id=p.incident_id,
            agency=p.agency,
            category=p.category.value,
            priority=p.priority.value,
            summary=p.summary,
            issued_at=p.issued_at,
            due_at=p.due_at,
        )
        self._timeline(
            uow.state,
            event,
            p.incident_id,
            f"work order to {p.agency}, due {p.due_at:%Y-%m-%d %H:%M}",
        )
        return NOTHING

    async def unit_registered(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[UnitRegisteredV1]
    ) -> Sequence[Outgoing]:
        """A unit on the board."""
        p = event.payload
        rm.unit_registered(
            uow.state.upserts,
            unit_id=p.unit_id,
            unit_type=p.unit_type.value,
            agency=p.agency,
            base=p.base,
            lat=p.location.lat,
            lon=p.location.lon,
            at=p.registered_at,
        )
        return NOTHING

    async def unit_status(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[UnitStatusChangedV1]
    ) -> Sequence[Outgoing]:
        """A unit's report as the dispatcher accepted it: on the board, and on its incident."""
        p = event.payload
        uow.state.board.append(
            BoardChange(
                p.unit_id, UnitChange(p.status.value, p.reported_at, p.incident_id), event.id
            )
        )
        if p.location is not None:
            rm.move_unit(
                uow.state.upserts,
                unit_id=p.unit_id,
                lat=p.location.lat,
                lon=p.location.lon,
                base=None,
                at=p.reported_at,
            )
        if p.incident_id is not None:
            rm.unit_on_incident(
                uow.state.upserts,
                incident_id=p.incident_id,
                unit_id=p.unit_id,
                status=p.status.value,
                at=p.reported_at,
            )
            self._timeline(uow.state, event, p.incident_id, f"{p.unit_id} {p.status.value}")
        return NOTHING

    async def incident_escalated(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[IncidentEscalatedV1]
    ) -> Sequence[Outgoing]:
        """The incident waits for a unit."""
        p = event.payload
        rm.escalate_incident(uow.state.upserts, incident_id=p.incident_id, at=p.escalated_at)
        self._timeline(uow.state, event, p.incident_id, f"ESCALATED: {p.reason}")
        return NOTHING

    async def sla_breached(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[SlaBreachedV1]
    ) -> Sequence[Outgoing]:
        """A missed target."""
        p = event.payload
        rm.add_sla_breach(
            uow.state.upserts,
            incident_id=p.incident_id,
            target=p.target,
            priority=p.priority.value,
            channel=p.channel.value,
            category=p.category.value,
            received_at=p.received_at,
            due_at=p.due_at,
            breached_at=p.breached_at,
        )
        self._timeline(
            uow.state, event, p.incident_id, f"SLA BREACHED: {p.target} due {p.due_at:%H:%M:%S}"
        )
        return NOTHING

    async def work_order_reminded(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[WorkOrderReminderSentV1]
    ) -> Sequence[Outgoing]:
        """The agency was reminded."""
        p = event.payload
        await rm.work_order_step(
            uow.conn, uow.state, work_order_id=p.work_order_id, at=p.reminded_at, step="reminded"
        )
        self._timeline(uow.state, event, p.incident_id, f"reminder to {p.agency}")
        return NOTHING

    async def work_order_escalated(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[WorkOrderEscalatedV1]
    ) -> Sequence[Outgoing]:
        """The work order is overdue."""
        p = event.payload
        await rm.work_order_step(
            uow.conn, uow.state, work_order_id=p.work_order_id, at=p.escalated_at, step="overdue"
        )
        self._timeline(uow.state, event, p.incident_id, f"OVERDUE at {p.agency}, escalated")
        return NOTHING

    async def work_order_answered(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[WorkOrderAnsweredV1]
    ) -> Sequence[Outgoing]:
        """The agency's first response."""
        p = event.payload
        await rm.work_order_step(
            uow.conn,
            uow.state,
            work_order_id=p.work_order_id,
            at=p.answered_at,
            step="answered",
            answered_by=p.answered_by,
            response=p.response,
        )
        self._timeline(uow.state, event, p.incident_id, f"{p.agency} answered: {p.response[:80]}")
        return NOTHING

    async def work_order_closed(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[WorkOrderClosedV1]
    ) -> Sequence[Outgoing]:
        """The agency finished."""
        p = event.payload
        await rm.work_order_step(
            uow.conn,
            uow.state,
            work_order_id=p.work_order_id,
            at=p.closed_at,
            step="closed",
            resolution=p.resolution,
        )
        self._timeline(uow.state, event, p.incident_id, f"{p.agency} closed: {p.resolution[:80]}")
        return NOTHING

    async def unit_moved(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[UnitMovedV1]
    ) -> Sequence[Outgoing]:
        """A unit's new position."""
        p = event.payload
        rm.move_unit(
            uow.state.upserts,
            unit_id=p.unit_id,
            lat=p.location.lat,
            lon=p.location.lon,
            base=p.base,
            at=p.moved_at,
        )
        return NOTHING

    async def dead_letter(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[DeadLetterV1]
    ) -> Sequence[Outgoing]:
        """A message some stage could not process."""
        p = event.payload
        rm.add_dead_letter(
            uow.state.upserts,
            event_id=event.id,
            stage=p.stage,
            reason=p.reason,
            source_topic=p.source_topic,
            source_partition=p.source_partition,
            source_offset=p.source_offset,
            at=p.dead_lettered_at,
            preview=_preview(p.original_value_b64),
            redrive_of=redrive_of(p),
        )
        return NOTHING

    async def dead_letter_redriven(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[DeadLetterRedrivenV1]
    ) -> Sequence[Outgoing]:
        """An operator sent a dead letter back to its source topic."""
        p = event.payload
        rm.add_redrive(
            uow.state.upserts,
            event_id=event.id,
            dead_letter_id=p.dead_letter_id,
            source_topic=p.source_topic,
            partition=p.partition,
            offset=p.offset,
            redriven_at=p.redriven_at,
            operator=p.operator,
        )
        return NOTHING

    async def alert_issued(
        self, uow: UnitOfWork[ReadModelWrites], event: Event[AlertIssuedV1]
    ) -> Sequence[Outgoing]:
        """A public alert an officer issued, updated or cancelled."""
        p = event.payload
        rm.add_cap_alert(uow.state.upserts, alert=p, origin="issued")
        if p.incident_id is not None:
            self._timeline(
                uow.state, event, p.incident_id, f"CAP {p.msg_type}: {p.headline or p.event}"
            )
        return NOTHING

    def handlers(self) -> list[Handler]:
        """A handler for every event the read model shows (matched by their signatures)."""
        return [
            self.intake_received,
            self.intake_enriched,
            self.incident_opened,
            self.call_linked,
            self.incident_classified,
            self.triage_reviewed,
            self.status_changed,
            self.incident_resolved,
            self.unit_dispatched,
            self.dispatch_cancelled,
            self.work_order_issued,
            self.unit_registered,
            self.unit_status,
            self.dead_letter,
            self.incident_escalated,
            self.sla_breached,
            self.work_order_reminded,
            self.work_order_escalated,
            self.work_order_answered,
            self.work_order_closed,
            self.unit_moved,
            self.dead_letter_redriven,
            self.alert_issued,
        ]
