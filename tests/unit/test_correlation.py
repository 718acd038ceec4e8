"""Duplicate-call correlation as a pure rule: same category, near in time and space."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas.common import Place
from schemas.vocabulary import Category, Priority
from services.triage.bootstrap import TriageSettings
from services.triage.correlation import Call, OpenIncident, find_link, may_repeat

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
