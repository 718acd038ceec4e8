"""Triage, declared: what it consumes and the topic whose bad messages it owns."""

from schemas.commands import ReviewTriageV1
from schemas.events import IncidentResolvedV1, IncidentStatusChangedV1, IntakeEnrichedV1
from services.common.stage import Stage

# Incident events come back so ended incidents stop taking duplicate calls (the tracker
# owns that topic's dead letters); a call-taker's review comes as a command.
TRIAGE = Stage(
    name="triage",
    consumes=(IntakeEnrichedV1, IncidentResolvedV1, IncidentStatusChangedV1, ReviewTriageV1),
    owns=("intake_enriched",),
)
