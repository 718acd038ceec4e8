"""The dispatcher's decisions without a database: what an incident needs, which unit goes,
the order, the escalation and the work order (the clock is passed in)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas.common import Place
from schemas.events import IncidentClassifiedV1, TriageReviewedV1
from schemas.vocabulary import Category, Channel, Priority, UnitStatus, UnitType
from services.common.datapack import BUILTIN_PACK, RUN_CARDS
from services.dispatcher.decisions import (
    FreeUnit,
    Need,
    dispatch,
    escalation,
    rank_units,
    response_to_classification,
    response_to_review,
    still_needed,
    withdrawal,
    work_order,
)
from services.dispatcher.runcards import RunCards, Slot

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
INCIDENT = uuid.UUID("00000000-0000-4000-8000-000000000001")
CARDS = RunCards.load(BUILTIN_PACK / RUN_CARDS)
SCENE = Place(kecamatan="Batang", lat=-6.9, lon=109.73, confidence=0.9, method="desa")
FALLBACK = (-6.95, 109.8)
A, F, P = UnitType.AMBULANCE, UnitType.FIRE_TRUCK, UnitType.POLICE


def _classified(category: Category, priority: Priority, **more: object) -> IncidentClassifiedV1:
    fields: dict[str, object] = {
        "incident_id": INCIDENT,
        "category": category,
        "priority": priority,
        "agency": "x",
        "confidence": 0.9,
        "explanation": "e",
        "needs_review": False,
        "sla_seconds": 60,
        "text": "t",
        "channel": Channel.CALL112,
        "received_at": NOW - timedelta(minutes=3),
        "place": SCENE,
        "classified_at": NOW,
    }
    return IncidentClassifiedV1.model_validate(fields | more)


def _reviewed(category: Category, priority: Priority) -> TriageReviewedV1:
    return TriageReviewedV1(
        incident_id=INCIDENT,
        decision="raised",
        category=category,
        priority=priority,
        agency="x",
        sla_seconds=60,
        previous_category=category,
        previous_priority=Priority.P2,
        reviewed_by="ct-1",
        reviewed_at=NOW,
        text="t",
        channel=Channel.CALL112,
        received_at=NOW - timedelta(minutes=3),
        place=SCENE,
    )


def test_a_house_fire_p1_needs_each_unit_of_its_run_card_in_order() -> None:
    response = response_to_classification(_classified(Category.FIRE, Priority.P1), CARDS)
    assert [(n.slot, n.wanted.unit_type) for n in response.needs] == [(0, F), (1, F), (2, A)]
    assert all(n.place == SCENE and n.priority is Priority.P1 for n in response.needs)
    assert not response.work_order


@pytest.mark.parametrize(
    ("category", "priority", "needs_review", "work_order"),
    [
        (Category.INFRASTRUCTURE, Priority.P3, False, True),  # a complaint: an agency's order
        (Category.PRANK, Priority.P4, False, False),
        (Category.GHOST, Priority.P4, False, False),
        (Category.FIRE, Priority.P1, True, False),  # held for a human: nothing is guessed
    ],
)
def test_what_gets_no_unit(
    category: Category, priority: Priority, needs_review: bool, work_order: bool
) -> None:
    incident = _classified(category, priority, needs_review=needs_review)
    response = response_to_classification(incident, CARDS)
    assert response.needs == () and response.work_order is work_order


def test_a_review_sends_what_the_new_card_needs_beyond_what_went() -> None:
    # an ambulance went for a P2 medical; raised to a P1 fire: two engines more, numbered on
    taken = {0: Slot(A)}
    response = response_to_review(_reviewed(Category.FIRE, Priority.P1), CARDS, taken=taken)
    assert [(n.slot, n.wanted.unit_type) for n in response.needs] == [(1, F), (2, F)]
    lowered = response_to_review(
        _reviewed(Category.FIRE, Priority.P2), CARDS, taken=taken | {1: Slot(F)}
    )
    assert lowered.needs == ()  # nobody is recalled


def test_a_slot_naming_a_capability_is_not_covered_by_a_unit_without_it() -> None:
    assert still_needed([Slot(A, "ALS")], {0: Slot(A)}) == [Slot(A, "ALS")]
    assert still_needed([Slot(A)], {0: Slot(A, "ALS")}) == []


def _need(capability: str | None = None, place: Place | None = SCENE) -> Need:
    return Need(INCIDENT, 0, Slot(A, capability), Category.MEDICAL, Priority.P1, place)


def test_the_unit_with_the_capability_goes_before_a_nearer_one_without_it() -> None:
    units = [
        FreeUnit("AMB-NEAR", (), -6.9, 109.731),
        FreeUnit("AMB-ALS-FAR", ("ALS",), -7.0, 109.9),
        FreeUnit("AMB-ALS-NEAR", ("ALS",), -6.91, 109.74),
    ]
    assert rank_units(_need("ALS"), units, fallback=FALLBACK) == [
        "AMB-ALS-NEAR",
        "AMB-ALS-FAR",
        "AMB-NEAR",
    ]
    # without a capability asked for, the nearest goes
    assert rank_units(_need(), units, fallback=FALLBACK)[0] == "AMB-NEAR"


def test_a_unit_passed_over_for_the_incident_is_not_offered_again_and_ties_go_by_name() -> None:
    units = [FreeUnit("B", (), -6.9, 109.73), FreeUnit("A", (), -6.9, 109.73)]
    assert rank_units(_need(), units, fallback=FALLBACK) == ["A", "B"]
    assert rank_units(_need(), units, passed_over={"A"}, fallback=FALLBACK) == ["B"]


def test_an_incident_without_a_place_is_ranked_from_the_fallback_point() -> None:
    units = [FreeUnit("AT-SCENE", (), -6.9, 109.73), FreeUnit("AT-FALLBACK", (), -6.95, 109.8)]
    assert rank_units(_need(place=None), units, fallback=FALLBACK)[0] == "AT-FALLBACK"


def test_an_order_is_named_by_its_cause_and_slot_and_due_to_be_acknowledged() -> None:
    kwargs = {
        "unit_id": "AMB-1",
        "unit_type": A,
        "unit_at": (-6.95, 109.73),
        "run_cards": CARDS,
        "fallback": FALLBACK,
        "ack_timeout": timedelta(seconds=90),
        "cause_id": "cause-1",
        "now": NOW,
    }
    first = dispatch(_need(), **kwargs)  # type: ignore[arg-type]
    again = dispatch(_need(), **kwargs)  # type: ignore[arg-type]
    assert first.order.dispatch_id == again.order.dispatch_id  # a redelivery sends the same
    assert first.ack_due_at == NOW + timedelta(seconds=90)
    assert first.order.dispatched_at == NOW and first.order.unit_id == "AMB-1"
    assert 5 < first.order.distance_km < 10  # 0.05 degrees of latitude, by road
    p2 = dispatch(
        Need(INCIDENT, 0, Slot(A), Category.MEDICAL, Priority.P2, SCENE),
        **kwargs,  # type: ignore[arg-type]
    )
    assert first.order.eta_seconds < p2.order.eta_seconds  # lights and sirens for a P1
    other_slot = dispatch(
        Need(INCIDENT, 1, Slot(A), Category.MEDICAL, Priority.P1, SCENE),
        **kwargs,  # type: ignore[arg-type]
    )
    assert other_slot.order.dispatch_id != first.order.dispatch_id


def test_escalation_withdrawal_and_work_order_carry_the_time_given() -> None:
    escalated = escalation(_need(), now=NOW)
    assert escalated.escalated_at == NOW and escalated.unit_type is A
    assert "no ambulance free" in escalated.reason
    cancelled = withdrawal(
        dispatch_id=uuid.uuid4(),
        incident_id=INCIDENT,
        unit_id="AMB-1",
        reason="no acknowledgement in time",
        unit_after=UnitStatus.OUT_OF_SERVICE,
        now=NOW,
    )
    assert cancelled.cancelled_at == NOW
    assert cancelled.unit_status_after is UnitStatus.OUT_OF_SERVICE
    complaint = _classified(Category.INFRASTRUCTURE, Priority.P3)
    order = work_order(complaint, summary="jalan berlubang", due_after=timedelta(days=3), now=NOW)
    # the 3 days run from the citizen's report, not from triage
    assert order.due_at == complaint.received_at + timedelta(days=3)
    assert order.issued_at == NOW
    assert (
        order.work_order_id
        == work_order(
            complaint, summary="x", due_after=timedelta(days=3), now=NOW + timedelta(hours=1)
        ).work_order_id
    )
