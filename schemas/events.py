"""Payloads of every event in the pipeline, one pydantic model per event type and version."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from schemas.cap import CapAlert
from schemas.common import (
    MAX_CODE,
    MAX_NAME,
    MAX_REASON,
    MAX_TEXT,
    AwareInstant,
    Caller,
    Contract,
    Instant,
    Location,
    Place,
)
from schemas.vocabulary import (
    Category,
    Channel,
    IncidentStatus,
    Priority,
    UnitStatus,
    UnitType,
)

UnitId = Annotated[str, StringConstraints(max_length=64)]
Question = Annotated[str, StringConstraints(max_length=MAX_NAME)]
MAX_QUESTIONS = 8
LifeThreat = Literal["certain", "possible", "none"]
ReviewDecision = Literal["confirmed", "lowered", "raised", "recategorised"]
Capability = Annotated[str, StringConstraints(max_length=MAX_CODE)]
# A dead letter keeps keys and header values up to this size (longer ones are cut).
MAX_KEPT_B64 = 16 * 1024
MAX_HEADERS = 64

# ---------------------------------------------------------------- intake


class IntakeReceivedV1(Contract):
    """A call or report as the operator or channel adapter entered it (public contract)."""

    intake_id: UUID = Field(description="Chosen by the sender; resending the same id is harmless")
    channel: Channel = Field(description="Where the report came in")
    received_at: AwareInstant = Field(description="When the report was received (RFC 3339)")
    caller: Caller = Field(default_factory=Caller, description="Who reported")
    text: str = Field(default="", description="Free text as spoken or typed", max_length=MAX_TEXT)
    place_hint: str | None = Field(
        default=None, description="Free-text place the caller named", max_length=MAX_NAME
    )
    location: Location | None = Field(default=None, description="Handset or channel position")
    operator_id: str | None = Field(
        default=None, description="Call-taker who entered it", max_length=64
    )


class CallerSignals(Contract):
    """What the enricher knows about the caller from earlier reports."""

    prior_reports: int = Field(description="Reports from this number before this one", ge=0)
    prior_pranks: int = Field(description="Earlier reports from this number judged pranks", ge=0)
    repeat_caller: bool = Field(description="Called at least once in the repeat window before")
    prank_flagged: bool = Field(description="Number is flagged for repeated pranks")
    ghost: bool = Field(description="Empty or silent report: no text, no place")


class IntakeEnrichedV1(Contract):
    """An intake with its place resolved and caller signals attached."""

    intake: IntakeReceivedV1 = Field(description="The intake as received")
    place: Place | None = Field(description="Resolved place, or null when unresolved")
    signals: CallerSignals = Field(description="Caller history signals")
    enriched_at: Instant = Field(description="When the enricher processed it")
    received_at_claimed: Instant | None = Field(
        default=None,
        description="The sender's received_at when it was ahead of Siaga's clock (a wrong"
        " clock): `intake.received_at` is then the time the enricher read it",
    )


# ---------------------------------------------------------------- incidents


class IncidentOpenedV1(Contract):
    """Triage opened a new incident for an intake."""

    incident_id: UUID = Field(description="Derived from the first intake id (uuid5)")
    intake_id: UUID = Field(description="The intake that opened it")
    channel: Channel = Field(description="Channel of the opening intake")
    received_at: Instant = Field(description="When the opening intake was received")
    opened_at: Instant = Field(description="When triage opened the incident")
    text: str = Field(description="Text of the opening intake", max_length=MAX_TEXT)
    place: Place | None = Field(description="Resolved place of the opening intake")


class CallLinkedV1(Contract):
    """Another intake was linked to an existing incident (duplicate call)."""

    incident_id: UUID = Field(description="The incident the call joins")
    intake_id: UUID = Field(description="The linked intake")
    channel: Channel = Field(description="Channel of the linked intake")
    linked_at: Instant = Field(description="When triage linked it")
    reason: str = Field(description="Why it was judged the same incident", max_length=MAX_REASON)


class IncidentClassifiedV1(Contract):
    """Triage decided category, priority, agency and SLA of an incident."""

    incident_id: UUID = Field(description="The incident")
    category: Category = Field(description="What the incident is about")
    priority: Priority = Field(description="P1..P4")
    agency: str = Field(
        description="Responsible agency (e.g. PSC 119, Damkar, Polres)", max_length=MAX_NAME
    )
    confidence: float = Field(description="Classifier confidence 0..1", ge=0, le=1)
    explanation: str = Field(description="The words or rules that decided", max_length=MAX_TEXT)
    needs_review: bool = Field(description="Below the confidence threshold: a human must triage")
    sla_seconds: int = Field(description="Target from intake to first action, in seconds", ge=0)
    text: str = Field(description="Text of the opening intake", max_length=MAX_TEXT)
    channel: Channel = Field(description="Channel of the opening intake")
    received_at: Instant = Field(description="When the opening intake was received")
    place: Place | None = Field(description="Where, as resolved by the enricher")
    classified_at: Instant = Field(description="When triage classified it")
    needs_confirmation: bool = Field(
        default=False,
        description="P1 on uncertain evidence of a threat to life: units go now and a "
        "call-taker confirms or lowers it, asking the questions",
    )
    questions: list[Question] = Field(
        default_factory=list,
        description="Key questions for the call-taker to confirm or lower the priority",
        max_length=MAX_QUESTIONS,
    )
    life_threat: LifeThreat = Field(
        default="none",
        description="What the words say of a threat to life: certain, possible or none",
    )


class TriageReviewedV1(Contract):
    """A call-taker's decision on triage: confirmed, or a new priority or category."""

    incident_id: UUID = Field(description="The incident")
    decision: ReviewDecision = Field(description="confirmed, lowered, raised or recategorised")
    category: Category = Field(description="Category after the review")
    priority: Priority = Field(description="Priority after the review")
    agency: str = Field(description="Responsible agency after the review", max_length=MAX_NAME)
    sla_seconds: int = Field(description="Target of the priority after the review", ge=0)
    previous_category: Category = Field(description="Category before the review")
    previous_priority: Priority = Field(description="Priority before the review")
    note: str = Field(default="", description="What the call-taker learnt", max_length=MAX_TEXT)
    reviewed_by: str = Field(description="Call-taker or supervisor", max_length=MAX_NAME)
    reviewed_at: Instant = Field(description="When the decision was made")
    text: str = Field(description="Text of the opening intake", max_length=MAX_TEXT)
    channel: Channel = Field(description="Channel of the opening intake")
    received_at: Instant = Field(description="When the opening intake was received")
    place: Place | None = Field(description="Where, as resolved by the enricher")


