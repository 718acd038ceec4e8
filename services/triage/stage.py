"""Triage, declared: what it consumes, the topic whose bad messages it owns and its inbox
key."""

from schemas.commands import ReviewTriageV1
from schemas.envelope import Event
from schemas.events import IncidentResolvedV1, IncidentStatusChangedV1, IntakeEnrichedV1
from services.common.processing import event_key
from services.common.stage import Stage


def inbox_key(event: Event) -> str:
    """An enriched intake by its intake id, so one enriched twice is triaged once; others by id."""
    if isinstance(event.payload, IntakeEnrichedV1):
        return f"intake:{event.payload.intake.intake_id}"
    return event_key(event)


# Incident events come back so ended incidents stop taking duplicate calls (the tracker
# owns that topic's dead letters); a call-taker's review comes as a command.
TRIAGE = Stage(
    name="triage",
    consumes=(IntakeEnrichedV1, IncidentResolvedV1, IncidentStatusChangedV1, ReviewTriageV1),
    owns=("intake_enriched",),
    inbox_key=inbox_key,
)
