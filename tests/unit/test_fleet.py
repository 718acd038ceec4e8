"""The starter fleet and its registration events."""

from __future__ import annotations

from pathlib import Path

from schemas.vocabulary import UnitType
from services.common.gazetteer import builtin_batang, load_gazetteer
from services.dispatcher.fleet import registration_events, starter_fleet
from services.dispatcher.runcards import travel

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_starter_fleet_covers_every_kind_of_unit_with_unique_ids() -> None:
    data = SHARED if SHARED.is_dir() else None
    gazetteer = load_gazetteer(data)
    fleet = starter_fleet(gazetteer, data)
    ids = [u.unit_id for u in fleet]
    assert len(ids) == len(set(ids))
    assert {u.unit_type for u in fleet} == set(UnitType)
    police = [u for u in fleet if u.unit_type is UnitType.POLICE]
    assert {u.kecamatan for u in police} == {k.name for k in gazetteer.kecamatan}
    if data:  # an ambulance at each puskesmas of the facilities file
        assert sum(u.unit_id.startswith("AMB-PKM-") for u in fleet) >= 20


def test_registration_ids_repeat_for_the_same_fleet() -> None:
    gazetteer = builtin_batang()
    fleet = starter_fleet(gazetteer, None)
    first = [e.id for e in registration_events(fleet, gazetteer)]
    again = [e.id for e in registration_events(fleet, gazetteer)]
    assert first == again


def test_travel_estimate_is_faster_with_lights_and_sirens() -> None:
    from schemas.vocabulary import Priority

    _, p1 = travel(10, UnitType.AMBULANCE, Priority.P1)
    km, p2 = travel(10, UnitType.AMBULANCE, Priority.P2)
    assert km == 13.5 and p1 < p2
