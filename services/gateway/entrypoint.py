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


class GatewayConsumer:
    """Handlers of the incident and work-order events the gateway follows."""

    async def incident_opened(
        self, uow: UnitOfWork[Any], event: Event[IncidentOpenedV1]
    ) -> Sequence[Outgoing]:
        """An intake opened an incident."""
        p = event.payload
        await note_incident(uow.conn, intake_id=p.intake_id, incident_id=p.incident_id, now=uow.now)
        return ()

    async def call_linked(
        self, uow: UnitOfWork[Any], event: Event[CallLinkedV1]
    ) -> Sequence[Outgoing]:
        """An intake joined an incident already open."""
        p = event.payload
        await note_incident(uow.conn, intake_id=p.intake_id, incident_id=p.incident_id, now=uow.now)
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
