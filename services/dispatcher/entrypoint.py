"""Dispatcher handlers: classified incidents get units or work orders; units report back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from schemas.common import Place
from schemas.envelope import Event, new_event
from schemas.events import (
    IncidentClassifiedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    UnitDispatchedV1,
    UnitRegisteredV1,
    UnitStatusReportedV1,
    WorkOrderIssuedV1,
)
from schemas.ids import derive_id
from schemas.topics import Topics
from schemas.vocabulary import Category, IncidentStatus, Priority, UnitStatus, UnitType
from services.common.geo import haversine_km
from services.common.logging import get_logger
from services.common.outbox import Outgoing
from services.dispatcher import repository
from services.dispatcher.runcards import run_card, travel

SOURCE = "/siaga/dispatcher"
FINISHED = frozenset(
    {
        IncidentStatus.RESOLVED,
        IncidentStatus.CLOSED,
        IncidentStatus.CANCELLED,
        IncidentStatus.MERGED,
    }
)
log = get_logger("dispatcher")
NO_WORK_ORDER = frozenset({Category.PRANK, Category.GHOST})


@dataclass
class Dispatcher:
    """Claims the nearest free units for emergencies; queues complaints with agencies."""

    topics: Topics
    fallback_point: tuple[float, float]
    work_order_due: timedelta

    async def on_incident_classified(
        self, conn: asyncpg.Connection, event: Event
    ) -> Sequence[Outgoing]:
        """Send the run card's units, or issue a work order for a non-emergency report."""
        incident = event.payload
        assert isinstance(incident, IncidentClassifiedV1)
        if incident.needs_review:
            return []  # a human triages first; nothing is guessed
        card = run_card(incident.category, incident.priority)
        if card:
            out = []
            for slot, unit_type in enumerate(card):
                order = await self._dispatch(
                    conn,
                    incident_id=incident.incident_id,
                    slot=slot,
                    unit_type=unit_type,
                    category=incident.category,
                    priority=incident.priority,
                    place=incident.place,
                    cause=event,
                )
                if order is not None:
                    out.append(order)
            return out
        if incident.category in NO_WORK_ORDER:
            return []
        return await self._work_order(conn, incident, event)

    async def on_unit_registered(
        self, conn: asyncpg.Connection, event: Event
    ) -> Sequence[Outgoing]:
        """A unit joins the fleet (or changes details) and may serve a waiting incident."""
        unit = event.payload
        assert isinstance(unit, UnitRegisteredV1)
        await repository.register_unit(conn, unit=unit)
        return await self._serve_pending(conn, unit_type=unit.unit_type.value, cause=event)

    async def on_unit_status(self, conn: asyncpg.Connection, event: Event) -> Sequence[Outgoing]:
        """Track the unit; when it frees up, give it to the most urgent waiting incident."""
        report = event.payload
        assert isinstance(report, UnitStatusReportedV1)
        unit_type = await repository.unit_type_of(conn, unit_id=report.unit_id)
        if unit_type is None:
            log.warning("report from a unit not in the fleet", unit_id=report.unit_id)
            return []
        await repository.lock_unit_type(conn, unit_type=unit_type)
        applied = await repository.update_unit_status(
            conn,
            unit_id=report.unit_id,
            status=report.status.value,
            incident_id=report.incident_id,
            at=report.reported_at,
            lat=report.location.lat if report.location else None,
            lon=report.location.lon if report.location else None,
        )
        if not applied:
            log.warning(
                "unit stays on its order: the report does not name that incident",
                unit_id=report.unit_id,
                status=report.status.value,
                named_incident=str(report.incident_id),
            )
            return []
        if report.status is not UnitStatus.AVAILABLE:
            return []
        return await self._serve_pending(conn, unit_type=unit_type, cause=event)

    async def on_incident_finished(
        self, conn: asyncpg.Connection, event: Event
    ) -> Sequence[Outgoing]:
        """A resolved, closed, cancelled or merged incident stops waiting for units."""
        payload = event.payload
        if isinstance(payload, IncidentStatusChangedV1) and payload.to_status not in FINISHED:
            return []
        assert isinstance(payload, IncidentStatusChangedV1 | IncidentResolvedV1)
        await repository.withdraw_pending(conn, incident_id=payload.incident_id)
        return []

    async def _dispatch(
        self,
        conn: asyncpg.Connection,
        *,
        incident_id: UUID,
        slot: int,
        unit_type: UnitType,
        category: Category,
        priority: Priority,
        place: Place | None,
        cause: Event,
    ) -> Outgoing | None:
        lat, lon = (place.lat, place.lon) if place else self.fallback_point
        now = datetime.now(UTC)
        await repository.lock_unit_type(conn, unit_type=unit_type.value)
        unit = await repository.claim_unit(
            conn, incident_id=incident_id, unit_type=unit_type.value, lat=lat, lon=lon, at=now
        )
        if unit is None:
            await repository.queue_pending(
                conn,
                incident_id=incident_id,
                slot=slot,
                unit_type=unit_type.value,
                priority=priority.value,
                category=category.value,
                place=place,
                at=now,
            )
            return None
        distance_km, eta = travel(haversine_km(unit.lat, unit.lon, lat, lon), unit_type, priority)
        dispatch_id = derive_id(cause.id, f"dispatch/{incident_id}/{slot}")
        await repository.record_dispatch(
            conn, dispatch_id=dispatch_id, incident_id=incident_id, unit_id=unit.unit_id, at=now
        )
        order = UnitDispatchedV1(
            dispatch_id=dispatch_id,
            incident_id=incident_id,
            unit_id=unit.unit_id,
            unit_type=unit_type,
            category=category,
            priority=priority,
            place=place,
            distance_km=distance_km,
            eta_seconds=eta,
            dispatched_at=now,
        )
        return Outgoing.of(
            new_event(
                order,
                id=dispatch_id,
                source=SOURCE,
                correlationid=cause.envelope.correlationid,
                causationid=cause.id,
            ),
            self.topics,
        )

    async def _serve_pending(
        self, conn: asyncpg.Connection, *, unit_type: str, cause: Event
    ) -> Sequence[Outgoing]:
        out: list[Outgoing] = []
        while (waiting := await repository.next_pending(conn, unit_type=unit_type)) is not None:
            order = await self._dispatch(
                conn,
                incident_id=waiting["incident_id"],
                slot=waiting["slot"],
                unit_type=UnitType(waiting["unit_type"]),
                category=Category(waiting["category"]),
                priority=Priority(waiting["priority"]),
                place=waiting["place"],
                cause=cause,
            )
            if order is None:
                break  # still nothing free; the slot stays queued
            await repository.remove_pending(
                conn, incident_id=waiting["incident_id"], slot=waiting["slot"]
            )
            out.append(order)
        return out

    async def _work_order(
        self, conn: asyncpg.Connection, incident: IncidentClassifiedV1, cause: Event
    ) -> Sequence[Outgoing]:
        now = datetime.now(UTC)
        work_order_id = derive_id(incident.incident_id, "work_order")
        due = incident.received_at + self.work_order_due
        created = await repository.issue_work_order(
            conn,
            work_order_id=work_order_id,
            incident_id=incident.incident_id,
            agency=incident.agency,
            at=now,
            due_at=due,
        )
        if not created:
            return []
        order = WorkOrderIssuedV1(
            work_order_id=work_order_id,
            incident_id=incident.incident_id,
            agency=incident.agency,
            category=incident.category,
            priority=incident.priority,
            summary=incident.text or incident.explanation,
            issued_at=now,
            due_at=due,
        )
        return [
            Outgoing.of(
                new_event(
                    order,
                    id=work_order_id,
                    source=SOURCE,
                    correlationid=cause.envelope.correlationid,
                    causationid=cause.id,
                ),
                self.topics,
            )
        ]