class IncidentStatusChangedV1(Contract):
    """The tracker moved an incident to a new lifecycle status."""

    incident_id: UUID = Field(description="The incident")
    from_status: IncidentStatus | None = Field(description="Status before, null for the first")
    to_status: IncidentStatus = Field(description="Status after")
    changed_at: Instant = Field(description="When the step happened (time of the cause)")
    unit_id: str | None = Field(
        default=None, description="Unit whose report caused it, if any", max_length=64
    )
    reason: str = Field(description="What caused the step", max_length=MAX_REASON)


class IncidentResolvedV1(Contract):
    """Every unit sent to the incident has cleared the scene."""

    incident_id: UUID = Field(description="The incident")
    resolved_at: Instant = Field(description="When the last unit cleared")
    units: list[UnitId] = Field(description="Units that served it", max_length=200)


class IncidentEscalatedV1(Contract):
    """No suitable unit was free: the incident waits in the queue and supervisors are told."""

    incident_id: UUID = Field(description="The incident")
    unit_type: UnitType = Field(description="The kind of unit it waits for")
    priority: Priority = Field(description="Incident priority")
    reason: str = Field(description="Why, in one line", max_length=MAX_REASON)
    escalated_at: Instant = Field(description="When")


class SlaBreachedV1(Contract):
    """An incident missed a service-level target (raised once per incident and target)."""

    incident_id: UUID = Field(description="The incident")
    target: str = Field(
        description="dispatch (unit notified) or first_response (agency answer)",
        max_length=MAX_CODE,
    )
    priority: Priority = Field(description="Incident priority")
    channel: Channel = Field(description="Channel of the opening intake")
    category: Category = Field(description="Incident category")
    received_at: Instant = Field(description="When the opening intake was received")
    due_at: Instant = Field(description="When the target fell due")
    breached_at: Instant = Field(description="When the tracker noticed")


# ---------------------------------------------------------------- dispatch


class UnitDispatchedV1(Contract):
    """A unit was claimed for an incident and ordered to go."""

    dispatch_id: UUID = Field(description="Derived from the incident and the unit claim (uuid5)")
    incident_id: UUID = Field(description="The incident")
    unit_id: str = Field(description="The unit ordered", max_length=64)
    unit_type: UnitType = Field(description="Kind of unit")
    category: Category = Field(description="Incident category")
    priority: Priority = Field(description="Incident priority")
    place: Place | None = Field(description="Where to go")
    distance_km: float | None = Field(description="Estimated road distance from the unit", ge=0)
    eta_seconds: int | None = Field(description="Estimated travel time", ge=0)
    dispatched_at: Instant = Field(description="When the claim was made")


class DispatchCancelledV1(Contract):
    """An order was withdrawn and the unit released."""

    dispatch_id: UUID = Field(description="The order withdrawn")
    incident_id: UUID = Field(description="The incident")
    unit_id: str = Field(description="The unit released", max_length=64)
    reason: str = Field(
        description="Why (ack timeout, supervisor, incident cancelled)", max_length=MAX_REASON
    )
    unit_status_after: UnitStatus = Field(
        description="The unit afterwards: available, or out_of_service when it did not answer"
    )
    cancelled_at: Instant = Field(description="When")


