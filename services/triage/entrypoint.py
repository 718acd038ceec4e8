"""Triage handlers: an enriched intake in, an opened and classified incident out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from schemas.envelope import Event, new_event
from schemas.events import IncidentClassifiedV1, IncidentOpenedV1, IntakeEnrichedV1
from schemas.ids import derive_id
from schemas.topics import Topics
from schemas.vocabulary import Priority
from services.common.outbox import Outgoing
from services.triage import repository
from services.triage.classifier import Classifier
from services.triage.rules import SLA_SECONDS

SOURCE = "/siaga/triage"


@dataclass
class Triage:
    """Opens one incident per new intake and classifies it."""

    classifier: Classifier
    topics: Topics
    sla_seconds: dict[Priority, int] = field(default_factory=lambda: dict(SLA_SECONDS))

    async def on_intake_enriched(
        self, conn: asyncpg.Connection, event: Event
    ) -> Sequence[Outgoing]:
        """Classify the report and open its incident (once per intake id)."""
        enriched = event.payload
        assert isinstance(enriched, IntakeEnrichedV1)
        intake = enriched.intake
        if await repository.incident_of_intake(conn, intake_id=intake.intake_id) is not None:
            return []
        decision = self.classifier.classify(
            text=intake.text, channel=intake.channel, signals=enriched.signals
        )
        incident_id = derive_id(intake.intake_id, "incident")
        now = datetime.now(UTC)
        await repository.open_incident(
            conn,
            incident_id=incident_id,
            intake_id=intake.intake_id,
            category=decision.category.value,
            priority=decision.priority.value,
            place=enriched.place,
            at=now,
        )
        correlation = str(intake.intake_id)
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
            sla_seconds=self.sla_seconds[decision.priority],
            text=intake.text,
            channel=intake.channel,
            received_at=intake.received_at,
            place=enriched.place,
            classified_at=now,
        )
        return [
            Outgoing.of(
                new_event(
                    opened,
                    id=derive_id(incident_id, "opened"),
                    source=SOURCE,
                    correlationid=correlation,
                    causationid=event.id,
                ),
                self.topics,
            ),
            Outgoing.of(
                new_event(
                    classified,
                    id=derive_id(incident_id, "classified"),
                    source=SOURCE,
                    correlationid=correlation,
                    causationid=event.id,
                ),
                self.topics,
            ),
        ]
