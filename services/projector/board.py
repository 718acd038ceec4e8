"""The unit board's rule: one pure function from a row and a change to the next row.

Events about a unit come from two topics (orders from the dispatcher, reports from the
unit's device), each with its own clock, and a rebuild reads the topics in a different
interleaving than live. So within one assignment the furthest step wins, whatever the
clocks say; between assignments the later event wins. Either way the same events give
the same row in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

# Steps of one assignment, in the order a unit goes through them.
STEPS: tuple[str, ...] = (
    "dispatched",
    "acknowledged",
    "en_route",
    "on_scene",
    "transporting",
    "at_hospital",
    "returning",
    "available",
    "out_of_service",
    "cancelled",
)
RANK = {step: i for i, step in enumerate(STEPS)}
CLEARING = frozenset({"available", "out_of_service", "cancelled"})


@dataclass(frozen=True)
class BoardRow:
    """What the board shows for a unit."""

    status: str | None
    status_at: datetime | None
    incident_id: UUID | None
    assigned_at: datetime | None


@dataclass(frozen=True)
class UnitChange:
    """An order, a cancellation or a report; `incident_id` is the incident it names."""

    status: str
    at: datetime
    incident_id: UUID | None

    @property
    def clears(self) -> bool:
        """The unit leaves its incident behind."""
        return self.status in CLEARING


def furthest(current: str | None, proposed: str) -> str:
    """The later step of one assignment."""
    if current is None or RANK.get(proposed, -1) >= RANK.get(current, -1):
        return proposed
    return current


def _later(known: datetime | None, new: datetime) -> datetime:
    return new if known is None or new > known else known


def apply(row: BoardRow | None, change: UnitChange) -> BoardRow:
    """The board row after `change`."""
    row = row or BoardRow(None, None, None, None)
    same_assignment = change.incident_id is not None and change.incident_id == row.incident_id
    if same_assignment:
        # assigned_at: when the assignment began, its earliest event.
        updated = replace(
            row,
            status=furthest(row.status, change.status),
            status_at=_later(row.status_at, change.at),
            assigned_at=min(row.assigned_at or change.at, change.at),
        )
        if change.clears:
            updated = replace(
                updated, incident_id=None, assigned_at=_later(row.assigned_at, change.at)
            )
        return updated
    if row.status_at is not None and change.at < row.status_at:
        return row  # an older event of another assignment
    incident_id, assigned_at = row.incident_id, row.assigned_at
    if change.clears:
        incident_id, assigned_at = None, change.at
    elif change.incident_id is not None:
        incident_id, assigned_at = change.incident_id, change.at
    return BoardRow(change.status, change.at, incident_id, assigned_at)
