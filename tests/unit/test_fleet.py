"""The starter fleet and its registration events."""

from __future__ import annotations

from schemas.vocabulary import UnitType
from services.common.datapack import resolve_pack
from services.common.gazetteer import load_gazetteer
from services.dispatcher.fleet import registration_events, starter_fleet
from services.dispatcher.runcards import RunCards

PACK = resolve_pack(None)


def test_starter_fleet_covers_every_kind_of_unit_with_unique_ids() -> None:
    gazetteer = load_gazetteer(PACK)
    fleet = starter_fleet(gazetteer, facilities=PACK.facilities)
    ids = [u.unit_id for u in fleet]
    assert len(ids) == len(set(ids))
    assert {u.unit_type for u in fleet} == set(UnitType)
    police = [u for u in fleet if u.unit_type is UnitType.POLICE]
    assert {u.kecamatan for u in police} == {k.name for k in gazetteer.kecamatan}
    # an ambulance at each puskesmas of the facilities file whose kecamatan is known
    assert sum(u.unit_id.startswith("AMB-PKM-") for u in fleet) == 21
    assert len(fleet) == 49


def test_a_pack_without_facilities_has_no_puskesmas_ambulances() -> None:
    fleet = starter_fleet(load_gazetteer(PACK), facilities=None)
    assert len(fleet) == 28 and not any(u.unit_id.startswith("AMB-PKM-") for u in fleet)


def test_registration_ids_repeat_for_the_same_fleet() -> None:
    gazetteer = load_gazetteer(PACK)
    fleet = starter_fleet(gazetteer, facilities=PACK.facilities)
    first = [e.id for e in registration_events(fleet, gazetteer)]
    again = [e.id for e in registration_events(fleet, gazetteer)]
    assert first == again


def test_travel_estimate_is_faster_with_lights_and_sirens() -> None:
    from schemas.vocabulary import Priority

    run_cards = RunCards.load(PACK.run_cards)
    _, p1 = run_cards.travel(10, unit_type=UnitType.AMBULANCE, priority=Priority.P1)
    km, p2 = run_cards.travel(10, unit_type=UnitType.AMBULANCE, priority=Priority.P2)
    assert km == 13.5 and p1 < p2
