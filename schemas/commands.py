"""Commands from supervisors and agencies, named in the imperative; the stage that owns the
decision turns each into events (or refuses it, with a reason, to the dead-letter topic)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from schemas.common import MAX_NAME, MAX_TEXT, AwareInstant, Contract
from schemas.vocabulary import Category, Priority


class CancelDispatchV1(Contract):
    """Withdraw a unit's order; the run-card slot is filled again by the next best unit."""

    incident_id: UUID = Field(description="The incident")
    unit_id: str = Field(description="The unit to withdraw", max_length=64)
    reason: str = Field(description="Why", max_length=MAX_NAME)
    redispatch: bool = Field(default=True, description="Send the next best unit instead")
    requested_by: str = Field(description="Supervisor", max_length=MAX_NAME)
    requested_at: AwareInstant = Field(description="When")


class ReassignDispatchV1(Contract):
    """Give a unit's order to another unit (a named one, or the next best)."""

    incident_id: UUID = Field(description="The incident")
    unit_id: str = Field(description="The unit taken off", max_length=64)
    to_unit_id: str | None = Field(
        default=None, description="The unit to send, or null", max_length=64
    )
    reason: str = Field(description="Why", max_length=MAX_NAME)
    requested_by: str = Field(description="Supervisor", max_length=MAX_NAME)
    requested_at: AwareInstant = Field(description="When")


class CancelIncidentV1(Contract):
    """Cancel an incident: every unit is released, nothing more is sent."""

    incident_id: UUID = Field(description="The incident")
    reason: str = Field(description="Why (false alarm, duplicate, ...)", max_length=MAX_NAME)
    requested_by: str = Field(description="Supervisor", max_length=MAX_NAME)
    requested_at: AwareInstant = Field(description="When")


class CloseIncidentV1(Contract):
    """Close a resolved incident (its record is complete)."""

    incident_id: UUID = Field(description="The incident")
    note: str = Field(default="", description="Closing note", max_length=MAX_TEXT)
    requested_by: str = Field(description="Supervisor", max_length=MAX_NAME)
    requested_at: AwareInstant = Field(description="When")


class AnswerWorkOrderV1(Contract):
    """An agency's first response to a citizen's complaint."""

    incident_id: UUID = Field(description="The incident of the work order")
    response: str = Field(description="The answer", min_length=1, max_length=MAX_TEXT)
    requested_by: str = Field(description="Agency officer", max_length=MAX_NAME)
    requested_at: AwareInstant = Field(description="When")


class CloseWorkOrderV1(Contract):
    """An agency finished the work on a complaint."""

    incident_id: UUID = Field(description="The incident of the work order")
    resolution: str = Field(description="What was done", min_length=1, max_length=MAX_TEXT)
    requested_by: str = Field(description="Agency officer", max_length=MAX_NAME)
    requested_at: AwareInstant = Field(description="When")


class ReviewTriageV1(Contract):
    """A call-taker's answer to triage's questions: confirm it, or give the priority or
    category the answers call for (both null: confirmed as it stands)."""

    incident_id: UUID = Field(description="The incident")
    priority: Priority | None = Field(default=None, description="New priority, or null")
    category: Category | None = Field(default=None, description="New category, or null")
    note: str = Field(default="", description="What the caller answered", max_length=MAX_TEXT)
    requested_by: str = Field(description="Call-taker or supervisor", max_length=MAX_NAME)
    requested_at: AwareInstant = Field(description="When")
