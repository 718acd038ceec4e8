"""What the field unit's page shows a crew, without a database: the order, the distance,
the words in both languages, and only the buttons the dispatcher would accept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas.vocabulary import Priority, UnitType
from schemas.vocabulary import UnitStatus as U
from services.common.datapack import BUILTIN_PACK
from services.common.geo import haversine_km
from services.common.readable import eta_minutes, wib_time
from services.dispatcher.runcards import RunCards
from services.dispatcher.unit_reports import next_statuses, state_on_board
from services.gateway.pages import STRINGS, TEMPLATES
from services.gateway.unit_view import BUTTONS, UnitView, decimal, distance_text, unit_view
from services.projector.queries import BoardUnit, IncidentUnit, IncidentView

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
INCIDENT = uuid.UUID("3f2a9c1d-0000-4000-8000-000000000001")
SPEEDS = RunCards.load(BUILTIN_PACK / "runcards.toml").speeds
# Limpung's health centre and a place about 5.6 km north-east of it.
HOME = (-7.0265, 109.9207)
PLACE = (-6.9900, 109.9600)


def board(status: str | None = "dispatched", *, on: uuid.UUID | None = INCIDENT) -> BoardUnit:
    return BoardUnit(
        unit_id="AMB-LIMPUNG",
        unit_type="ambulance",
        status=status,
        incident_id=on,
        assigned_at=NOW - timedelta(minutes=2),
        cleared_incident_id=None,
        status_at=NOW - timedelta(minutes=1),
        lat=HOME[0],
        lon=HOME[1],
    )


def incident(**changes: object) -> IncidentView:
    fields: dict[str, object] = dict(
        incident_id=INCIDENT,
        status="dispatched",
        category="medical",
        priority="P1",
        agency="psc119",
        confidence=0.9,
        explanation=None,
        needs_review=False,
        needs_confirmation=False,
        life_threat="unconscious",
        questions=("Apakah pasien bernapas?",),
        review=None,
        channel="call112",
        text="bapak saya pingsan tidak sadar, hubungi 0812-3456-7890",
        kecamatan="Limpung",
        desa="Sidomulyo",
        lat=PLACE[0],
        lon=PLACE[1],
        received_at=NOW - timedelta(minutes=3),
        first_dispatched_at=NOW - timedelta(minutes=2),
        resolved_at=None,
        intake_ids=(),
        units=(IncidentUnit("AMB-LIMPUNG", "ambulance", "dispatched", NOW, 400),),
        timeline=(),
    )
    fields.update(changes)
    return IncidentView(**fields)  # type: ignore[arg-type]


def view(
    lang: str = "id", unit: BoardUnit | None = None, found: IncidentView | None = None
) -> UnitView:
    return unit_view(
        "AMB-LIMPUNG",
        unit or board(),
        found or incident(),
        now=NOW,
        speeds=SPEEDS,
        t=STRINGS[lang],
        lang=lang,
    )


def test_times_are_wib_and_numbers_as_each_language_writes_them() -> None:
    assert wib_time(NOW) == "15:00 WIB"
    assert wib_time(NOW + timedelta(seconds=9), seconds=True) == "15:00:09 WIB"
    assert decimal(3.25, "id") == "3,2" and decimal(3.26, "en") == "3.3"
    assert distance_text(5.64, 7, STRINGS["en"], "en") == "straight-line 5.6 km, ~7 min"
    assert distance_text(5.64, 7, STRINGS["id"], "id") == "garis lurus 5,6 km, ± 7 menit"
    assert distance_text(5.64, None, STRINGS["en"], "en") == "straight-line 5.6 km"


def test_the_order_says_what_where_how_far_and_masks_the_callers_number() -> None:
    shown = view("en")
    order = shown.order
    assert order is not None
    assert (order.short_id, order.category, order.priority) == ("3f2a9c1d", "Medical", "P1")
    assert order.place == "Sidomulyo, Kec. Limpung"
    assert order.coordinates == "-6.99000, 109.96000"
    assert order.map_uri == "geo:-6.990000,109.960000?q=-6.990000,109.960000"
    assert order.text is not None and "3456-7890" not in order.text and "**" in order.text
    assert order.questions == ("Apakah pasien bernapas?",)
    assert order.ordered_at == "15:00 WIB"
    # the dispatcher's own estimate: road factor, ambulance speed, lights and sirens for a P1
    km = haversine_km(*HOME, *PLACE)
    trip = SPEEDS.estimate(km, unit_type=UnitType.AMBULANCE, priority=Priority.P1)
    assert 5 < km < 6 and order.distance is not None
    assert order.distance == f"straight-line {km:.1f} km, ~{eta_minutes(trip.seconds)} min"
    assert (shown.status_label, shown.since) == ("Dispatched", "14:59 WIB")
    assert view("id").order.category == "Medis"  # type: ignore[union-attr]


def test_the_distance_is_left_out_once_there_or_where_a_position_is_unknown() -> None:
    assert view(unit=board("on_scene")).order.distance is None  # type: ignore[union-attr]
    nowhere = incident(lat=None, lon=None, desa=None, kecamatan=None)
    order = view("en", found=nowhere).order
    assert order is not None and order.distance is None and order.coordinates is None
    assert order.place.startswith("Place not known yet")


@pytest.mark.parametrize("status", ["dispatched", "en_route", "on_scene", "at_hospital"])
def test_only_the_statuses_the_dispatcher_would_accept_are_enabled(status: str) -> None:
    shown = view(unit=board(status))
    legal = next_statuses(state_on_board(board(status)), now=NOW, among=BUTTONS)
    assert [b.status for b in shown.buttons] == [s.value for s in BUTTONS]
    assert {b.status for b in shown.buttons if b.enabled} == {s.value for s in legal}
    assert status not in {b.status for b in shown.buttons if b.enabled}


def test_a_free_unit_has_no_order_and_an_unknown_one_no_button() -> None:
    free = view(unit=board("available", on=None))
    assert free.order is None and not any(b.enabled for b in free.buttons)
    assert free.status_label == "Tersedia"
    unknown = unit_view("AMB-TYPO", None, None, now=NOW, speeds=SPEEDS, t=STRINGS["en"], lang="en")
    assert not unknown.known and not any(b.enabled for b in unknown.buttons)
    withdrawn = view("en", unit=board("cancelled", on=None))
    assert withdrawn.status_label == "Order withdrawn"
    assert [b.status for b in withdrawn.buttons if b.enabled] == []


def test_the_rendered_order_escapes_what_callers_wrote() -> None:
    shown = view("en", found=incident(text="<script>alert(1)</script> tolong"))
    html = TEMPLATES.get_template("unit_order.html").render(view=shown, t=STRINGS["en"])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'class="order card prio-P1"' in html
    assert html.count("disabled") == 0  # a dispatched unit may press every step
    assert U.ACKNOWLEDGED.value in html
