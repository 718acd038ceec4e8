"""The enricher, declared: what it consumes, the topic whose bad messages it owns and its
inbox key."""

from schemas.envelope import Event
from schemas.events import IncidentClassifiedV1, IncidentOpenedV1, IntakeReceivedV1
from services.common.processing import event_key
from services.common.stage import Stage


def inbox_key(event: Event) -> str:
    """An intake by the sender's intake id, so one sent twice is enriched once; others by id."""
    if isinstance(event.payload, IntakeReceivedV1):
        return f"intake:{event.payload.intake_id}"
    return event_key(event)


# Incident events come back so a number's pranks are counted (the tracker owns that
# topic's dead letters).
ENRICHER = Stage(
    name="enricher",
    consumes=(IntakeReceivedV1, IncidentOpenedV1, IncidentClassifiedV1),
    owns=("intake_received",),
    inbox_key=inbox_key,
)