class WorkOrderIssuedV1(Contract):
    """A non-emergency report became a work order in an agency's queue."""

    work_order_id: UUID = Field(description="Derived from the incident (uuid5)")
    incident_id: UUID = Field(description="The incident")
    agency: str = Field(description="Agency whose queue it joins", max_length=MAX_NAME)
    category: Category = Field(description="Incident category")
    priority: Priority = Field(description="Incident priority")
    summary: str = Field(description="Text of the report", max_length=MAX_TEXT)
    issued_at: Instant = Field(description="When it was issued")
    due_at: Instant = Field(description="First response due (default 3 days)")


class WorkOrderReminderSentV1(Contract):
    """A work order nears its due time unanswered: the agency is reminded."""

    work_order_id: UUID = Field(description="The work order")
    incident_id: UUID = Field(description="The incident")
    agency: str = Field(description="Agency reminded", max_length=MAX_NAME)
    due_at: Instant = Field(description="First response due")
    reminded_at: Instant = Field(description="When")


class WorkOrderEscalatedV1(Contract):
    """A work order passed its due time unanswered: it is overdue and escalated."""

    work_order_id: UUID = Field(description="The work order")
    incident_id: UUID = Field(description="The incident")
    agency: str = Field(description="Agency that missed it", max_length=MAX_NAME)
    due_at: Instant = Field(description="First response was due")
    escalated_at: Instant = Field(description="When")


class WorkOrderAnsweredV1(Contract):
    """The agency gave its first response to the citizen."""

    work_order_id: UUID = Field(description="The work order")
    incident_id: UUID = Field(description="The incident")
    agency: str = Field(description="Answering agency", max_length=MAX_NAME)
    response: str = Field(description="What the agency answered", max_length=MAX_TEXT)
    answered_by: str = Field(description="Who answered", max_length=MAX_NAME)
    answered_at: Instant = Field(description="When")


class WorkOrderClosedV1(Contract):
    """The agency finished the work order."""

    work_order_id: UUID = Field(description="The work order")
    incident_id: UUID = Field(description="The incident")
    agency: str = Field(description="Agency", max_length=MAX_NAME)
    resolution: str = Field(description="How it was resolved", max_length=MAX_TEXT)
    closed_by: str = Field(description="Who closed it", max_length=MAX_NAME)
    closed_at: Instant = Field(description="When")


# ---------------------------------------------------------------- units


class UnitRegisteredV1(Contract):
    """A unit joined the fleet, or its details changed."""

    unit_id: str = Field(description="Call sign, e.g. AMB-PSC119-1", max_length=64)
    unit_type: UnitType = Field(description="Kind of unit")
    agency: str = Field(description="Owning agency", max_length=MAX_NAME)
    base: str = Field(description="Home base name", max_length=MAX_NAME)
    location: Location = Field(description="Home base position")
    capabilities: list[Capability] = Field(
        default_factory=list, description="e.g. ALS, BLS, water", max_length=32
    )
    registered_at: Instant = Field(description="When")


class UnitMovedV1(Contract):
    """A unit's position (or home base) changed, outside of a status report."""

    unit_id: str = Field(description="The unit", max_length=64)
    location: Location = Field(description="Where it is now")
    base: str | None = Field(
        default=None, description="New home base, if it was re-based", max_length=MAX_NAME
    )
    moved_at: AwareInstant = Field(description="When")


class UnitStatusReportedV1(Contract):
    """A field unit reported its status (public contract for field clients)."""

    unit_id: str = Field(description="The reporting unit", max_length=64)
    status: UnitStatus = Field(description="New status")
    incident_id: UUID | None = Field(
        default=None, description="Incident the report is about, if the unit knows it"
    )
    reported_at: AwareInstant = Field(description="When the unit reported it")
    location: Location | None = Field(default=None, description="Unit position, if known")
    note: str | None = Field(default=None, description="Free text", max_length=MAX_NAME)


class UnitStatusChangedV1(Contract):
    """The dispatcher accepted a unit's report: the unit exists, the incident is its order,
    the step is legal and the time plausible. The unit's status as every stage knows it;
    a refused report is a dead letter and has no such event."""

    unit_id: str = Field(description="The unit", max_length=64)
    status: UnitStatus = Field(description="Its status now")
    previous_status: UnitStatus = Field(description="Its status before the report")
    incident_id: UUID | None = Field(
        default=None,
        description="The incident of the unit's order (filled in when the report named none),"
        " or the one it is back from; null for a unit with no order",
    )
    reported_at: AwareInstant = Field(description="When the unit reported it")
    location: Location | None = Field(default=None, description="Unit position, if known")
    note: str | None = Field(
        default=None, description="The report's free text", max_length=MAX_NAME
    )


