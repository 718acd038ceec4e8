"""The one check of a unit's report, without a database: the clock is passed in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas.events import IntakeReceivedV1, UnitStatusReportedV1
from schemas.vocabulary import UnitStatus as U
from services.dispatcher.unit_reports import (
    Accepted,
    Refused,
    UnitState,
    check_report,
    next_statuses,
    state_on_board,
)
from services.projector.queries import BoardUnit

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
ORDERED = NOW - timedelta(minutes=10)
A, B = uuid.uuid4(), uuid.uuid4()


def unit(status: U = U.DISPATCHED, *, on: uuid.UUID | None = A) -> UnitState:
    return UnitState(
        unit_id="AMB-PSC119-1",
        unit_type="ambulance",
        status=status,
        incident_id=on,
        last_incident_id=on or A,
        ordered_at=ORDERED,
    )


def report(
    status: U, *, on: uuid.UUID | None = A, at: datetime = NOW, who: str = "AMB-PSC119-1"
) -> UnitStatusReportedV1:
    return UnitStatusReportedV1(unit_id=who, status=status, incident_id=on, reported_at=at)


def test_a_unit_on_its_order_goes_forward() -> None:
    for before, after in [
        (U.DISPATCHED, U.ACKNOWLEDGED),
        (U.DISPATCHED, U.EN_ROUTE),  # a step skipped
        (U.EN_ROUTE, U.ON_SCENE),
        (U.ON_SCENE, U.TRANSPORTING),
        (U.AT_HOSPITAL, U.RETURNING),
        (U.ON_SCENE, U.ON_SCENE),  # said twice
    ]:
        verdict = check_report(unit(before), report(after), now=NOW)
        assert verdict == Accepted(incident_id=A, previous=before), (before, after)


def test_a_report_naming_no_incident_is_about_the_units_order() -> None:
    assert check_report(unit(U.DISPATCHED), report(U.EN_ROUTE, on=None), now=NOW) == Accepted(
        incident_id=A, previous=U.DISPATCHED
    )


def test_a_unit_the_fleet_does_not_know_touches_nothing() -> None:
    verdict = check_report(None, report(U.ON_SCENE, who="AMB-TYPO-2"), now=NOW)
    assert isinstance(verdict, Refused) and verdict.kind == "unknown_unit"
    assert "AMB-TYPO-2" in verdict.reason


@pytest.mark.parametrize("status", [U.ACKNOWLEDGED, U.EN_ROUTE, U.ON_SCENE, U.RETURNING])
def test_a_step_of_an_order_needs_an_open_order(status: U) -> None:
    verdict = check_report(unit(U.AVAILABLE, on=None), report(status, on=B), now=NOW)
    assert isinstance(verdict, Refused) and verdict.kind == "no_order"


def test_a_step_on_another_incident_than_the_units_order_is_refused() -> None:
    verdict = check_report(unit(U.EN_ROUTE), report(U.ON_SCENE, on=B), now=NOW)
    assert isinstance(verdict, Refused) and verdict.kind == "not_its_incident"


def test_a_step_back_is_refused_and_dispatched_is_the_dispatchers_word() -> None:
    back = check_report(unit(U.TRANSPORTING), report(U.ON_SCENE), now=NOW)
    assert isinstance(back, Refused) and back.kind == "illegal_transition"
    assert "on_scene after transporting" in back.reason
    own = check_report(unit(U.AVAILABLE, on=None), report(U.DISPATCHED, on=None), now=NOW)
    assert isinstance(own, Refused) and own.kind == "illegal_transition"


def test_a_unit_is_freed_only_by_a_report_naming_its_order() -> None:
    assert check_report(unit(U.RETURNING), report(U.AVAILABLE), now=NOW) == Accepted(
        incident_id=A, previous=U.RETURNING
    )
    for named in (None, B):  # sent before the crew saw its new order
        verdict = check_report(unit(U.DISPATCHED), report(U.AVAILABLE, on=named), now=NOW)
        assert isinstance(verdict, Refused) and verdict.kind == "not_its_incident"


def test_a_free_unit_may_say_so_and_name_only_the_incident_it_came_back_from() -> None:
    free = unit(U.AVAILABLE, on=None)
    assert check_report(free, report(U.AVAILABLE, on=None), now=NOW) == Accepted(
        incident_id=None, previous=U.AVAILABLE
    )
    assert check_report(free, report(U.OUT_OF_SERVICE, on=A), now=NOW) == Accepted(
        incident_id=A, previous=U.AVAILABLE
    )
    phantom = check_report(free, report(U.AVAILABLE, on=B), now=NOW)
    assert isinstance(phantom, Refused) and phantom.kind == "not_its_incident"


@pytest.mark.parametrize(
    "at",
    [
        NOW + timedelta(minutes=6),  # ahead of the dispatcher's clock
        NOW - timedelta(hours=25),  # a day old
        ORDERED - timedelta(minutes=6),  # before its order
    ],
)
def test_an_implausible_time_is_refused(at: datetime) -> None:
    verdict = check_report(unit(U.DISPATCHED), report(U.EN_ROUTE, at=at), now=NOW)
    assert isinstance(verdict, Refused) and verdict.kind == "implausible_time"


def test_a_clock_a_little_off_is_fine() -> None:
    for at in (NOW + timedelta(minutes=4), ORDERED - timedelta(minutes=4)):
        assert isinstance(check_report(unit(), report(U.EN_ROUTE, at=at), now=NOW), Accepted)


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"])
def test_no_event_carries_a_time_outside_this_century(when: str) -> None:
    with pytest.raises(ValidationError, match="a time between 2000 and 2099"):
        UnitStatusReportedV1.model_validate(
            {"unit_id": "AMB-1", "status": "en_route", "reported_at": when}
        )
    with pytest.raises(ValidationError, match="a time between 2000 and 2099"):
        IntakeReceivedV1.model_validate(
            {
                "intake_id": str(uuid.uuid4()),
                "channel": "call112",
                "received_at": when,
                "caller": {},
                "text": "kebakaran",
            }
        )


# ---------------------------------------------------------------- what a crew may press next

CREW = (U.ACKNOWLEDGED, U.EN_ROUTE, U.ON_SCENE, U.TRANSPORTING, U.AT_HOSPITAL, U.AVAILABLE)


@pytest.mark.parametrize(
    ("now_is", "offered"),
    [
        # steps may be skipped, never gone back; freeing is always open to a unit on order
        (U.DISPATCHED, CREW),
        (U.ACKNOWLEDGED, CREW[1:]),
        (U.EN_ROUTE, (U.ON_SCENE, U.TRANSPORTING, U.AT_HOSPITAL, U.AVAILABLE)),
        (U.ON_SCENE, (U.TRANSPORTING, U.AT_HOSPITAL, U.AVAILABLE)),
        (U.AT_HOSPITAL, (U.AVAILABLE,)),
    ],
)
def test_a_crew_on_an_order_is_offered_the_steps_ahead_and_freeing(
    now_is: U, offered: tuple[U, ...]
) -> None:
    assert next_statuses(unit(now_is), now=NOW, among=CREW) == offered


def test_a_free_unit_is_offered_no_step_and_an_unserviceable_one_may_come_back() -> None:
    assert next_statuses(unit(U.AVAILABLE, on=None), now=NOW, among=CREW) == ()
    assert next_statuses(unit(U.AVAILABLE, on=None), now=NOW) == (U.OUT_OF_SERVICE,)
    assert next_statuses(unit(U.OUT_OF_SERVICE, on=None), now=NOW, among=CREW) == (U.AVAILABLE,)
    # an order given "later" than the clock can tell (a clock far off) offers nothing
    early = NOW - timedelta(minutes=30)
    assert next_statuses(unit(U.DISPATCHED), now=early, among=CREW) == ()


@pytest.mark.parametrize("now_is", list(U))
@pytest.mark.parametrize("on", [A, None])
def test_what_is_offered_is_exactly_what_the_check_accepts(now_is: U, on: uuid.UUID | None) -> None:
    state = unit(now_is, on=on)
    offered = set(next_statuses(state, now=NOW))
    for status in U:
        verdict = check_report(state, report(status, on=on), now=NOW)
        assert (status in offered) == (isinstance(verdict, Accepted) and status is not now_is)
    assert U.DISPATCHED not in offered and now_is not in offered


def board(status: str | None, *, on: uuid.UUID | None, cleared: uuid.UUID | None) -> BoardUnit:
    return BoardUnit(
        unit_id="AMB-PSC119-1",
        unit_type="ambulance",
        status=status,
        incident_id=on,
        assigned_at=ORDERED,
        cleared_incident_id=cleared,
        status_at=ORDERED,
        lat=None,
        lon=None,
    )


def test_the_board_reads_as_the_dispatchers_state() -> None:
    assert state_on_board(board("en_route", on=A, cleared=B)) == UnitState(
        unit_id="AMB-PSC119-1",
        unit_type="ambulance",
        status=U.EN_ROUTE,
        incident_id=A,
        last_incident_id=A,
        ordered_at=ORDERED,
    )
    withdrawn = state_on_board(board("cancelled", on=None, cleared=A))
    assert (withdrawn.status, withdrawn.last_incident_id, withdrawn.ordered_at) == (
        U.AVAILABLE,
        A,
        None,
    )
    assert state_on_board(board(None, on=None, cleared=None)).status is U.AVAILABLE
