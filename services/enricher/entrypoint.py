"""Enricher handlers: an intake in, the same intake with place and caller signals out; triage's
verdicts in, so numbers that keep pranking are flagged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from schemas.envelope import Event, new_event
from schemas.events import (
    IncidentClassifiedV1,
    IncidentOpenedV1,
    IntakeEnrichedV1,
    IntakeReceivedV1,
)
from schemas.ids import derive_id
from schemas.topics import Topics
from schemas.vocabulary import Category
from services.common.logging import get_logger
from services.common.outbox import Outgoing
from services.common.uow import UnitOfWork
from services.enricher.places import PlaceResolver
from services.enricher.repository import CallerHistory, Callers, record_prank
from services.enricher.signals import caller_signals, is_ghost

SOURCE = "/siaga/enricher"
log = get_logger("enricher")
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of ours a sender's clock may be


@dataclass
class Enricher:
    """Turns `IntakeReceived` into `IntakeEnriched`."""

    resolver: PlaceResolver
    topics: Topics
    repeat_window: timedelta
    prank_threshold: int

    async def on_intake_received(
        self, uow: UnitOfWork[Callers], event: Event[IntakeReceivedV1]
    ) -> Sequence[Outgoing]:
        """Resolve the place, update the caller's history, emit the enriched intake."""
        intake = event.payload
        now = uow.now
        claimed = None
        if intake.received_at > now + CLOCK_SKEW:
            # A sender's clock ahead of ours would put the SLA timers out of reach: the
            # call is taken as received now, and the claim kept beside it.
            log.warning("intake from the future", intake_id=str(intake.intake_id))
            claimed, intake = intake.received_at, intake.model_copy(update={"received_at": now})
        place = self.resolver.resolve(
            text=intake.text, hint=intake.place_hint, location=intake.location
        )
        history = CallerHistory(reports=0, pranks=0, last_report_at=None)
        if intake.caller.phone:
            history = await uow.state.record_report(
                uow.conn,
                intake_id=intake.intake_id,
                phone=intake.caller.phone,
                at=intake.received_at,
                ghost=is_ghost(intake),
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
            enriched_at=now,
            received_at_claimed=claimed,
        )
        out = new_event(
            enriched,
            id=derive_id(intake.intake_id, "enriched"),
            source=SOURCE,
            correlationid=str(intake.intake_id),
            causationid=event.id,
        )
        return [Outgoing.of(out, self.topics)]

    async def on_incident_opened(
        self, uow: UnitOfWork[Callers], event: Event[IncidentOpenedV1]
    ) -> Sequence[Outgoing]:
        """Remember which intake opened the incident, to find its caller later."""
        opened = event.payload
        await uow.state.record_opening(
            uow.conn, incident_id=opened.incident_id, intake_id=opened.intake_id
        )
        return []

    async def on_incident_classified(
        self, uow: UnitOfWork[Callers], event: Event[IncidentClassifiedV1]
    ) -> Sequence[Outgoing]:
        """A prank verdict counts against the caller's number (flagged at `prank_threshold`)."""
        classified = event.payload
        if classified.category is not Category.PRANK:
            return []
        phone = await record_prank(uow.conn, uow.state, incident_id=classified.incident_id)
        if phone is not None:
            log.info("prank counted against caller", incident_id=str(classified.incident_id))
        return []
