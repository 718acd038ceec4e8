"""The incident state machine: forward steps, late facts, illegal steps."""

from __future__ import annotations

import pytest

from schemas.vocabulary import IncidentStatus as S
from services.tracker.lifecycle import IllegalTransition, advance


def test_steps_go_forward() -> None:
    assert advance(None, S.RECEIVED) is S.RECEIVED
    assert advance(S.RECEIVED, S.CLASSIFIED) is S.CLASSIFIED
    assert advance(S.DISPATCHED, S.ON_SCENE) is S.ON_SCENE  # a skipped step is fine
    assert advance(S.RESOLVED, S.CLOSED) is S.CLOSED


def test_a_late_earlier_fact_changes_nothing() -> None:
    assert advance(S.DISPATCHED, S.CLASSIFIED) is None
    assert advance(S.ON_SCENE, S.EN_ROUTE) is None  # a second unit still on its way
    assert advance(S.RESOLVED, S.DISPATCHED) is None


@pytest.mark.parametrize("step", [S.ACKNOWLEDGED, S.EN_ROUTE, S.ON_SCENE, S.TRANSPORTING])
def test_unit_progress_on_a_finished_incident_is_illegal(step: S) -> None:
    for finished in (S.RESOLVED, S.CLOSED, S.CANCELLED):
        with pytest.raises(IllegalTransition):
            advance(finished, step)


def test_cancel_and_merge_from_any_open_state() -> None:
    assert advance(S.EN_ROUTE, S.CANCELLED) is S.CANCELLED
    assert advance(S.RECEIVED, S.MERGED) is S.MERGED
