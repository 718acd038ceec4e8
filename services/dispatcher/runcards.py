"""Run cards: which units go to which category and priority, and how fast they travel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from schemas.vocabulary import Category, Priority, UnitType


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


A, F, P = UnitType.AMBULANCE, UnitType.FIRE_TRUCK, UnitType.POLICE
ALS = Slot(A, "ALS")

DEFAULT_RUN_CARDS: dict[tuple[Category, Priority], tuple[Slot, ...]] = {
    (Category.MEDICAL, Priority.P1): (ALS,),
    (Category.MEDICAL, Priority.P2): (Slot(A),),
    # A house fire that threatens lives: two engines and an ambulance.
    (Category.FIRE, Priority.P1): (Slot(F), Slot(F), Slot(A)),
    (Category.FIRE, Priority.P2): (Slot(F),),
    # A serious crash (the toll road, Pantura): police and two ambulances.
    (Category.TRAFFIC_ACCIDENT, Priority.P1): (Slot(P), ALS, Slot(A)),
    (Category.TRAFFIC_ACCIDENT, Priority.P2): (Slot(P), Slot(A)),
    (Category.CRIME, Priority.P1): (Slot(P), Slot(P)),
    (Category.CRIME, Priority.P2): (Slot(P),),
    (Category.DISASTER, Priority.P1): (Slot(UnitType.BPBD_TEAM), Slot(UnitType.RESCUE), Slot(A)),
    (Category.DISASTER, Priority.P2): (Slot(UnitType.BPBD_TEAM),),
    (Category.RESCUE, Priority.P1): (Slot(UnitType.RESCUE), Slot(A)),
    (Category.RESCUE, Priority.P2): (Slot(UnitType.RESCUE),),
}

# Average road speed in km/h; lights and sirens on P1.
SPEED_KMH: dict[UnitType, float] = {
    UnitType.AMBULANCE: 45.0,
    UnitType.FIRE_TRUCK: 35.0,
    UnitType.POLICE: 50.0,
    UnitType.RESCUE: 40.0,
    UnitType.BPBD_TEAM: 35.0,
    UnitType.PUBLIC_WORKS_CREW: 30.0,
}
ROAD_FACTOR = 1.35  # Batang's roads wind: straight-line distance times this


class RunCards:
    """The run cards in force: the defaults with any configured overrides."""

    def __init__(self, cards: Mapping[tuple[Category, Priority], tuple[Slot, ...]]) -> None:
        self._cards = dict(cards)

    @classmethod
    def from_json(cls, text: str | None) -> RunCards:
        """Defaults, overridden by `{"fire/P1": ["fire_truck", "ambulance:ALS"], ...}`."""
        cards = dict(DEFAULT_RUN_CARDS)
        if text:
            try:
                for key, slots in json.loads(text).items():
                    category, _, priority = key.partition("/")
                    cards[(Category(category), Priority(priority))] = tuple(
                        Slot.parse(s) for s in slots
                    )
            except (ValueError, AttributeError, TypeError) as exc:
                raise ValueError(f"bad run cards setting: {exc}") from None
        return cls(cards)

    def slots(self, category: Category, priority: Priority) -> tuple[Slot, ...]:
        """Units to send, in order; empty when no unit goes (agency work order instead)."""
        return self._cards.get((category, priority), ())


def travel(distance_km: float, unit_type: UnitType, priority: Priority) -> tuple[float, int]:
    """Estimated road distance (km) and travel time (s) from a straight-line distance."""
    road_km = distance_km * ROAD_FACTOR
    speed = SPEED_KMH[unit_type] * (1.2 if priority is Priority.P1 else 1.0)
    return round(road_km, 2), int(road_km / speed * 3600)
