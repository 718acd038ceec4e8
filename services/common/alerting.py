"""The regency's public-alert policy (`alerts.toml` of the data pack): the sender, the
language and time zone of alerts, the hazards a disaster report can be about, and the
areas (kecamatan and desa outlines) an alert can cover."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from schemas.cap import AlertArea, CapCategory, Geocode, Point, ResponseType
from schemas.common import Place
from services.common.datapack import DataFileError, DataPack, read_toml
from services.common.gazetteer import Area, Gazetteer, load_gazetteer, normalise

# Outline vertices are rounded to 5 decimals (about a metre): what an alert prints is
# what it stores, and no outline of the pack needs more.
DECIMALS = 5


def _zone(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone (e.g. Asia/Jakarta)") from None


class HazardEntry(BaseModel):
    """One kind of hazard as `alerts.toml` writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: str = Field(min_length=1, max_length=200)
    category: CapCategory
    response: list[ResponseType] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    instruction: str = Field(min_length=1, max_length=4000)


class AlertsFile(BaseModel):
    """`alerts.toml` as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender: str = Field(pattern=r"^[^\s,<&]+$", max_length=200)
    sender_name: str = Field(min_length=1, max_length=200)
    language: str = Field(default="id-ID", max_length=64)
    timezone: Annotated[ZoneInfo, PlainValidator(_zone)] = Field(default=ZoneInfo("Asia/Jakarta"))
    contact: str | None = Field(default=None, max_length=200)
    web: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=500)
    expires_hours: float = Field(default=12, gt=0, le=24 * 30)
    geocode_name: str = Field(default="kemendagri", min_length=1, max_length=64)
    hazards: dict[str, HazardEntry] = Field(min_length=1)
    default: HazardEntry


@dataclass(frozen=True)
class Hazard:
    """A kind of hazard an alert can be about, and what the alert says of it."""

    name: str
    event: str
    category: CapCategory
    response: tuple[ResponseType, ...]
    words: tuple[str, ...]
    instruction: str


def _hazard(name: str, entry: HazardEntry) -> Hazard:
    words = tuple(
        sorted({normalise(w) for w in entry.words if normalise(w)}, key=len, reverse=True)
    )
    return Hazard(
        name, entry.event, entry.category, tuple(entry.response), words, entry.instruction
    )


@dataclass(frozen=True)
class Outlines:
    """Area outlines by Kemendagri code: the exterior rings of each area's polygons, as
    closed CAP rings of (lat, lon) points; and the regency's own code, if the file has it."""

    rings: dict[str, tuple[tuple[Point, ...], ...]]
    regency_code: str | None


def _ring(coordinates: list[list[float]]) -> tuple[Point, ...]:
    """A GeoJSON ring (lon, lat) as a closed CAP ring, rounded, without repeated vertices."""
    points: list[Point] = []
    for lon, lat, *_ in coordinates:
        point = Point(lat=round(lat, DECIMALS), lon=round(lon, DECIMALS))
        if not points or points[-1] != point:
            points.append(point)
    if points and points[0] != points[-1]:
        points.append(points[0])
    return tuple(points)


@cache
def load_outlines(path: Path | None) -> Outlines:
    """The exterior rings of every area of a boundaries GeoJSON (none without one)."""
    if path is None:
        return Outlines({}, None)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataFileError(f"{path}: cannot be read as GeoJSON ({exc})") from None
    rings: dict[str, tuple[tuple[Point, ...], ...]] = {}
    regency = None
    for feature in data.get("features", []):
        props = feature.get("properties") or {}
        code = str(props.get("kode") or props.get("code") or "").strip()
        geometry = feature.get("geometry") or {}
        kind, coordinates = geometry.get("type"), geometry.get("coordinates")
        if not code or kind not in ("Polygon", "MultiPolygon") or not coordinates:
            continue
        polygons = [coordinates] if kind == "Polygon" else coordinates
        found = tuple(r for r in (_ring(p[0]) for p in polygons if p) if len(r) >= 4)
        if found:
            rings[code] = found
        if str(props.get("level", "")).lower() in ("kabupaten", "kota"):
            regency = code
    return Outlines(rings, regency)


