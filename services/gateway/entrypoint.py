"""The gateway's consumer: which incident each intake it accepted joined (for the channels'
answers and the Open311 look-ups)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from schemas.envelope import Event
from schemas.events import CallLinkedV1, IncidentOpenedV1
from services.common.outbox import Outgoing
from services.common.processing import Handler
from services.common.uow import UnitOfWork


async def note_incident(conn: asyncpg.Connection, *, intake_id: UUID, incident_id: UUID) -> None:
    """Remember the incident an accepted intake joined (intakes from elsewhere are not ours)."""
    await conn.execute(
        "UPDATE intakes SET incident_id = $2 WHERE intake_id = $1", intake_id, incident_id
    )


class GatewayConsumer:
    """Handlers of the incident events the gateway follows."""

    async def incident_opened(
        self, uow: UnitOfWork[Any], event: Event[IncidentOpenedV1]
    ) -> Sequence[Outgoing]:
        """An intake opened an incident."""
        p = event.payload
        await note_incident(uow.conn, intake_id=p.intake_id, incident_id=p.incident_id)
        return ()

    async def call_linked(
        self, uow: UnitOfWork[Any], event: Event[CallLinkedV1]
    ) -> Sequence[Outgoing]:
        """An intake joined an incident already open."""
        p = event.payload
        await note_incident(uow.conn, intake_id=p.intake_id, incident_id=p.incident_id)
        return ()

    def handlers(self) -> list[Handler]:
        """Every handler, matched to the declaration by signature."""
        return [self.incident_opened, self.call_linked]
