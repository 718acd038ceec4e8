"""Run cards: which units go to which category and priority, and how fast they travel.

Both are data, read from the regency's data pack (`runcards.toml`) and checked at load;
`SIAGA_DISPATCHER_RUN_CARDS` may still override single cards (a JSON object).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, PositiveFloat

from schemas.vocabulary import Category, Priority, UnitType
from services.common.datapack import DataFileError, read_toml


@dataclass(frozen=True)
class Slot:
    """One unit of a run card: its type, and a capability to prefer (e.g. ALS)."""

    unit_type: UnitType
    capability: str | None = None

    @classmethod
    def parse(cls, text: str) -> Slot:
        """`ambulance` or `ambulance:ALS`."""
        kind, _, capability = text.partition(":")
        return cls(UnitType(kind.strip()), capability.strip() or None)

    def __str__(self) -> str:
        return (
            f"{self.unit_type.value}:{self.capability}" if self.capability else self.unit_type.value
        )


class Travel(NamedTuple):
    """An estimate of a unit's trip: road distance (km) and travel time (s)."""

    road_km: float
    seconds: int


@dataclass(frozen=True)
class TravelSpeeds:
    """How fast each kind of unit travels, and how much longer roads are than a line."""

    speed_kmh: Mapping[UnitType, float]
    road_factor: float
    lights_and_sirens: float

    def estimate(self, distance_km: float, *, unit_type: UnitType, priority: Priority) -> Travel:
        """The trip from a straight-line distance; a P1 goes with lights and sirens."""
        road_km = distance_km * self.road_factor
        speed = self.speed_kmh[unit_type] * (
            self.lights_and_sirens if priority is Priority.P1 else 1.0
        )
        return Travel(round(road_km, 2), int(road_km / speed * 3600))


def _slot(text: object) -> Slot:
    if not isinstance(text, str):
        raise ValueError('a unit is a string, "unit_type" or "unit_type:capability"')
    kind = text.partition(":")[0].strip()
    if kind not in {t.value for t in UnitType}:
        raise ValueError(f"unknown unit type (one of {', '.join(UnitType)})")
    return Slot.parse(text)


SlotEntry = Annotated[Slot, PlainValidator(_slot)]


class RunCardsFile(BaseModel):
    """`runcards.toml` as written: speeds, road factor and a table of cards per category."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    road_factor: float = Field(ge=1, description="Road distance per straight-line km")
    lights_and_sirens: float = Field(ge=1, description="Speed factor of a unit sent to a P1")
    speed_kmh: dict[UnitType, PositiveFloat] = Field(description="Average speed per unit type")
    cards: dict[Category, dict[Priority, list[SlotEntry]]] = Field(
        description="Per category, the slots each priority sends (none: a work order)"
    )


class RunCards:
    """The run cards in force, with the travel speeds that rank the units they call for."""

    def __init__(
        self, cards: Mapping[tuple[Category, Priority], tuple[Slot, ...]], *, speeds: TravelSpeeds
    ) -> None:
        self._cards = dict(cards)
        self.speeds = speeds

    @classmethod
    def load(cls, path: Path) -> RunCards:
        """The run cards of `path`; `DataFileError` names the file and the bad entry."""
        found = read_toml(path, RunCardsFile)
        missing = [t.value for t in UnitType if t not in found.speed_kmh]
        if missing:
            raise DataFileError(f"{path}: speed_kmh: no speed for {', '.join(missing)}")
        uncarded = [c.value for c in Category if c not in found.cards]
        if uncarded:
            raise DataFileError(
                f"{path}: cards: no card for {', '.join(uncarded)} "
                "(an empty [cards.<category>] table sends no unit)"
            )
        empty = [f"{c}.{p}" for c, by in found.cards.items() for p, s in by.items() if not s]
        if empty:
            raise DataFileError(
                f"{path}: cards.{empty[0]}: no units (leave the priority out to send none)"
            )
        cards = {
            (category, priority): tuple(slots)
            for category, by_priority in found.cards.items()
            for priority, slots in by_priority.items()
        }
        speeds = TravelSpeeds(
            speed_kmh=dict(found.speed_kmh),
            road_factor=found.road_factor,
            lights_and_sirens=found.lights_and_sirens,
        )
        return cls(cards, speeds=speeds)

    def with_overrides(self, text: str | None) -> RunCards:
        """These cards, overridden by `{"fire/P1": ["fire_truck", "ambulance:ALS"], ...}`."""
        cards = dict(self._cards)
        if text:
            try:
                for key, slots in json.loads(text).items():
                    category, _, priority = key.partition("/")
                    cards[(Category(category), Priority(priority))] = tuple(
                        Slot.parse(s) for s in slots
                    )
            except (ValueError, AttributeError, TypeError) as exc:
                raise ValueError(f"bad run cards setting: {exc}") from None
        return RunCards(cards, speeds=self.speeds)

    def slots(self, category: Category, priority: Priority) -> tuple[Slot, ...]:
        """Units to send, in order; empty when no unit goes (agency work order instead)."""
        return self._cards.get((category, priority), ())

    def travel(self, distance_km: float, *, unit_type: UnitType, priority: Priority) -> Travel:
        """The trip of a unit of `unit_type` over a straight-line `distance_km`."""
        return self.speeds.estimate(distance_km, unit_type=unit_type, priority=priority)
