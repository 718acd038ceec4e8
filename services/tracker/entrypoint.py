"""Tracker handlers: every fact about an incident moves its lifecycle, or is refused."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from schemas.envelope import Event, new_event
from schemas.events import (
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentOpenedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    UnitDispatchedV1,
    UnitStatusReportedV1,
)
from schemas.ids import derive_id
from schemas.topics import Topics
from schemas.vocabulary import IncidentStatus, UnitStatus
from services.common.outbox import Outgoing
from services.common.processing import Rejected
from services.tracker import repository
from services.tracker.lifecycle import (
    ON_OR_PAST_SCENE,
    UNIT_CLEARED,
    UNIT_PROGRESS,
    IllegalTransition,
    advance,
)

SOURCE = "/siaga/tracker"

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
class Tracker:
    """Applies incident, dispatch and unit events to the lifecycle state machine."""

    topics: Topics

    async def on_incident_opened(
        self, conn: asyncpg.Connection, event: Event
    ) -> Sequence[Outgoing]:
        """An incident starts as received, at the time its call came in."""
        opened = event.payload
        assert isinstance(opened, IncidentOpenedV1)
        return await self._step(
            conn,
            opened.incident_id,
            IncidentStatus.RECEIVED,
            opened.received_at,
            "call received",
            event,
        )

    async def on_incident_classified(
        self, conn: asyncpg.Connection, event: Event
    ) -> Sequence[Outgoing]:
        """Triage has decided what it is."""
        classified = event.payload
        assert isinstance(classified, IncidentClassifiedV1)
        reason = f"{classified.category.value} {classified.priority.value}"
        return await self._step(
            conn,
            classified.incident_id,
            IncidentStatus.CLASSIFIED,
            classified.classified_at,
            reason,
            event,
        )

    async def on_unit_dispatched(
        self, conn: asyncpg.Connection, event: Event
    ) -> Sequence[Outgoing]:
        """A unit has its order."""
        order = event.payload
        assert isinstance(order, UnitDispatchedV1)
        await repository.assign(
            conn,
            incident_id=order.incident_id,
            unit_id=order.unit_id,
            at=order.dispatched_at,
        )
        return await self._step(
            conn,
            order.incident_id,
            IncidentStatus.DISPATCHED,
            order.dispatched_at,
            f"{order.unit_id} dispatched",
            event,
            unit_id=order.unit_id,
        )

    async def on_dispatch_cancelled(
        self, conn: asyncpg.Connection, event: Event
    ) -> Sequence[Outgoing]:
        """An order was withdrawn: the unit no longer counts for the incident."""
        cancelled = event.payload
        assert isinstance(cancelled, DispatchCancelledV1)
        await repository.end_assignment(
            conn, incident_id=cancelled.incident_id, unit_id=cancelled.unit_id
        )
        return []

    async def on_unit_status(self, conn: asyncpg.Connection, event: Event) -> Sequence[Outgoing]:
        """A unit's progress moves its incident; the last unit to clear resolves it."""
        report = event.payload
        assert isinstance(report, UnitStatusReportedV1)
        assignment = await repository.active_assignment(
            conn, unit_id=report.unit_id, incident_id=report.incident_id
        )
        progress = UNIT_PROGRESS.get(report.status)
        if assignment is None and progress is not None and report.incident_id is not None:
            # The unit names its incident and its order is still on the way to us.
            await repository.assign(
                conn, incident_id=report.incident_id, unit_id=report.unit_id, at=report.reported_at
            )
            assignment = {"incident_id": report.incident_id, "unit_id": report.unit_id}
        if assignment is None:
            if progress is not None:
                raise Rejected(
                    "illegal_transition",
                    f"unit {report.unit_id} reported {report.status.value} without an open order"
                    + (f" on incident {report.incident_id}" if report.incident_id else ""),
                )
            if report.status is UnitStatus.AVAILABLE:
                # back in service after `returning` closed the order: the eTimes still want it
                last = await repository.last_assignment(
                    conn, unit_id=report.unit_id, incident_id=report.incident_id
                )
                if last is not None:
                    await repository.stamp(
                        conn, incident_id=last, column="back_in_service_at", at=report.reported_at
                    )
            return []  # nothing else to do with any incident
        incident_id: UUID = assignment["incident_id"]
        if progress is not None:
            if report.status in ON_OR_PAST_SCENE:
                await repository.mark_reached_scene(
                    conn, incident_id=incident_id, unit_id=report.unit_id
                )
            return await self._step(
                conn,
                incident_id,
                progress,
                report.reported_at,
                f"{report.unit_id} {report.status.value}",
                event,
                unit_id=report.unit_id,
            )
        if report.status in UNIT_CLEARED or report.status is UnitStatus.OUT_OF_SERVICE:
            await repository.end_assignment(conn, incident_id=incident_id, unit_id=report.unit_id)
            if report.status is UnitStatus.AVAILABLE:
                await repository.stamp(
                    conn,
                    incident_id=incident_id,
                    column="back_in_service_at",
                    at=report.reported_at,
                )
            open_orders, served = await repository.incident_progress(conn, incident_id=incident_id)
            if open_orders == 0 and served:
                return await self._resolve(conn, incident_id, report.reported_at, served, event)
        return []

    async def _resolve(
        self,
        conn: asyncpg.Connection,
        incident_id: UUID,
        at: datetime,
        units: list[str],
        cause: Event,
    ) -> Sequence[Outgoing]:
        out = list(
            await self._step(
                conn, incident_id, IncidentStatus.RESOLVED, at, "all units cleared", cause
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
        conn: asyncpg.Connection,
        incident_id: UUID,
        proposed: IncidentStatus,
        at: datetime,
        reason: str,
        cause: Event,
        *,
        unit_id: str | None = None,
    ) -> Sequence[Outgoing]:
        current = await repository.status_of(conn, incident_id=incident_id)
        try:
            new = advance(current, proposed)
        except IllegalTransition as exc:
            raise Rejected("illegal_transition", f"incident {incident_id}: {exc}") from None
        await repository.record_step(
            conn,
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
