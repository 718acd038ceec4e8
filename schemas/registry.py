"""Every event type with its version, payload model, topic and subject; upcasters between versions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from schemas import commands as cmd
from schemas import events as ev
from schemas.common import Contract
from schemas.topics import Topics


@dataclass(frozen=True)
class EventType:
    """One event type: CloudEvents `type` is `{name}.v{version}`."""

    name: str
    version: int
    model: type[Contract]
    topic: Callable[[Topics], str]
    subject_field: str

    # Both are asked for each event sent (its envelope, its header): written once.
    @cached_property
    def type(self) -> str:
        """The CloudEvents `type` string, e.g. `siaga.incident.classified.v1`."""
        return f"{self.name}.v{self.version}"

    @cached_property
    def schema_file(self) -> str:
        """File name of the committed JSON Schema under `schemas/json/`."""
        return f"{self.type}.schema.json"


def _t(attr: str) -> Callable[[Topics], str]:
    return lambda topics: str(getattr(topics, attr))


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("siaga.intake.received", 1, ev.IntakeReceivedV1, _t("intake_received"), "intake_id"),
    EventType("siaga.intake.enriched", 1, ev.IntakeEnrichedV1, _t("intake_enriched"), "intake"),
    EventType(
        "siaga.incident.opened", 1, ev.IncidentOpenedV1, _t("incident_events"), "incident_id"
    ),
    EventType(
        "siaga.incident.call_linked", 1, ev.CallLinkedV1, _t("incident_events"), "incident_id"
    ),
    EventType(
        "siaga.incident.classified",
        1,
        ev.IncidentClassifiedV1,
        _t("incident_events"),
        "incident_id",
    ),
    EventType(
        "siaga.incident.status_changed",
        1,
        ev.IncidentStatusChangedV1,
        _t("incident_events"),
        "incident_id",
    ),
    EventType(
        "siaga.incident.resolved", 1, ev.IncidentResolvedV1, _t("incident_events"), "incident_id"
    ),
    EventType(
        "siaga.dispatch.unit_dispatched",
        1,
        ev.UnitDispatchedV1,
        _t("dispatch_orders"),
        "incident_id",
    ),
    EventType(
        "siaga.dispatch.cancelled", 1, ev.DispatchCancelledV1, _t("dispatch_orders"), "incident_id"
    ),
    EventType(
        "siaga.dispatch.work_order_issued",
        1,
        ev.WorkOrderIssuedV1,
        _t("dispatch_orders"),
        "incident_id",
    ),
    EventType("siaga.unit.registered", 1, ev.UnitRegisteredV1, _t("unit_status"), "unit_id"),
    EventType(
        "siaga.unit.status_reported", 1, ev.UnitStatusReportedV1, _t("unit_status"), "unit_id"
    ),
    EventType("siaga.unit.status_changed", 1, ev.UnitStatusChangedV1, _t("unit_status"), "unit_id"),
    EventType(
        "siaga.incident.escalated", 1, ev.IncidentEscalatedV1, _t("incident_events"), "incident_id"
    ),
    EventType(
        "siaga.incident.sla_breached", 1, ev.SlaBreachedV1, _t("incident_events"), "incident_id"
    ),
    EventType(
        "siaga.dispatch.work_order_reminder_sent",
        1,
        ev.WorkOrderReminderSentV1,
        _t("dispatch_orders"),
        "incident_id",
    ),
    EventType(
        "siaga.dispatch.work_order_escalated",
        1,
        ev.WorkOrderEscalatedV1,
        _t("dispatch_orders"),
        "incident_id",
    ),
    EventType(
        "siaga.dispatch.work_order_answered",
        1,
        ev.WorkOrderAnsweredV1,
        _t("dispatch_orders"),
        "incident_id",
    ),
    EventType(
        "siaga.dispatch.work_order_closed",
        1,
        ev.WorkOrderClosedV1,
        _t("dispatch_orders"),
        "incident_id",
    ),
    EventType("siaga.unit.moved", 1, ev.UnitMovedV1, _t("unit_status"), "unit_id"),
    EventType(
        "siaga.incident.triage_reviewed",
        1,
        ev.TriageReviewedV1,
        _t("incident_events"),
        "incident_id",
    ),
    EventType("siaga.deadletter", 1, ev.DeadLetterV1, _t("deadletter"), "stage"),
    # Commands (imperative), on the commands topic, keyed by incident id.
    EventType(
        "siaga.command.cancel_dispatch",
        1,
        cmd.CancelDispatchV1,
        _t("dispatch_commands"),
        "incident_id",
    ),
    EventType(
        "siaga.command.reassign_dispatch",
        1,
        cmd.ReassignDispatchV1,
        _t("dispatch_commands"),
        "incident_id",
    ),
    EventType(
        "siaga.command.cancel_incident",
        1,
        cmd.CancelIncidentV1,
        _t("dispatch_commands"),
        "incident_id",
    ),
    EventType(
        "siaga.command.close_incident",
        1,
        cmd.CloseIncidentV1,
        _t("dispatch_commands"),
        "incident_id",
    ),
    EventType(
        "siaga.command.answer_work_order",
        1,
        cmd.AnswerWorkOrderV1,
        _t("dispatch_commands"),
        "incident_id",
    ),
    EventType(
        "siaga.command.close_work_order",
        1,
        cmd.CloseWorkOrderV1,
        _t("dispatch_commands"),
        "incident_id",
    ),
    EventType(
        "siaga.command.review_triage",
        1,
        cmd.ReviewTriageV1,
        _t("dispatch_commands"),
        "incident_id",
    ),
    EventType("siaga.alert.issued", 1, ev.AlertIssuedV1, _t("alerts"), "identifier"),
    EventType(
        "siaga.deadletter.redriven",
        1,
        ev.DeadLetterRedrivenV1,
        _t("deadletter"),
        "dead_letter_id",
    ),
)

_BY_TYPE: dict[str, EventType] = {et.type: et for et in EVENT_TYPES}
_BY_MODEL: dict[type[Contract], EventType] = {et.model: et for et in EVENT_TYPES}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# Old type -> (newer type, function turning old `data` into newer `data`). A breaking
# change adds a new EventType with version+1 and an entry here, named upcast_vX_vY,
# so consumers keep reading events written before the migration.
UPCASTERS: dict[str, tuple[str, Upcaster]] = {}


def event_type_for(model: type[Contract]) -> EventType:
    """The event type whose payload is `model`."""
    return _BY_MODEL[model]


def model_for_type(type_: str) -> EventType | None:
    """The current event type for a CloudEvents `type`, or None when unknown."""
    return _BY_TYPE.get(type_)


def _upcasts(type_: str) -> Iterator[tuple[str, Upcaster]]:
    """The upcasters that take `type_` to its current version, in order (each step's type
    and function); a cycle is cut where it closes."""
    seen = set()
    while type_ in UPCASTERS and type_ not in seen:
        seen.add(type_)
        type_, fn = UPCASTERS[type_]
        yield type_, fn


def current_type(type_: str) -> str:
    """The type an event of `type_` is read as once upcast; unknown types pass through."""
    steps = [step for step, _ in _upcasts(type_)]
    return steps[-1] if steps else type_


def upcast(type_: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Apply upcasters until `type_` is a current version; unknown types pass through."""
    for step, fn in _upcasts(type_):
        type_, data = step, fn(data)
    return type_, data
