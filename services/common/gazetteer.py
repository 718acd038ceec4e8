"""The regency gazetteer: kecamatan and desa with codes and centroids, from the official file."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from services.common.datapack import DataPack, DataPackError

REGION_COLUMNS = frozenset({"code", "level", "name", "parent_code", "lat", "lon"})


@dataclass(frozen=True)
class Area:
    """A kecamatan or desa/kelurahan."""

    code: str
    level: str  # kecamatan | desa | kelurahan
    name: str
    parent_code: str | None
    lat: float
    lon: float

    @property
    def key(self) -> str:
        """Normalised name used for matching."""
        return normalise(self.name)


def normalise(text: str) -> str:
    """Lower-case, letters and digits only, single spaces."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@dataclass(frozen=True)
class Gazetteer:
    """All areas of one regency, indexed by code."""

    regency: str
    centre: tuple[float, float]
    areas: tuple[Area, ...]

    @property
    def kecamatan(self) -> list[Area]:
        """The kecamatan, in code order."""
        return [a for a in self.areas if a.level == "kecamatan"]

    @property
    def desa(self) -> list[Area]:
        """Desa and kelurahan, in code order."""
        return [a for a in self.areas if a.level in ("desa", "kelurahan")]

    def by_code(self, code: str | None) -> Area | None:
        """The area with this Kemendagri code."""
        for area in self.areas:
            if area.code == code:
                return area
        return None

    def kecamatan_of(self, area: Area) -> Area:
        """The kecamatan an area lies in (itself for a kecamatan)."""
        if area.level == "kecamatan":
            return area
        parent = self.by_code(area.parent_code)
        assert parent is not None, f"desa {area.code} has no kecamatan"
        return parent


def load_regions(path: Path) -> Gazetteer:
    """Read an official region file (`code,level,name,parent_code,lat,lon`) of any regency."""
    areas: list[Area] = []
    regency = ""
    centre: tuple[float, float] | None = None
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = REGION_COLUMNS.difference(reader.fieldnames or ())
        if missing:
            raise DataPackError(f"{path}: no column {', '.join(sorted(missing))}")
        for row in reader:
            level = (row["level"] or "").strip().lower()
            try:
                lat, lon = float(row["lat"]), float(row["lon"])
            except (TypeError, ValueError):
                raise DataPackError(
                    f"{path}: line {reader.line_num}: lat/lon not numbers"
                ) from None
            if level == "kabupaten" or level == "kota":
                regency, centre = row["name"].strip(), (lat, lon)
                continue
            areas.append(
                Area(
                    code=row["code"].strip(),
                    level=level,
                    name=row["name"].strip(),
                    parent_code=(row.get("parent_code") or "").strip() or None,
                    lat=lat,
                    lon=lon,
                )
            )
    kecamatan = [a for a in areas if a.level == "kecamatan"]
    if not kecamatan:
        raise ValueError(f"{path}: no kecamatan rows")
    if centre is None:  # a file without its regency's own row: the kecamatan's mean
        centre = (
            sum(k.lat for k in kecamatan) / len(kecamatan),
            sum(k.lon for k in kecamatan) / len(kecamatan),
        )
    return Gazetteer(regency=regency or path.stem, centre=centre, areas=tuple(areas))


def load_gazetteer(pack: DataPack) -> Gazetteer:
    """The areas of the data pack's region file."""
    return load_regions(pack.regions)
