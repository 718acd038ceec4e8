"""The gateway, declared: besides HTTP, it follows which incident each of its intakes joined."""

from schemas.events import CallLinkedV1, IncidentOpenedV1
from services.common.stage import Stage

GATEWAY = Stage(name="gateway", consumes=(IncidentOpenedV1, CallLinkedV1))
