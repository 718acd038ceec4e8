"""Run cards: which kinds of unit go to which category, and how fast they travel."""

from __future__ import annotations

from schemas.vocabulary import Category, Priority, UnitType

RUN_CARDS: dict[Category, tuple[UnitType, ...]] = {
    Category.MEDICAL: (UnitType.AMBULANCE,),
    Category.FIRE: (UnitType.FIRE_TRUCK,),
    Category.TRAFFIC_ACCIDENT: (UnitType.AMBULANCE, UnitType.POLICE),
    Category.CRIME: (UnitType.POLICE,),
    Category.DISASTER: (UnitType.BPBD_TEAM,),
    Category.RESCUE: (UnitType.RESCUE,),
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


def run_card(category: Category, priority: Priority) -> tuple[UnitType, ...]:
    """Unit types to send, in order; empty when no unit goes (agency work order instead)."""
    if priority not in (Priority.P1, Priority.P2):
        return ()
    return RUN_CARDS.get(category, ())


def travel(distance_km: float, unit_type: UnitType, priority: Priority) -> tuple[float, int]:
    """Estimated road distance (km) and travel time (s) from a straight-line distance."""
    road_km = distance_km * ROAD_FACTOR
    speed = SPEED_KMH[unit_type] * (1.2 if priority is Priority.P1 else 1.0)
    return round(road_km, 2), int(road_km / speed * 3600)
