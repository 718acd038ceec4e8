"""The gateway, declared: besides HTTP, it follows which incident each of its intakes joined
and what the agencies answered, to tell the citizens who reported on a channel."""

from schemas.events import CallLinkedV1, IncidentOpenedV1, WorkOrderAnsweredV1, WorkOrderClosedV1
from services.common.stage import Stage

GATEWAY = Stage(
    name="gateway",
    consumes=(IncidentOpenedV1, CallLinkedV1, WorkOrderAnsweredV1, WorkOrderClosedV1),
)
