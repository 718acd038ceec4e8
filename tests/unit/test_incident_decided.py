"""`siaga incident show --wait` waits until the pipeline has decided an incident: classified,
and its units or work order sent, or nothing to send (a prank, a silent call, a report a
human triages first)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.cli.incidents import decided
from services.projector.queries import IncidentUnit, IncidentView, Review, TimelineEntry
from tests.views import incident_view

T0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
OPENED = TimelineEntry(T0, "siaga.incident.opened.v1", "opened from call112 intake")
CLASSIFIED = TimelineEntry(T0, "siaga.incident.classified.v1", "classified medical P1")


def _view(**values: Any) -> IncidentView:
    """A classified P1 medical incident (no unit yet), with `values` applied."""
    classified: dict[str, Any] = dict(
        category="medical",
        priority="P1",
        agency="PSC 119",
        confidence=0.9,
        explanation="medical (0.90)",
        life_threat="certain",
        timeline=(OPENED, CLASSIFIED),
    )
    return incident_view(**{**classified, **values})


def test_an_incident_not_yet_classified_is_not_decided() -> None:
    assert not decided(_view(category=None, priority=None, timeline=(OPENED,)))


def test_a_classified_emergency_waits_for_its_units() -> None:
    assert not decided(_view())
    ambulance = IncidentUnit("AMB-PKM-LIMPUNG", "ambulance", "dispatched", T0, 60)
    assert decided(_view(units=(ambulance,), status="dispatched"))


@pytest.mark.parametrize(
    "answer",
    [
        "siaga.dispatch.work_order_issued.v1",  # a complaint's agency has it
        "siaga.incident.escalated.v1",  # no unit free: a supervisor is told
    ],
)
def test_a_work_order_or_an_escalation_is_the_dispatchers_answer(answer: str) -> None:
    entry = TimelineEntry(T0, answer, "")
    assert decided(_view(category="infrastructure", priority="P3", timeline=(OPENED, entry)))


@pytest.mark.parametrize("category", ["prank", "ghost"])
def test_nothing_is_sent_for_a_prank_or_a_silent_call(category: str) -> None:
    assert decided(_view(category=category, priority="P4"))


def test_a_report_held_for_review_waits_for_a_human_not_for_units() -> None:
    assert decided(_view(needs_review=True, priority="P3", category="infrastructure"))
    reviewed = Review(decision="confirmed", by="sari", at=T0, note=None)
    # Once a call-taker has decided, the units or work order it calls for are awaited.
    assert not decided(_view(needs_review=True, review=reviewed))
