"""Typed look-up results: a place through the jsonb codec, the rows `--json` prints, and
the incident `siaga incident show` presents, all without a database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.common import Place
from services.cli.incidents import _incident_json, _print_incident
from services.dispatcher.repository import place_json, place_of
from services.projector.queries import (
    IncidentSummary,
    IncidentUnit,
    IncidentView,
    Review,
    ReviewItem,
    TimelineEntry,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _through_the_codec(value: Any) -> Any:
    """What the pool's jsonb codec does to a value on its way in and back out."""
    return json.loads(json.dumps(value))


def test_a_place_comes_back_from_jsonb_as_it_went_in() -> None:
    place = Place(
        kecamatan_code="33.25.11",
        kecamatan="Limpung",
        desa="Sempu",
        lat=-7.0123456789,
        lon=109.9,
        confidence=0.8,
        method="desa",
        matched="sempu limpung",
    )
    assert place_of(_through_the_codec(place_json(place))) == place
    assert place_json(None) is None and place_of(None) is None


def test_a_review_item_prints_the_summary_fields_then_its_own_in_order() -> None:
    item = ReviewItem(
        incident_id=uuid.UUID(int=1),
        status="classified",
        category="medical",
        priority="P1",
        agency="PSC 119",
        kecamatan="Limpung",
        needs_review=False,
        needs_confirmation=True,
        received_at=T0,
        units=None,
        confidence=0.4,
        explanation="sesak napas",
        text="bapak saya sesak napas",
        questions=("apakah bisa bicara?",),
        life_threat="breathing",
    )
    summary_fields = list(IncidentSummary.__dataclass_fields__)
    assert list(item.to_json())[: len(summary_fields)] == summary_fields
    assert list(item.to_json())[len(summary_fields) :] == [
        "confidence",
        "explanation",
        "text",
        "questions",
        "life_threat",
    ]
    assert json.loads(json.dumps(item.to_json(), default=str))["questions"] == [
        "apakah bisa bicara?"
    ]


def _incident(review: Review | None) -> IncidentView:
    return IncidentView(
        incident_id=uuid.UUID(int=2),
        status="dispatched",
        category="fire",
        priority="P1",
        agency="Damkar",
        confidence=0.9,
        explanation="kebakaran",
        needs_review=False,
        needs_confirmation=False,
        life_threat=None,
        questions=(),
        review=review,
        channel="call112",
        text="rumah terbakar, hubungi 081234567890",
        kecamatan="Subah",
        desa=None,
        lat=-6.9,
        lon=109.8,
        received_at=T0,
        first_dispatched_at=T0,
        resolved_at=None,
        intake_ids=(uuid.UUID(int=3),),
        units=(IncidentUnit("FIRE-BATANG", "fire_truck", "dispatched", T0, 60),),
        timeline=(
            TimelineEntry(T0, "UnitDispatched", "FIRE-BATANG dispatched, call 081234567890"),
        ),
    )


def test_the_shown_incident_masks_numbers_and_keeps_its_keys() -> None:
    shown = _incident_json(_incident(None))
    assert list(shown) == [
        "incident_id", "status", "category", "priority", "agency", "confidence",
        "explanation", "needs_review", "needs_confirmation", "life_threat", "questions",
        "review", "channel", "text", "kecamatan", "desa", "lat", "lon", "received_at",
        "first_dispatched_at", "resolved_at", "intake_ids", "units", "timeline",
    ]  # fmt: skip
    assert shown["review"] is None and shown["questions"] == []
    assert shown["intake_ids"] == [uuid.UUID(int=3)]
    assert shown["units"] == [
        {"unit_id": "FIRE-BATANG", "unit_type": "fire_truck", "status": "dispatched"}
    ]
    assert "081234567890" not in shown["text"]
    (step,) = shown["timeline"]
    assert list(step) == ["at", "event_type", "summary"] and "081234567890" not in step["summary"]


def test_a_reviewed_incident_shows_who_decided_and_the_note_masked() -> None:
    shown = _incident_json(_incident(Review("lowered", "ct-7", T0, "ditelepon 081234567890")))
    assert list(shown["review"]) == ["decision", "by", "at", "note"]
    assert shown["review"]["decision"] == "lowered" and shown["review"]["by"] == "ct-7"
    assert "081234567890" not in shown["review"]["note"]


def test_an_incident_the_tracker_has_not_stepped_yet_shows_as_received(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shown = _incident_json(_incident(None))
    shown["status"] = None  # the tracker's first status is not in the read model yet
    _print_incident(shown)
    assert "status    received\n" in capsys.readouterr().out
