"""The tracker, declared: what it consumes; it owns the bad messages of every topic it reads."""

from schemas.commands import CancelIncidentV1, CloseIncidentV1
from schemas.events import (
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentOpenedV1,
    UnitDispatchedV1,
    UnitStatusChangedV1,
    WorkOrderAnsweredV1,
    WorkOrderClosedV1,
    WorkOrderIssuedV1,
)
from services.common.stage import Stage

TRACKER = Stage(
    name="tracker",
    consumes=(
        IncidentOpenedV1,
        IncidentClassifiedV1,
        UnitDispatchedV1,
        DispatchCancelledV1,
        UnitStatusChangedV1,
        WorkOrderIssuedV1,
        WorkOrderAnsweredV1,
        WorkOrderClosedV1,
        CancelIncidentV1,
        CloseIncidentV1,
    ),
    owns=("incident_events", "dispatch_orders", "unit_status", "dispatch_commands"),
)
