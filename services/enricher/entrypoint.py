"""Enricher handlers: an intake in, the same intake with place and caller signals out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from schemas.envelope import Event, new_event
from schemas.events import IntakeEnrichedV1, IntakeReceivedV1
from schemas.ids import derive_id
from schemas.topics import Topics
from services.common.outbox import Outgoing
from services.enricher.places import PlaceResolver
from services.enricher.repository import CallerHistory, record_report
from services.enricher.signals import caller_signals, is_ghost

SOURCE = "/siaga/enricher"


def intake_key(event: Event) -> str:
    """Inbox key: the sender's intake id, so a resent intake is enriched once."""
    payload = event.payload
    assert isinstance(payload, IntakeReceivedV1)
    return f"intake:{payload.intake_id}"


@dataclass
class Enricher:
    """Turns `IntakeReceived` into `IntakeEnriched`."""

    resolver: PlaceResolver
    topics: Topics
    repeat_window: timedelta
    prank_threshold: int

    async def on_intake_received(
        self, conn: asyncpg.Connection, event: Event
    ) -> Sequence[Outgoing]:
        """Resolve the place, update the caller's history, emit the enriched intake."""
        intake = event.payload
        assert isinstance(intake, IntakeReceivedV1)
        place = self.resolver.resolve(
            text=intake.text, hint=intake.place_hint, location=intake.location
        )
        history = CallerHistory(reports=0, pranks=0, last_report_at=None)
        if intake.caller.phone:
            history = await record_report(
                conn, phone=intake.caller.phone, at=intake.received_at, ghost=is_ghost(intake)
            )
        enriched = IntakeEnrichedV1(
            intake=intake,
            place=place,
            signals=caller_signals(
                intake,
                history,
                repeat_window=self.repeat_window,
                prank_threshold=self.prank_threshold,
            ),
            enriched_at=datetime.now(UTC),
        )
        out = new_event(
            enriched,
            id=derive_id(intake.intake_id, "enriched"),
            source=SOURCE,
            correlationid=str(intake.intake_id),
            causationid=event.id,
        )
        return [Outgoing.of(out, self.topics)]