@dataclass(frozen=True)
class AlertPolicy:
    """What every alert of the regency says of its sender, and how one is worded and placed."""

    sender: str
    sender_name: str
    language: str
    zone: ZoneInfo
    contact: str | None
    web: str | None
    expires_after: timedelta
    geocode_name: str
    hazards: tuple[Hazard, ...]
    default: Hazard
    gazetteer: Gazetteer
    outlines: Outlines

    def local(self, at: datetime) -> datetime:
        """`at` in the regency's zone, to the second (CAP times have no fractions)."""
        return at.astimezone(self.zone).replace(microsecond=0)

    def hazard(self, name: str) -> Hazard | None:
        """The hazard of this name (`flood`, `landslide`, ...), or None."""
        return next((h for h in self.hazards if h.name == name), None)

    def hazard_in(self, text: str) -> Hazard:
        """The hazard a report's words name: the one with the longest matching words (the
        first of the file on a tie), else the default."""
        padded = f" {normalise(text)} "
        best: tuple[int, int, Hazard] | None = None
        for order, hazard in enumerate(self.hazards):
            found = next((w for w in hazard.words if f" {w} " in padded), None)
            if found and (best is None or (len(found), -order) > best[:2]):
                best = (len(found), -order, hazard)
        return best[2] if best else self.default

    def kecamatan(self, name: str) -> Area | None:
        """A kecamatan by its name (any case, `Kecamatan`/`Kec.` before it or not) or code."""
        key = normalise(name).removeprefix("kecamatan ").removeprefix("kec ")
        for area in self.gazetteer.kecamatan:
            if key == area.key or name.strip() == area.code:
                return area
        return None

    def area_of(self, areas: list[Area]) -> AlertArea:
        """An alert's area covering kecamatan or desa: their names, outlines and codes."""
        regency = self.gazetteer.regency
        names = [self._name_of(a) for a in areas]
        return AlertArea(
            area_desc=", ".join([*names, regency] if regency else names),
            polygons=[list(r) for a in areas for r in self.outlines.rings.get(a.code, ())],
            geocodes=[self._geocode(a.code) for a in areas],
        )

    def area_of_place(self, place: Place | None) -> AlertArea:
        """The area of an incident's place: its desa when known, else its kecamatan, else
        the whole regency."""
        found = None
        if place is not None:
            found = self.gazetteer.by_code(place.desa_code) or self.gazetteer.by_code(
                place.kecamatan_code
            )
        if found is None:
            return self._regency_area()
        if found.level == "kecamatan":
            return self.area_of([found])
        kecamatan = self.gazetteer.kecamatan_of(found)
        return AlertArea(
            area_desc=f"{self._name_of(found)}, {self._name_of(kecamatan)}, "
            f"{self.gazetteer.regency}",
            polygons=[list(r) for r in self.outlines.rings.get(found.code, ())],
            geocodes=[self._geocode(kecamatan.code), self._geocode(found.code)],
        )

    def _regency_area(self) -> AlertArea:
        code = self.outlines.regency_code
        return AlertArea(
            area_desc=self.gazetteer.regency or "seluruh wilayah",
            polygons=[list(r) for r in self.outlines.rings.get(code or "", ())],
            geocodes=[self._geocode(code)] if code else [],
        )

    def _geocode(self, code: str) -> Geocode:
        return Geocode(value_name=self.geocode_name, value=code)

    @staticmethod
    def _name_of(area: Area) -> str:
        return f"{area.level.title()} {area.name}"


def load_alert_policy(pack: DataPack) -> AlertPolicy:
    """The data pack's alert policy, its hazards, gazetteer and outlines, checked at load."""
    written = read_toml(pack.alerts, AlertsFile)
    return AlertPolicy(
        sender=written.sender,
        sender_name=written.sender_name,
        language=written.language,
        zone=written.timezone,
        contact=written.contact,
        web=written.web,
        expires_after=timedelta(hours=written.expires_hours),
        geocode_name=written.geocode_name,
        hazards=tuple(_hazard(name, entry) for name, entry in written.hazards.items()),
        default=_hazard("default", written.default),
        gazetteer=load_gazetteer(pack),
        outlines=load_outlines(pack.boundaries),
    )
