"""The dispatcher, declared: what it consumes (the tracker owns those topics' bad messages)."""

from schemas.commands import (
    AnswerWorkOrderV1,
    CancelDispatchV1,
    CloseWorkOrderV1,
    ReassignDispatchV1,
)
from schemas.events import (
    IncidentClassifiedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    TriageReviewedV1,
    UnitMovedV1,
    UnitRegisteredV1,
    UnitStatusReportedV1,
)
from services.common.stage import Stage

DISPATCHER = Stage(
    name="dispatcher",
    consumes=(
        IncidentClassifiedV1,
        TriageReviewedV1,
        IncidentStatusChangedV1,
        IncidentResolvedV1,
        UnitRegisteredV1,
        UnitMovedV1,
        UnitStatusReportedV1,
        CancelDispatchV1,
        ReassignDispatchV1,
        AnswerWorkOrderV1,
        CloseWorkOrderV1,
    ),
)
