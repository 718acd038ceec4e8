"""The gateway's consumer: which incident each intake it accepted joined (for the channels'
answers and the Open311 look-ups), and the agencies' answers and closures, queued as
replies to the citizens whose channel intakes joined that incident."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from schemas.envelope import Event
from schemas.events import CallLinkedV1, IncidentOpenedV1, WorkOrderAnsweredV1, WorkOrderClosedV1
from schemas.ids import derive_id
from services.common.outbox import Outgoing
from services.common.processing import Handler
from services.common.uow import UnitOfWork
from services.gateway.conversations import Notice, queue_earlier_notices, record_notice
from services.gateway.replies import Kind


async def note_incident(
    conn: asyncpg.Connection, *, intake_id: UUID, incident_id: UUID, now: datetime
) -> None:
    """Remember the incident an accepted intake joined (intakes from elsewhere are not
    ours), and tell its citizen what the agency already said of that incident, if anything."""
    ours = await conn.fetchval(
        "UPDATE intakes SET incident_id = $2 WHERE intake_id = $1 RETURNING true",
        intake_id,
        incident_id,
    )
    if ours:
        await queue_earlier_notices(conn, intake_id=intake_id, incident_id=incident_id, now=now)


class OurIntakes:
    """The gateway's state for one batch: which of the intakes its incident events name
    came in here, read in one statement, so that the many that came another way (call-
    takers, Kafka clients) cost the gateway no statement each, nor an inbox row."""

    def __init__(self) -> None:
        self._ours: set[UUID] | None = None  # None: not read, every intake may be ours

    async def screen(self, conn: asyncpg.Connection, events: Sequence[Event]) -> set[str]:
        """The batch's events that concern the gateway: those of intakes it accepted (its
        row is written before the intake is sent, so one not here never will be), and
        every work-order event."""
        await self.prepare(conn, events)
        return {
            e.id
            for e in events
            if not isinstance(e.payload, IncidentOpenedV1 | CallLinkedV1)
            or self.may_be_ours(e.payload.intake_id)
        }

    async def prepare(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Read which of the batch's intakes the gateway accepted (once a transaction)."""
        if self._ours is not None:
            return
        named = [
            e.payload.intake_id
            for e in events
            if isinstance(e.payload, IncidentOpenedV1 | CallLinkedV1)
        ]
        rows = (
            await conn.fetch(
                "SELECT intake_id FROM intakes WHERE intake_id = ANY($1::uuid[])", named
            )
            if named
            else []
        )
        self._ours = {row["intake_id"] for row in rows}

    def may_be_ours(self, intake_id: UUID) -> bool:
        """Whether the intake may have come in here (always, before `prepare`)."""
        return self._ours is None or intake_id in self._ours

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Nothing is collected: the handlers write at once."""


class GatewayConsumer:
    """Handlers of the incident and work-order events the gateway follows."""

    async def incident_opened(
        self, uow: UnitOfWork[OurIntakes], event: Event[IncidentOpenedV1]
    ) -> Sequence[Outgoing]:
        """An intake opened an incident."""
        p = event.payload
        if uow.state.may_be_ours(p.intake_id):
            await note_incident(
                uow.conn, intake_id=p.intake_id, incident_id=p.incident_id, now=uow.now
            )
        return ()

    async def call_linked(
        self, uow: UnitOfWork[OurIntakes], event: Event[CallLinkedV1]
    ) -> Sequence[Outgoing]:
        """An intake joined an incident already open."""
        p = event.payload
        if uow.state.may_be_ours(p.intake_id):
            await note_incident(
                uow.conn, intake_id=p.intake_id, incident_id=p.incident_id, now=uow.now
            )
        return ()

    async def work_order_answered(
        self, uow: UnitOfWork[Any], event: Event[WorkOrderAnsweredV1]
    ) -> Sequence[Outgoing]:
        """The agency answered: its response goes to each citizen of the incident."""
        p = event.payload
        notice = Notice(
            notice_id=derive_id(event.id, "notice"),
            incident_id=p.incident_id,
            kind=Kind.ANSWER,
            agency=p.agency,
            text=p.response,
            noticed_at=p.answered_at,
        )
        await record_notice(uow.conn, notice, now=uow.now)
        return ()

    async def work_order_closed(
        self, uow: UnitOfWork[Any], event: Event[WorkOrderClosedV1]
    ) -> Sequence[Outgoing]:
        """The agency closed the work order: how, to each citizen of the incident."""
        p = event.payload
        notice = Notice(
            notice_id=derive_id(event.id, "notice"),
            incident_id=p.incident_id,
            kind=Kind.CLOSURE,
            agency=p.agency,
            text=p.resolution,
            noticed_at=p.closed_at,
        )
        await record_notice(uow.conn, notice, now=uow.now)
        return ()

    def handlers(self) -> list[Handler]:
        """Every handler, matched to the declaration by signature."""
        return [
            self.incident_opened,
            self.call_linked,
            self.work_order_answered,
            self.work_order_closed,
        ]