# ---------------------------------------------------------------- public alerts

_ALERT_EXAMPLE: dict[str, Any] = {
    "identifier": "0b8f5c1e-2f0a-4c55-9d43-6a3f1f0e2b77",
    "sender": "bpbd@batangkab.go.id",
    "sent": "2026-01-14T16:05:00+07:00",
    "status": "Actual",
    "msg_type": "Update",
    "source": "petugas BPBD",
    "scope": "Restricted",
    "restriction": "Relawan dan perangkat desa",
    "note": "Tinggi air naik",
    "references": [
        {
            "sender": "bpbd@batangkab.go.id",
            "identifier": "5d1e2f3a-7b6c-4d5e-8f90-1a2b3c4d5e6f",
            "sent": "2026-01-14T15:10:00+07:00",
        }
    ],
    "incident_id": "9a7c0b4e-3d21-4f6a-8b5c-2e1d0f9a8b7c",
    "language": "id-ID",
    "categories": ["Met"],
    "event": "Banjir",
    "response_types": ["Evacuate"],
    "urgency": "Immediate",
    "severity": "Severe",
    "certainty": "Observed",
    "effective": "2026-01-14T16:05:00+07:00",
    "onset": "2026-01-14T16:00:00+07:00",
    "expires": "2026-01-15T04:05:00+07:00",
    "sender_name": "BPBD Kabupaten Batang",
    "headline": "Banjir di Kecamatan Limpung",
    "description": "Kali Kuto meluap, air 80 cm di jalan desa",
    "instruction": "Warga bantaran sungai mengungsi ke balai desa",
    "web": "https://bpbd.batangkab.go.id",
    "contact": "Pusdalops BPBD 112",
    "area": {
        "area_desc": "Kecamatan Limpung",
        "polygons": [
            [
                {"lat": -7.01, "lon": 109.91},
                {"lat": -7.01, "lon": 109.94},
                {"lat": -7.04, "lon": 109.94},
                {"lat": -7.01, "lon": 109.91},
            ]
        ],
        "circles": [{"lat": -7.02, "lon": 109.92, "radius_km": 2.0}],
        "geocodes": [{"value_name": "kemendagri", "value": "33.25.08"}],
    },
}


class AlertIssuedV1(CapAlert):
    """A public alert (CAP 1.2) an officer issued, updated or cancelled (`siaga alert`);
    the gateway serves it, with the alerts Siaga derives from disaster incidents, at
    `/cap/alerts`."""

    model_config = ConfigDict(json_schema_extra={"examples": [cast(JsonDict, _ALERT_EXAMPLE)]})


# ---------------------------------------------------------------- dead letters


class DeadLetterV1(Contract):
    """A message a stage could not process, kept whole with the reason."""

    stage: str = Field(description="Stage that gave up on it", max_length=MAX_CODE)
    reason: str = Field(description="Why, in one line", max_length=MAX_REASON)
    error_type: str = Field(description="Class of the error", max_length=MAX_CODE)
    source_topic: str = Field(description="Topic it was read from", max_length=256)
    source_partition: int = Field(description="Partition it was read from")
    source_offset: int = Field(description="Offset it was read from")
    original_key_b64: str | None = Field(
        description="Original key, base64 (cut at 4 KiB)", max_length=MAX_KEPT_B64
    )
    original_headers: list[
        tuple[
            Annotated[str, StringConstraints(max_length=256)],
            Annotated[str, StringConstraints(max_length=MAX_KEPT_B64)],
        ]
    ] = Field(
        description="Original headers (at most 64, values base64, cut at 512 bytes)",
        max_length=MAX_HEADERS,
    )
    original_value_b64: str = Field(
        description="Original bytes, base64 (the first `MAX_ORIGINAL` bytes when truncated)",
        max_length=140_000,
    )
    original_size: int = Field(description="Size of the original value in bytes", ge=0)
    original_truncated: bool = Field(
        description="True when the original was too large to keep whole in a dead letter"
    )
    dead_lettered_at: Instant = Field(description="When")


class DeadLetterRedrivenV1(Contract):
    """An operator sent a dead letter's original message back to its source topic."""

    dead_letter_id: str = Field(description="Id of the dead letter redriven", max_length=128)
    stage: str = Field(description="Stage that had dead-lettered it", max_length=64)
    source_topic: str = Field(description="Topic the original went back to", max_length=256)
    partition: int = Field(description="Partition of the redriven copy", ge=0)
    offset: int = Field(description="Offset of the redriven copy", ge=0)
    redriven_at: Instant = Field(description="When")
    operator: str | None = Field(default=None, description="Who redrove it", max_length=64)
