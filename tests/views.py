"""Read-model values for unit tests: an incident as `find_incident` returns it, built from a
plain one (just opened from a 112 call, not yet classified) and the fields a test changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.projector.queries import IncidentView, TimelineEntry

OPENED_AT = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def incident_view(**changes: Any) -> IncidentView:
    """An incident just opened from a 112 call, with `changes` applied."""
    base: dict[str, Any] = dict(
        incident_id=uuid.UUID("0b7a6f0e-3c1d-4f7e-9a51-2f4a9d7c1e01"),
        status="received",
        category=None,
        priority=None,
        agency=None,
        confidence=None,
        explanation=None,
        needs_review=False,
        needs_confirmation=False,
        life_threat=None,
        questions=(),
        review=None,
        channel="call112",
        text="",
        kecamatan=None,
        desa=None,
        lat=None,
        lon=None,
        received_at=OPENED_AT,
        first_dispatched_at=None,
        resolved_at=None,
        intake_ids=(),
        units=(),
        timeline=(
            TimelineEntry(OPENED_AT, "siaga.incident.opened.v1", "opened from call112 intake"),
        ),
    )
    return IncidentView(**{**base, **changes})
