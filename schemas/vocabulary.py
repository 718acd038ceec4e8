"""The shared vocabulary of DESIGN.md: channels, categories, priorities, unit and incident states."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Where a report came in."""

    CALL112 = "call112"
    PSC119 = "psc119"
    WHATSAPP = "whatsapp"
    INSTAGRAM = "instagram"
    YOUTUBE = "youtube"
    WEB = "web"
    SMS = "sms"

    @property
    def is_emergency_line(self) -> bool:
        """True for the voice lines staffed by call-takers (112 and PSC 119)."""
        return self in (Channel.CALL112, Channel.PSC119)


class Category(StrEnum):
    """What a report is about; each has a default agency and priority."""

    MEDICAL = "medical"
    FIRE = "fire"
    TRAFFIC_ACCIDENT = "traffic_accident"
    CRIME = "crime"
    DISASTER = "disaster"
    RESCUE = "rescue"
    INFRASTRUCTURE = "infrastructure"
    ENVIRONMENT = "environment"
    SOCIAL_WELFARE = "social_welfare"
    CIVIL_REGISTRY = "civil_registry"
    HEALTH_SERVICE = "health_service"
    PUBLIC_ORDER = "public_order"
    UTILITIES = "utilities"
    INFORMATION = "information"
    PRANK = "prank"
    GHOST = "ghost"


# Reports that are no incident at all: neither units nor an agency's work order are sent.
NOT_INCIDENTS = frozenset({Category.PRANK, Category.GHOST})


class Priority(StrEnum):
    """P1 immediate threat to life, P2 urgent, P3 non-urgent service, P4 information."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class UnitType(StrEnum):
    """Kinds of field unit the dispatcher can send."""

    AMBULANCE = "ambulance"
    FIRE_TRUCK = "fire_truck"
    POLICE = "police"
    RESCUE = "rescue"
    BPBD_TEAM = "bpbd_team"
    PUBLIC_WORKS_CREW = "public_works_crew"


class UnitStatus(StrEnum):
    """What a field unit is doing, as it reports it."""

    AVAILABLE = "available"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    TRANSPORTING = "transporting"
    AT_HOSPITAL = "at_hospital"
    RETURNING = "returning"
    OUT_OF_SERVICE = "out_of_service"


class IncidentStatus(StrEnum):
    """Where an incident is in its lifecycle (the tracker's state machine)."""

    RECEIVED = "received"
    CLASSIFIED = "classified"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    TRANSPORTING = "transporting"
    AT_HOSPITAL = "at_hospital"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    MERGED = "merged"


# The statuses that end an incident: no step follows, no call joins it, no unit is sent to
# it, and nothing more is done for the citizen's request behind it.
ENDED_STATUSES = frozenset(
    {
        IncidentStatus.RESOLVED,
        IncidentStatus.CLOSED,
        IncidentStatus.CANCELLED,
        IncidentStatus.MERGED,
    }
)
