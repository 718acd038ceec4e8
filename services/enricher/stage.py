"""The enricher, declared: what it consumes and the topic whose bad messages it owns."""

from schemas.events import IncidentClassifiedV1, IncidentOpenedV1, IntakeReceivedV1
from services.common.stage import Stage

# Incident events come back so a number's pranks are counted (the tracker owns that
# topic's dead letters).
ENRICHER = Stage(
    name="enricher",
    consumes=(IntakeReceivedV1, IncidentOpenedV1, IncidentClassifiedV1),
    owns=("intake_received",),
)
