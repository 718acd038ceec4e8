"""The data pack's kecamatan and desa outlines, made small for the command centre's map:
kecamatan and the regency drawn as the union of their desa, coordinates rounded to a grid,
points closer than a step to the last one kept dropped, and each ring written as
whole-number steps from its previous point (compact JSON)."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shapely import make_valid
from shapely.errors import GEOSException
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from services.common.datapack import DataFileError, DataPack

# 4 decimals of a degree is 11 m; a step of 4 grid units (44 m) is under a pixel when the
# whole regency (about 40 km across) fills a wall screen's map, so neighbouring desa's
# shared borders still meet.
DECIMALS = 4
MIN_STEP = 4
LEVELS = {"kabupaten": 0, "kecamatan": 1, "desa": 2, "kelurahan": 2}

GridPoint = tuple[int, int]


def quantize(points: Iterable[Sequence[float]], *, decimals: int = DECIMALS) -> list[GridPoint]:
    """Lon/lat points on a grid of 10^-decimals degrees (whole numbers)."""
    scale = 10**decimals
    return [(round(p[0] * scale), round(p[1] * scale)) for p in points]


def thin_ring(ring: Sequence[GridPoint], *, min_step: int = MIN_STEP) -> list[GridPoint]:
    """A closed ring without the points that lie within `min_step` grid units of the last
    point kept (and without its closing point, which repeats the first). A ring that would
    fall under three points keeps each distinct point instead; under three distinct ones it
    is nothing (an empty list)."""
    open_ring = list(ring[:-1]) if len(ring) > 1 and ring[0] == ring[-1] else list(ring)
    distinct = [p for i, p in enumerate(open_ring) if i == 0 or p != open_ring[i - 1]]
    if len(distinct) > 1 and distinct[0] == distinct[-1]:
        distinct.pop()
    if len(distinct) < 3:
        return []
    kept = [distinct[0]]
    for point in distinct[1:]:
        last = kept[-1]
        if math.hypot(point[0] - last[0], point[1] - last[1]) >= min_step:
            kept.append(point)
    # The last point kept may sit on top of the first, closing the ring twice.
    first = kept[0]
    while len(kept) > 1 and math.hypot(kept[-1][0] - first[0], kept[-1][1] - first[1]) < min_step:
        kept.pop()
    return kept if len(kept) >= 3 else distinct


def delta_encode(ring: Sequence[GridPoint]) -> list[int]:
    """x0, y0, then each point as its step from the one before: dx1, dy1, dx2, dy2, ..."""
    out: list[int] = []
    px, py = 0, 0
    for x, y in ring:
        out += [x - px, y - py]
        px, py = x, y
    return out


def delta_decode(flat: Sequence[int]) -> list[GridPoint]:
    """The points of a `delta_encode`d ring (what the page's script does too)."""
    points: list[GridPoint] = []
    x, y = 0, 0
    for i in range(0, len(flat), 2):
        x, y = x + flat[i], y + flat[i + 1]
        points.append((x, y))
    return points


@dataclass(frozen=True)
class Area:
    """One outlined area: its Kemendagri code, name, level, parent and rings."""

    code: str
    name: str
    level: str
    parent: str | None
    centre: GridPoint
    rings: tuple[tuple[GridPoint, ...], ...]


def _polygons(geometry: dict[str, Any]) -> list[list[list[Sequence[float]]]]:
    kind = geometry.get("type")
    if kind == "Polygon":
        return [geometry["coordinates"]]
    if kind == "MultiPolygon":
        return list(geometry["coordinates"])
    return []


def _level(feature: dict[str, Any]) -> str:
    return str((feature.get("properties") or {}).get("level", "")).lower()


def _code(feature: dict[str, Any]) -> str:
    props = feature.get("properties") or {}
    return str(props.get("kode") or props.get("code") or "").strip()


def drawable(collection: dict[str, Any]) -> list[dict[str, Any]]:
    """The features the map draws: of a known level, with a code and a polygon."""
    return [
        f
        for f in collection.get("features", [])
        if _level(f) in LEVELS and _code(f) and _polygons(f.get("geometry") or {})
    ]


def merged_outlines(features: Sequence[dict[str, Any]]) -> dict[str, BaseGeometry]:
    """Each area's outline: its own for a desa, the union of its desa for a kecamatan and
    of its kecamatan for the regency. The pack's own kecamatan and regency polygons are
    far coarser than its desa (20 points against hundreds: kilometres apart), so borders
    drawn from them would not meet the desa's."""
    merged: dict[str, BaseGeometry] = {}
    children: dict[str, list[BaseGeometry]] = defaultdict(list)
    for feature in sorted(features, key=lambda f: -LEVELS[_level(f)]):  # desa first
        code = _code(feature)
        own = children.get(code)
        # simplify(0): a union keeps the corners of its parts that now lie on a straight line
        outline = unary_union(own).simplify(0) if own else make_valid(shape(feature["geometry"]))
        merged[code] = outline
        parent = (feature.get("properties") or {}).get("parent")
        if parent:
            children[str(parent)].append(outline)
    return merged


def _centre(props: dict[str, Any], outline: BaseGeometry) -> tuple[float, float]:
    """Where the area's name goes: its official centroid when that lies inside it."""
    lat, lon = props.get("centroid_lat"), props.get("centroid_lon")
    if (
        isinstance(lat, int | float)
        and isinstance(lon, int | float)
        and outline.contains(Point(lon, lat))
    ):
        return lon, lat
    inner = outline.representative_point()
    return inner.x, inner.y


def area_of(
    feature: dict[str, Any], outline: BaseGeometry, *, decimals: int, min_step: int
) -> Area | None:
    """A feature drawn as `outline` (outer rings only: holes do not show at this scale);
    None when nothing of it is left to draw."""
    props = feature.get("properties") or {}
    rings = []
    for polygon in _polygons(mapping(outline)):
        thinned = thin_ring(quantize(polygon[0], decimals=decimals), min_step=min_step)
        if thinned:
            rings.append(tuple(thinned))
    if not rings:
        return None
    (centre,) = quantize([_centre(props, outline)], decimals=decimals)
    code, parent = _code(feature), props.get("parent")
    name = str(props.get("nama") or code)
    return Area(code, name, _level(feature), str(parent) if parent else None, centre, tuple(rings))


def outline_document(
    collection: dict[str, Any], *, decimals: int = DECIMALS, min_step: int = MIN_STEP
) -> dict[str, Any]:
    """The map's JSON: the grid's scale, the bounding box and each area, the regency first,
    then kecamatan, then desa (the order they are drawn in)."""
    features = drawable(collection)
    outlines = merged_outlines(features)
    areas = [
        area
        for feature in features
        if (
            area := area_of(feature, outlines[_code(feature)], decimals=decimals, min_step=min_step)
        )
        is not None
    ]
    areas.sort(key=lambda a: (LEVELS[a.level], a.code))
    points = [p for a in areas for ring in a.rings for p in ring]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    bbox = [min(xs), min(ys), max(xs), max(ys)] if points else None
    return {
        "scale": 10**decimals,
        "bbox": bbox,
        "areas": [
            {
                "code": a.code,
                "name": a.name,
                "level": a.level,
                "parent": a.parent,
                "centre": list(a.centre),
                "rings": [delta_encode(ring) for ring in a.rings],
            }
            for a in areas
        ],
    }


@dataclass(frozen=True)
class Outlines:
    """The map's JSON as served: its bytes, gzipped, and their digest (the ETag)."""

    body: bytes
    gzipped: bytes
    etag: str


def load_outlines(pack: DataPack) -> Outlines:
    """The pack's boundaries as the map's JSON, made once; a pack without boundaries gives
    an empty map (the incidents are still listed)."""
    collection: dict[str, Any] = {"features": []}
    if pack.boundaries is not None:
        try:
            collection = json.loads(Path(pack.boundaries).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataFileError(f"{pack.boundaries}: not readable GeoJSON ({exc})") from None
        if not isinstance(collection, dict):
            raise DataFileError(f"{pack.boundaries}: not a GeoJSON FeatureCollection")
    try:
        document = outline_document(collection)
    except (ValueError, TypeError, KeyError, IndexError, GEOSException) as exc:
        raise DataFileError(f"{pack.boundaries}: a feature cannot be drawn ({exc})") from None
    body = json.dumps(document, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Outlines(body, gzip.compress(body, mtime=0), etag)
