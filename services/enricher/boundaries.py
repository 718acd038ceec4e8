"""Desa and kecamatan polygons from the official boundaries GeoJSON: which area holds a point."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from services.common.datapack import DataPack

# Degrees of latitude per kilometre, near enough at Batang's latitude for "how far outside".
KM_PER_DEGREE = 111.0


@dataclass(frozen=True)
class Boundaries:
    """Polygons by Kemendagri code, with a spatial index over the desa/kelurahan."""

    polygons: dict[str, BaseGeometry]
    _desa_codes: tuple[str, ...]
    _tree: STRtree

    @classmethod
    def from_geojson(cls, path: Path) -> Boundaries:
        """Read a FeatureCollection whose features carry `kode` and `level` properties."""
        data = json.loads(path.read_text(encoding="utf-8"))
        polygons: dict[str, BaseGeometry] = {}
        desa: list[str] = []
        for feature in data.get("features", []):
            props = feature.get("properties") or {}
            code = str(props.get("kode") or props.get("code") or "").strip()
            if not code or not feature.get("geometry"):
                continue
            polygons[code] = shape(feature["geometry"])
            if str(props.get("level", "")).lower() in ("desa", "kelurahan"):
                desa.append(code)
        codes = tuple(desa)
        return cls(polygons, codes, STRtree([polygons[c] for c in codes]))

    def desa_at(self, lat: float, lon: float) -> tuple[str, float] | None:
        """The desa holding the point, else the nearest one and how far outside it lies (km)."""
        if not self._desa_codes:
            return None
        point = Point(lon, lat)
        for index in self._tree.query(point, predicate="intersects"):
            return self._desa_codes[int(index)], 0.0
        index = self._tree.nearest(point)
        code = self._desa_codes[int(index)]
        return code, self.polygons[code].distance(point) * KM_PER_DEGREE

    def inner_point(self, code: str, lat: float, lon: float) -> tuple[float, float]:
        """The official centroid when it lies inside its area, else a point that does."""
        polygon = self.polygons.get(code)
        if polygon is None or polygon.contains(Point(lon, lat)):
            return lat, lon
        inner = polygon.representative_point()
        return inner.y, inner.x


def load_boundaries(pack: DataPack) -> Boundaries | None:
    """The data pack's boundaries, or None when it has none."""
    return Boundaries.from_geojson(pack.boundaries) if pack.boundaries else None
