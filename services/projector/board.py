"""The unit board's rule: one pure function from a row and a change to the next row.

Events about a unit come from two topics (orders from the dispatcher, reports from the
unit's device), each with its own clock, and a rebuild reads the topics in a different
interleaving than live. So the board is the fold of `apply` over a unit's changes in time
order (`fold`; the repository keeps each change with the row after it and folds a late
one in where it belongs), which gives the same row whatever order they arrive in. Within
one assignment the furthest step wins, whatever the clocks say; between assignments the
later event wins. The board remembers the incident a unit last cleared and
when: an event naming it from before that moment belongs to the finished assignment (a
late order, or a report the tracker refused), so it cannot reopen or reshape it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
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
    cleared_incident_id: UUID | None = None
    cleared_at: datetime | None = None

    def columns(self) -> tuple[Any, ...]:
        """The fields in order, as the board's columns take them (`dataclasses.astuple`
        deep-copies every value: a noticeable part of the projector's time)."""
        return (
            self.status,
            self.status_at,
            self.incident_id,
            self.assigned_at,
            self.cleared_incident_id,
            self.cleared_at,
        )


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


def _of_finished_assignment(row: BoardRow, change: UnitChange) -> bool:
    return (
        change.incident_id is not None
        and change.incident_id == row.cleared_incident_id
        and row.cleared_at is not None
        and change.at <= row.cleared_at
    )


def _clears_an_earlier_round(row: BoardRow, change: UnitChange) -> bool:
    # The unit is on an incident again after clearing it (a late report reopened it); a
    # clear older than this round belongs to the earlier one.
    return (
        change.clears
        and change.incident_id is not None
        and change.incident_id == row.incident_id == row.cleared_incident_id
        and row.assigned_at is not None
        and change.at < row.assigned_at
    )


def apply(row: BoardRow | None, change: UnitChange) -> BoardRow:
    """The board row after `change`."""
    row = row or BoardRow(None, None, None, None)
    if _of_finished_assignment(row, change):
        return row
    if _clears_an_earlier_round(row, change):
        return replace(row, cleared_at=change.at)
    updated = _move(row, change)
    if (
        change.clears
        and change.incident_id is not None
        and (row.cleared_at is None or change.at >= row.cleared_at)
    ):
        updated = replace(updated, cleared_incident_id=change.incident_id, cleared_at=change.at)
    return updated


def _move(row: BoardRow, change: UnitChange) -> BoardRow:
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
    return replace(
        row,
        status=change.status,
        status_at=change.at,
        incident_id=incident_id,
        assigned_at=assigned_at,
    )


def fold(row: BoardRow | None, changes: list[UnitChange]) -> list[BoardRow]:
    """The row after each of `changes` (in the order given: time order), from `row`."""
    rows = []
    for change in changes:
        row = apply(row, change)
        rows.append(row)
    return rows
