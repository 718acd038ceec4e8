"""A CAP 1.2 alert as Siaga keeps it: the message, one `info` block and one `area`, with the
rules of the standard that its XML Schema does not check (`alert_rule_problems`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from schemas.common import MAX_CODE, MAX_NAME, MAX_REASON, MAX_TEXT, AwareInstant, Contract

MsgType = Literal["Alert", "Update", "Cancel"]
AlertStatus = Literal["Actual", "Exercise", "System", "Test"]
Scope = Literal["Public", "Restricted", "Private"]
CapCategory = Literal[
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
]  # fmt: skip
ResponseType = Literal[
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"
]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]

# CAP: an identifier or sender holds no spaces, commas or restricted characters (< and &),
# since references list them space- and comma-separated.
CAP_NAME = r"^[^\s,<&]+$"
CapName = Annotated[str, StringConstraints(pattern=CAP_NAME, min_length=1)]
MAX_POINTS = 500  # vertices of one polygon; a kecamatan outline has a few dozen
MAX_SHAPES = 50


class Point(Contract):
    """A WGS 84 position, as CAP writes it: latitude first."""

    lat: float = Field(description="Latitude in decimal degrees", ge=-90, le=90)
    lon: float = Field(description="Longitude in decimal degrees", ge=-180, le=180)


class Circle(Contract):
    """A CAP circle: a centre and a radius."""

    lat: float = Field(description="Latitude of the centre", ge=-90, le=90)
    lon: float = Field(description="Longitude of the centre", ge=-180, le=180)
    radius_km: float = Field(description="Radius in kilometres", ge=0, le=20_000)


class Geocode(Contract):
    """A coded area, e.g. a kecamatan by its Kemendagri code."""

    value_name: str = Field(description="Which code list (e.g. `kemendagri`)", max_length=MAX_CODE)
    value: str = Field(description="The code (e.g. `33.25.08`)", max_length=MAX_CODE)


class AlertArea(Contract):
    """Where the alert applies: a description and at least one of polygons, circles, codes."""

    area_desc: str = Field(
        description="The area in words (e.g. Kecamatan Limpung)",
        min_length=1,
        max_length=MAX_REASON,
    )
    polygons: list[Annotated[list[Point], Field(max_length=MAX_POINTS)]] = Field(
        default_factory=list,
        description="Closed rings: at least four points, the last equal to the first",
        max_length=MAX_SHAPES,
    )
    circles: list[Circle] = Field(default_factory=list, max_length=MAX_SHAPES)
    geocodes: list[Geocode] = Field(default_factory=list, max_length=MAX_SHAPES)


class AlertReference(Contract):
    """An earlier message an Update or Cancel refers to (CAP `sender,identifier,sent`)."""

    sender: CapName = Field(description="Sender of the earlier message", max_length=MAX_NAME)
    identifier: CapName = Field(
        description="Identifier of the earlier message", max_length=MAX_NAME
    )
    sent: AwareInstant = Field(description="When the earlier message was sent")


class CapAlert(Contract):
    """One CAP 1.2 alert message with one `info` block (one language) and one `area`."""

    identifier: CapName = Field(
        description="Unique for its sender; no spaces, commas, < or &", max_length=MAX_NAME
    )
    sender: CapName = Field(
        description="Who sends it, e.g. bpbd@batangkab.go.id", max_length=MAX_NAME
    )
    sent: AwareInstant = Field(description="When it was sent, with the sender's UTC offset")
    status: AlertStatus = Field(default="Actual", description="Actual, Exercise, System or Test")
    msg_type: MsgType = Field(description="Alert, or Update / Cancel of earlier messages")
    source: str | None = Field(
        default=None, description="Who or what issued it (an officer, Siaga)", max_length=MAX_NAME
    )
    scope: Scope = Field(default="Public", description="Public, Restricted or Private")
    restriction: str | None = Field(
        default=None,
        description="Who may see it: only when scope is Restricted",
        max_length=MAX_NAME,
    )
    note: str | None = Field(
        default=None, description="Why (the reason of a Cancel)", max_length=MAX_REASON
    )
    references: list[AlertReference] = Field(
        default_factory=list,
        description="The earlier messages of its thread (at least one for Update and Cancel)",
        max_length=MAX_SHAPES,
    )
    incident_id: UUID | None = Field(default=None, description="The Siaga incident it is about")
    language: str = Field(default="id-ID", description="RFC 3066 language", max_length=MAX_CODE)
    categories: list[CapCategory] = Field(
        description="CAP categories (Geo, Met, ...)", min_length=1, max_length=12
    )
    event: str = Field(
        description="The kind of event (e.g. Banjir)", min_length=1, max_length=MAX_NAME
    )
    response_types: list[ResponseType] = Field(
        default_factory=list,
        description="What people should do (Evacuate, Monitor, ...)",
        max_length=9,
    )
    urgency: Urgency = Field(description="Immediate, Expected, Future, Past or Unknown")
    severity: Severity = Field(description="Extreme, Severe, Moderate, Minor or Unknown")
    certainty: Certainty = Field(description="Observed, Likely, Possible, Unlikely or Unknown")
    effective: AwareInstant | None = Field(default=None, description="In effect from")
    onset: AwareInstant | None = Field(default=None, description="When the hazard is expected")
    expires: AwareInstant | None = Field(default=None, description="In effect until")
    sender_name: str | None = Field(
        default=None, description="The sender as people know it", max_length=MAX_NAME
    )
    headline: str | None = Field(default=None, description="One short line", max_length=MAX_NAME)
    description: str | None = Field(default=None, description="What happens", max_length=MAX_TEXT)
    instruction: str | None = Field(default=None, description="What to do", max_length=MAX_TEXT)
    web: str | None = Field(
        default=None,
        description="A web page about it",
        max_length=MAX_REASON,
        pattern=r"^https?://\S+$",
    )
    contact: str | None = Field(default=None, description="Whom to call", max_length=MAX_NAME)
    area: AlertArea = Field(description="Where it applies")

    @model_validator(mode="after")
    def _follows_cap(self) -> CapAlert:
        problems = alert_rule_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def reference(self) -> AlertReference:
        """How a later message of its thread names this one."""
        return AlertReference(sender=self.sender, identifier=self.identifier, sent=self.sent)

    def next_message(self, *, identifier: str, sent: datetime, **changes: Any) -> CapAlert:
        """The next message of this alert's thread (an Update or Cancel, `changes` saying
        what differs), checked as any alert is. It references the whole thread, so a
        reader that missed a message still learns what it replaces; it is effective when
        sent."""
        fields = self.model_dump()
        fields.update(
            identifier=identifier,
            sent=sent,
            effective=sent,
            references=[self.reference(), *self.references],
            **changes,
        )
        return CapAlert.model_validate(fields)


def alert_rule_problems(alert: CapAlert) -> list[str]:
    """What in `alert` breaks a rule of CAP 1.2 that its XML Schema does not check: an
    Update or Cancel names what it updates or cancels, polygons are closed rings of four
    points or more, a restriction goes with scope Restricted (and only with it), and no
    message references itself; empty when it follows them all."""
    problems: list[str] = []
    if alert.msg_type in ("Update", "Cancel") and not alert.references:
        problems.append(f"an {alert.msg_type} must reference the message(s) it replaces")
    if any(r.identifier == alert.identifier and r.sender == alert.sender for r in alert.references):
        problems.append("a message cannot reference itself")
    if alert.scope == "Restricted" and not (alert.restriction or "").strip():
        problems.append("scope Restricted needs a restriction saying who may see it")
    if alert.scope != "Restricted" and alert.restriction is not None:
        problems.append(f"a restriction is only for scope Restricted, not {alert.scope}")
    problems += ring_problems(alert.area.polygons)
    if alert.effective and alert.expires and alert.expires < alert.effective:
        problems.append("expires before it is effective")
    return problems


def ring_problems(polygons: list[list[Point]]) -> list[str]:
    """Why some of `polygons` are no CAP polygon: each is a closed ring of four points or
    more (the last equal to the first); empty when all are."""
    problems = []
    for n, ring in enumerate(polygons, start=1):
        if len(ring) < 4:
            problems.append(f"polygon {n} has {len(ring)} points; a closed ring needs 4 or more")
        elif ring[0] != ring[-1]:
            problems.append(f"polygon {n} is not closed: its last point must equal its first")
    return problems
