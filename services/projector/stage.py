"""The projector, declared: every event the read model shows; it owns no topic's bad
messages (each other topic has an owner, and what cannot be decoded on the dead-letter
topic itself is never sent back into it)."""

from schemas.events import (
    CallLinkedV1,
    DeadLetterRedrivenV1,
    DeadLetterV1,
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentEscalatedV1,
    IncidentOpenedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    IntakeEnrichedV1,
    IntakeReceivedV1,
    SlaBreachedV1,
    TriageReviewedV1,
    UnitDispatchedV1,
    UnitMovedV1,
    UnitRegisteredV1,
    UnitStatusChangedV1,
    WorkOrderAnsweredV1,
    WorkOrderClosedV1,
    WorkOrderEscalatedV1,
    WorkOrderIssuedV1,
    WorkOrderReminderSentV1,
)
from services.common.stage import Stage

PROJECTOR = Stage(
    name="projector",
    consumes=(
        IntakeReceivedV1,
        IntakeEnrichedV1,
        IncidentOpenedV1,
        CallLinkedV1,
        IncidentClassifiedV1,
        TriageReviewedV1,
        IncidentStatusChangedV1,
        IncidentResolvedV1,
        UnitDispatchedV1,
        DispatchCancelledV1,
        WorkOrderIssuedV1,
        UnitRegisteredV1,
        UnitStatusChangedV1,
        DeadLetterV1,
        IncidentEscalatedV1,
        SlaBreachedV1,
        WorkOrderReminderSentV1,
        WorkOrderEscalatedV1,
        WorkOrderAnsweredV1,
        WorkOrderClosedV1,
        UnitMovedV1,
        DeadLetterRedrivenV1,
    ),
)
