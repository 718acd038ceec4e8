"""Triage handlers: an enriched intake in, an opened and classified incident out, or a link
to the open incident it repeats; ended incidents stop taking duplicate calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from schemas.commands import ReviewTriageV1
from schemas.common import Contract
from schemas.envelope import Event, new_event
from schemas.events import (
    CallLinkedV1,
    IncidentClassifiedV1,
    IncidentOpenedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    IntakeEnrichedV1,
    ReviewDecision,
    TriageReviewedV1,
)
from schemas.ids import derive_id
from schemas.topics import Topics
from schemas.vocabulary import Category, Priority
from services.common.outbox import Outgoing
from services.common.processing import Rejected
from services.common.uow import UnitOfWork
from services.triage import repository
from services.triage.classifier import SLA_SECONDS, Classification, Classifier
from services.triage.correlation import (
    Call,
    DuplicateRule,
    OpenIncident,
    ends_incident,
    find_link,
    may_repeat,
)

SOURCE = "/siaga/triage"


@dataclass
class Triage:
    """Opens one incident per new emergency and classifies it; repeat calls join it."""

    classifier: Classifier
    topics: Topics
    duplicates: DuplicateRule
    sla_seconds: dict[Priority, int] = field(default_factory=lambda: dict(SLA_SECONDS))

    async def on_intake_enriched(
        self, uow: UnitOfWork[repository.Correlation], event: Event[IntakeEnrichedV1]
    ) -> Sequence[Outgoing]:
        """Classify the report, then link it to the incident it repeats or open its own."""
        enriched = event.payload
        intake = enriched.intake
        decision = self.classifier.classify(
            text=intake.text, channel=intake.channel, signals=enriched.signals
        )
        call = Call(
            category=decision.category,
            priority=decision.priority,
            place=enriched.place,
            received_at=intake.received_at,
            needs_review=decision.needs_review,
        )
        now = uow.now
        if may_repeat(call, self.duplicates) and call.place is not None:
            candidates = await uow.state.open_incidents(
                uow.conn,
                category=call.category.value,
                around=call.received_at,
                window=self.duplicates.window,
                near=(call.place.lat, call.place.lon),
                radius_km=self.duplicates.radius_km,
            )
            link = find_link(call, candidates, self.duplicates)
            if link is not None:
                repository.link_intake(
                    uow.state.links,
                    intake_id=intake.intake_id,
                    incident_id=link.incident_id,
                    at=now,
                    reason=link.reason,
                )
                linked = CallLinkedV1(
                    incident_id=link.incident_id,
                    intake_id=intake.intake_id,
                    channel=intake.channel,
                    linked_at=now,
                    reason=link.reason,
                )
                intake_key = str(intake.intake_id)
                return [self._out(linked, derive_id(intake_key, "linked"), event, intake_key)]
        return self._open(uow.state, enriched, decision, event, now)

    def _open(
        self,
        batch: repository.Correlation,
        enriched: IntakeEnrichedV1,
        decision: Classification,
        cause: Event,
        now: datetime,
    ) -> Sequence[Outgoing]:
        intake = enriched.intake
        # Each id written out once (a UUID's text is made in Python each time it is asked for);
        # an id derived from the text of its cause is the one derived from the cause.
        intake_key = str(intake.intake_id)
        incident_id = derive_id(intake_key, "incident")
        repository.open_incident(
            batch,
            incident_id=incident_id,
            intake_id=intake.intake_id,
            category=decision.category.value,
            priority=decision.priority.value,
            place=enriched.place,
            received_at=intake.received_at,
            needs_review=decision.needs_review,
            agency=decision.agency,
            channel=intake.channel.value,
            text=intake.text,
            at=now,
        )
        place = enriched.place
        # Later calls of this batch may repeat it (the query's rule: placed, not under review).
        if place and place.lat is not None and place.lon is not None and not decision.needs_review:
            batch.opened(
                OpenIncident(
                    incident_id=incident_id,
                    category=decision.category,
                    priority=decision.priority,
                    lat=place.lat,
                    lon=place.lon,
                    received_at=intake.received_at,
                )
            )
        opened, classified = opening_events(
            enriched,
            decision,
            incident_id=incident_id,
            sla_seconds=self.sla_seconds[decision.priority],
            now=now,
        )
        incident_key = str(incident_id)
        return [
            self._out(opened, derive_id(incident_key, "opened"), cause, intake_key),
            self._out(classified, derive_id(incident_key, "classified"), cause, intake_key),
        ]

    def _out(self, payload: Contract, event_id: UUID, cause: Event, intake_key: str) -> Outgoing:
        event = new_event(
            payload,
            id=event_id,
            source=SOURCE,
            correlationid=intake_key,
            causationid=cause.id,
        )
        return Outgoing.of(event, self.topics)

    async def on_review_triage(
        self, uow: UnitOfWork[repository.Correlation], event: Event[ReviewTriageV1]
    ) -> Sequence[Outgoing]:
        """A call-taker's answer to triage: the incident's decision as they give it."""
        command = event.payload
        await uow.state.openings.flush(uow.conn)  # it may have been opened in this batch
        current = await repository.classified(uow.conn, incident_id=command.incident_id)
        if current is None:
            raise Rejected("unknown_incident", f"triage opened no incident {command.incident_id}")
        if current.ended:
            raise Rejected("incident_ended", f"incident {command.incident_id} has ended")
        decision = review_decision(
            before=(current.category, current.priority),
            category=command.category,
            priority=command.priority,
        )
        category = command.category or current.category
        priority = command.priority or current.priority
        agency = self.classifier.agency_of(category)
        await repository.record_review(
            uow.conn,
            incident_id=current.incident_id,
            category=category,
            priority=priority,
            agency=agency,
            at=command.requested_at,
        )
        reviewed = TriageReviewedV1(
            incident_id=current.incident_id,
            decision=decision,
            category=category,
            priority=priority,
            agency=agency,
            sla_seconds=self.sla_seconds[priority],
            previous_category=current.category,
            previous_priority=current.priority,
            note=command.note,
            reviewed_by=command.requested_by,
            reviewed_at=command.requested_at,
            text=current.text,
            channel=current.channel,
            received_at=current.received_at,
            place=current.place,
        )
        correlation = event.envelope.correlationid or str(current.incident_id)
        return [
            Outgoing.of(
                new_event(
                    reviewed,
                    id=derive_id(event.id, "reviewed"),
                    source=SOURCE,
                    correlationid=correlation,
                    causationid=event.id,
                ),
                self.topics,
            )
        ]

    async def on_incident_ended(
        self,
        uow: UnitOfWork[repository.Correlation],
        event: Event[IncidentResolvedV1 | IncidentStatusChangedV1],
    ) -> Sequence[Outgoing]:
        """A resolved, closed, cancelled or merged incident takes no more duplicate calls."""
        payload = event.payload
        if not ends_incident(payload):
            return []
        at = payload.resolved_at if isinstance(payload, IncidentResolvedV1) else payload.changed_at
        await uow.state.end(uow.conn, incident_id=payload.incident_id, at=at)
        return []


def opening_events(
    enriched: IntakeEnrichedV1,
    decision: Classification,
    *,
    incident_id: UUID,
    sla_seconds: int,
    now: datetime,
) -> tuple[IncidentOpenedV1, IncidentClassifiedV1]:
    """The two facts of a new incident: it was opened by this intake, and triage's decision."""
    intake = enriched.intake
    opened = IncidentOpenedV1(
        incident_id=incident_id,
        intake_id=intake.intake_id,
        channel=intake.channel,
        received_at=intake.received_at,
        opened_at=now,
        text=intake.text,
        place=enriched.place,
    )
    classified = IncidentClassifiedV1(
        incident_id=incident_id,
        category=decision.category,
        priority=decision.priority,
        agency=decision.agency,
        confidence=decision.confidence,
        explanation=decision.explanation,
        needs_review=decision.needs_review,
        sla_seconds=sla_seconds,
        text=intake.text,
        channel=intake.channel,
        received_at=intake.received_at,
        place=enriched.place,
        classified_at=now,
        needs_confirmation=decision.needs_confirmation,
        questions=list(decision.questions),
        life_threat=decision.threat,
    )
    return opened, classified


def review_decision(
    *,
    before: tuple[Category, Priority],
    category: Category | None,
    priority: Priority | None,
) -> ReviewDecision:
    """What a call-taker's review did: confirmed, lowered, raised or recategorised (a new
    category is named first, since it changes who goes)."""
    old_category, old_priority = before
    if category is not None and category is not old_category:
        return "recategorised"
    if priority is None or priority is old_priority:
        return "confirmed"
    # P1 is the highest: a larger number is a lower priority.
    return "lowered" if priority.value > old_priority.value else "raised"
