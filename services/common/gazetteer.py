"""The regency gazetteer: kecamatan and desa with codes and centroids, from the official file."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

# Fallback when the official region file is not at hand: Batang's 15 kecamatan with their
# Kemendagri codes and approximate centroids (our own list, so the stack always starts).
BATANG_KECAMATAN: tuple[tuple[str, str, float, float], ...] = (
    ("33.25.01", "Wonotunggal", -7.0246, 109.7562),
    ("33.25.02", "Bandar", -7.0620, 109.7965),
    ("33.25.03", "Blado", -7.1129, 109.8334),
    ("33.25.04", "Reban", -7.1100, 109.8791),
    ("33.25.05", "Bawang", -7.1272, 109.9197),
    ("33.25.06", "Tersono", -7.0382, 109.9662),
    ("33.25.07", "Gringsing", -6.9570, 110.0051),
    ("33.25.08", "Limpung", -7.0217, 109.9242),
    ("33.25.09", "Subah", -6.9600, 109.8739),
    ("33.25.10", "Tulis", -6.9504, 109.8115),
    ("33.25.11", "Batang", -6.9078, 109.7292),
    ("33.25.12", "Warungasem", -6.9506, 109.7071),
    ("33.25.13", "Kandeman", -6.9212, 109.7736),
    ("33.25.14", "Pecalungan", -7.0214, 109.8614),
    ("33.25.15", "Banyuputih", -6.9603, 109.9414),
)
BATANG_CENTRE = (-7.0210, 109.8616)


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
    regency, centre = "", BATANG_CENTRE
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            level = row["level"].strip().lower()
            lat, lon = float(row["lat"]), float(row["lon"])
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
    if not any(a.level == "kecamatan" for a in areas):
        raise ValueError(f"{path}: no kecamatan rows")
    return Gazetteer(regency=regency or path.stem, centre=centre, areas=tuple(areas))


def builtin_batang() -> Gazetteer:
    """Batang's 15 kecamatan only, for when the official file is absent."""
    areas = tuple(
        Area(code, "kecamatan", name, "33.25", lat, lon)
        for code, name, lat, lon in BATANG_KECAMATAN
    )
    return Gazetteer(regency="Kabupaten Batang", centre=BATANG_CENTRE, areas=areas)


def load_gazetteer(data_dir: Path | None) -> Gazetteer:
    """The official Batang file from the shared data folder, else the built-in fallback."""
    if data_dir is not None:
        path = data_dir / "regions" / "batang_regions.csv"
        if path.exists():
            return load_regions(path)
    return builtin_batang()
