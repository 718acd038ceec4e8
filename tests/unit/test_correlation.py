"""Duplicate-call correlation as a pure rule: same category, near in time and space."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas.common import Place
from schemas.events import IncidentResolvedV1, IncidentStatusChangedV1
from schemas.vocabulary import Category, IncidentStatus, Priority
from services.common.geo import haversine_km
from services.triage.bootstrap import TriageSettings
from services.triage.correlation import (
    Call,
    Nearby,
    OpenIncident,
    ends_incident,
    find_link,
    may_repeat,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RULE = TriageSettings(duplicate_window_s=600, duplicate_radius_km=1.0).duplicate_rule()
TUMBREP = (-7.0581, 109.8121)


def _place(lat: float, lon: float) -> Place:
    return Place(lat=lat, lon=lon, confidence=0.9, method="desa")


def _call(
    *,
    category: Category = Category.FIRE,
    priority: Priority = Priority.P1,
    at: datetime = T0,
    where: tuple[float, float] | None = TUMBREP,
    review: bool = False,
) -> Call:
    place = _place(*where) if where else None
    return Call(category, priority, place, at, review)


def _incident(
    *,
    category: Category = Category.FIRE,
    priority: Priority = Priority.P1,
    at: datetime = T0,
    where: tuple[float, float] = TUMBREP,
) -> OpenIncident:
    return OpenIncident(uuid.uuid4(), category, priority, where[0], where[1], at)


def test_a_second_call_about_the_same_fire_joins_it() -> None:
    fire = _incident()
    link = find_link(_call(at=T0 + timedelta(seconds=90)), [fire], RULE)
    assert link is not None and link.incident_id == fire.incident_id
    assert "same fire" in link.reason and "90 s" in link.reason


@pytest.mark.parametrize(
    ("call", "why"),
    [
        (_call(at=T0 + timedelta(minutes=11)), "outside the time window"),
        (_call(where=(-7.0581, 109.8321)), "2.2 km away"),
        (_call(category=Category.RESCUE), "another category"),
        (_call(where=None), "no place"),
        (_call(review=True), "a human must triage it first"),
    ],
)
def test_calls_that_are_not_the_same_incident_open_their_own(call: Call, why: str) -> None:
    assert find_link(call, [_incident()], RULE) is None, why


def test_a_more_urgent_call_is_dispatched_on_its_own() -> None:
    crash = _incident(category=Category.TRAFFIC_ACCIDENT, priority=Priority.P2)
    worse = _call(category=Category.TRAFFIC_ACCIDENT, priority=Priority.P1)
    assert find_link(worse, [crash], RULE) is None
    same = _call(category=Category.TRAFFIC_ACCIDENT, priority=Priority.P2)
    assert find_link(same, [crash], RULE) is not None


def test_the_nearest_open_incident_wins() -> None:
    far = _incident(where=(-7.0581, 109.8201))
    near = _incident(where=(-7.0585, 109.8125))
    link = find_link(_call(), [far, near], RULE)
    assert link is not None and link.incident_id == near.incident_id


def test_medical_calls_are_never_merged_by_default() -> None:
    assert not may_repeat(_call(category=Category.MEDICAL, priority=Priority.P2), RULE)


def test_unknown_categories_in_the_setting_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown categories: firre"):
        TriageSettings(duplicate_categories="fire,firre")


@pytest.mark.parametrize("lat", [-7.06, 0.0, 51.5, -78.0, 89.995])
@pytest.mark.parametrize("radius_km", [0.3, 1.5, 12.0])
def test_the_cells_around_a_place_hold_every_incident_within_the_radius(
    lat: float, radius_km: float
) -> None:
    rng = random.Random(f"{lat}/{radius_km}")
    spread = 4 * radius_km / 111.0  # degrees: most incidents near, many just out of reach
    incidents = [
        _incident(
            where=(
                max(-90.0, min(90.0, lat + rng.uniform(-spread, spread))),
                rng.uniform(109.0 - spread * 10, 109.0 + spread * 10)
                if abs(lat) > 80
                else 109.8 + rng.uniform(-spread, spread),
            )
        )
        for _ in range(400)
    ]
    nearby = Nearby(radius_km)
    nearby.add_all(incidents)
    for _ in range(100):
        here = (
            incidents[rng.randrange(len(incidents))].lat + rng.uniform(-spread, spread) / 4,
            109.8 + rng.uniform(-spread, spread),
        )
        here = (max(-90.0, min(90.0, here[0])), here[1])
        within = {
            i.incident_id for i in incidents if haversine_km(*here, i.lat, i.lon) <= radius_km
        }
        candidates = {i.incident_id for i in nearby.around(*here)}
        assert within <= candidates
        if abs(lat) < 60:
            # The cells do narrow it down: far fewer than all of them are compared.
            assert len(candidates) < len(incidents) / 2


def test_a_call_links_to_the_same_incident_through_the_cells_as_through_them_all() -> None:
    rng = random.Random(7)
    incidents = [
        _incident(
            where=(-7.06 + rng.uniform(-0.1, 0.1), 109.8 + rng.uniform(-0.1, 0.1)),
            at=T0 + timedelta(seconds=rng.randrange(-500, 500)),
            priority=rng.choice([Priority.P1, Priority.P2]),
        )
        for _ in range(300)
    ]
    nearby = Nearby(RULE.radius_km)
    nearby.add_all(incidents)
    nearby.remove(incidents[0].incident_id)
    left = incidents[1:]
    linked = 0
    for _ in range(200):
        where = (-7.06 + rng.uniform(-0.1, 0.1), 109.8 + rng.uniform(-0.1, 0.1))
        call = _call(where=where, priority=rng.choice([Priority.P1, Priority.P2]))
        through_cells = find_link(call, list(nearby.around(*where)), RULE)
        assert through_cells == find_link(call, left, RULE)
        linked += through_cells is not None
    assert 0 < linked < 200


def test_the_cells_fall_back_to_every_incident_where_they_cannot_bound_the_radius() -> None:
    """Across the antimeridian, for a radius of a quarter of the globe, and for a place the
    grid cannot file (not a finite point on the globe), every incident is a candidate; an
    incident stored off the globe is still considered, and it breaks no look-up."""
    fiji = _incident(where=(-17.8, 179.999))
    samoa = _incident(where=(-17.8, -179.999))
    adrift = _incident(where=(float("nan"), 109.8))
    far_off = _incident(where=(-7.06, 200.0))
    nearby = Nearby(1.5)
    nearby.add_all([fiji, samoa, adrift, far_off])
    assert haversine_km(fiji.lat, fiji.lon, samoa.lat, samoa.lon) < 1.5
    assert samoa in list(nearby.around(fiji.lat, fiji.lon))
    assert {i.incident_id for i in nearby.around(-7.06, 109.8)} == {
        adrift.incident_id,
        far_off.incident_id,
    }
    for lat, lon in ((float("nan"), 109.8), (-7.06, float("inf")), (95.0, 0.0)):
        assert len(list(nearby.around(lat, lon))) == 4
    huge = Nearby(11_100)
    huge.add(_incident(where=(80.0, -150.0)))
    assert len(list(huge.around(0.0, 0.0))) == 1


@pytest.mark.parametrize("status", list(IncidentStatus))
def test_only_a_resolution_or_an_ending_status_ends_an_incident(status: IncidentStatus) -> None:
    """Resolved, closed, cancelled and merged end an incident (it takes no more calls); any
    other step, as most of the incident events triage reads are, ends nothing."""
    at = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    change = IncidentStatusChangedV1(
        incident_id=uuid.uuid4(), from_status=None, to_status=status, changed_at=at, reason="t"
    )
    ending = {
        IncidentStatus.RESOLVED,
        IncidentStatus.CLOSED,
        IncidentStatus.CANCELLED,
        IncidentStatus.MERGED,
    }
    assert ends_incident(change) is (status in ending)
    assert ends_incident(IncidentResolvedV1(incident_id=uuid.uuid4(), resolved_at=at, units=[]))
