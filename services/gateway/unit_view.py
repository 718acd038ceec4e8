"""What the field unit's page shows a crew, from the board and its order's incident: pure
functions, the clock and the words passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from schemas.vocabulary import Priority, UnitStatus, UnitType
from services.common.geo import haversine_km
from services.common.readable import eta_minutes, mask_phones_in, wib_time
from services.dispatcher.runcards import TravelSpeeds
from services.dispatcher.unit_reports import next_statuses, state_on_board
from services.projector.queries import BoardUnit, IncidentView

# The steps a crew reports from its phone, in the order it goes through them.
BUTTONS: tuple[UnitStatus, ...] = (
    UnitStatus.ACKNOWLEDGED,
    UnitStatus.EN_ROUTE,
    UnitStatus.ON_SCENE,
    UnitStatus.TRANSPORTING,
    UnitStatus.AT_HOSPITAL,
    UnitStatus.AVAILABLE,
)
# Until the crew is there, how far the place is matters; afterwards it does not.
APPROACHING = frozenset({UnitStatus.DISPATCHED, UnitStatus.ACKNOWLEDGED, UnitStatus.EN_ROUTE})


@dataclass(frozen=True)
class Button:
    """A status the crew may press: enabled only when the dispatcher would accept it."""

    status: str
    label: str
    enabled: bool


@dataclass(frozen=True)
class OrderView:
    """The unit's current order as the crew reads it."""

    incident_id: str
    short_id: str
    category: str
    priority: str | None
    place: str
    coordinates: str | None
    map_uri: str | None
    distance: str | None
    text: str | None
    questions: tuple[str, ...]
    ordered_at: str | None


@dataclass(frozen=True)
class UnitView:
    """The whole page's content for one unit."""

    unit_id: str
    known: bool  # the fleet has the unit
    status: str
    status_label: str
    since: str | None
    order: OrderView | None
    buttons: tuple[Button, ...]


def decimal(value: float, lang: str, *, digits: int = 1) -> str:
    """A number as people of `lang` write it: 3,2 in Indonesian, 3.2 in English."""
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "id" else text


def status_label(status: str | None, t: Mapping[str, str]) -> str:
    """A unit status in the page's language (the raw value when there is no word for it)."""
    value = status or UnitStatus.AVAILABLE.value
    return t.get(f"unit_status_{value}", value)


def approach(
    unit: BoardUnit, incident: IncidentView, *, speeds: TravelSpeeds
) -> tuple[float, int | None] | None:
    """The straight-line km from the unit's last known position to the place, and the
    minutes the dispatcher's estimate gives for the trip (None for a unit type it has no
    speed for); None when either position is unknown."""
    if unit.lat is None or unit.lon is None or incident.lat is None or incident.lon is None:
        return None
    km = haversine_km(unit.lat, unit.lon, incident.lat, incident.lon)
    try:
        unit_type = UnitType(unit.unit_type or "")
    except ValueError:
        return km, None
    priority = Priority.P1 if incident.priority == Priority.P1.value else Priority.P2
    if unit_type not in speeds.speed_kmh:
        return km, None
    trip = speeds.estimate(km, unit_type=unit_type, priority=priority)
    return km, eta_minutes(trip.seconds)


def distance_text(km: float, minutes: int | None, t: Mapping[str, str], lang: str) -> str:
    """`straight-line 3.2 km, ~6 min` (no road distance is known: the minutes are the
    dispatcher's estimate from it)."""
    if minutes is None:
        return t["unit_distance_only"].format(km=decimal(km, lang))
    return t["unit_distance"].format(km=decimal(km, lang), min=minutes)


def place_text(incident: IncidentView, t: Mapping[str, str]) -> str:
    """Desa and kecamatan, as far as they are known."""
    named = [incident.desa] if incident.desa else []
    if incident.kecamatan:
        named.append(t["unit_kecamatan"].format(name=incident.kecamatan))
    return ", ".join(named) if named else t["unit_place_unknown"]


def order_view(
    unit: BoardUnit,
    incident: IncidentView,
    *,
    speeds: TravelSpeeds,
    t: Mapping[str, str],
    lang: str,
) -> OrderView:
    """The order: what, how urgent, where and how far, what the caller said (numbers
    masked), what to ask."""
    lat, lon = incident.lat, incident.lon
    placed = lat is not None and lon is not None
    status = state_on_board(unit).status
    trip = approach(unit, incident, speeds=speeds) if status in APPROACHING else None
    mine = next((u for u in incident.units if u.unit_id == unit.unit_id), None)
    category = incident.category or ""
    return OrderView(
        incident_id=str(incident.incident_id),
        short_id=str(incident.incident_id)[:8],
        category=t.get(f"unit_category_{category}", category) or t["unit_category_unknown"],
        priority=incident.priority,
        place=place_text(incident, t),
        coordinates=f"{lat:.5f}, {lon:.5f}" if placed else None,
        map_uri=f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}" if placed else None,
        distance=None if trip is None else distance_text(*trip, t, lang),
        text=mask_phones_in(incident.text) if incident.text else None,
        questions=tuple(mask_phones_in(q) for q in incident.questions),
        ordered_at=wib_time(mine.dispatched_at) if mine and mine.dispatched_at else None,
    )


def unit_view(
    unit_id: str,
    unit: BoardUnit | None,
    incident: IncidentView | None,
    *,
    now: datetime,
    speeds: TravelSpeeds,
    t: Mapping[str, str],
    lang: str,
) -> UnitView:
    """The page of `unit_id`: its status, its order if it has one, and the buttons, only
    the statuses the dispatcher would accept now enabled."""
    if unit is None:
        return UnitView(
            unit_id=unit_id,
            known=False,
            status="",
            status_label=t["unit_not_in_fleet"],
            since=None,
            order=None,
            buttons=tuple(Button(s.value, status_label(s.value, t), False) for s in BUTTONS),
        )
    legal = set(next_statuses(state_on_board(unit), now=now, among=BUTTONS))
    order = None
    if incident is not None and unit.incident_id == incident.incident_id:
        order = order_view(unit, incident, speeds=speeds, t=t, lang=lang)
    return UnitView(
        unit_id=unit.unit_id,
        known=True,
        status=unit.status or UnitStatus.AVAILABLE.value,
        status_label=status_label(unit.status, t),
        since=wib_time(unit.status_at) if unit.status_at else None,
        order=order,
        buttons=tuple(Button(s.value, status_label(s.value, t), s in legal) for s in BUTTONS),
    )
