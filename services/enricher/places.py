"""Resolve a report's words or coordinates to kecamatan and desa with a confidence."""

from __future__ import annotations

from collections import defaultdict

from schemas.common import Location, Place
from services.common.gazetteer import Area, Gazetteer, normalise
from services.common.geo import haversine_km

MAX_NGRAM = 3


class PlaceResolver:
    """Matches area names in free text; coordinates go to the nearest desa centroid."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer
        self._by_name: dict[str, list[Area]] = defaultdict(list)
        for area in gazetteer.areas:
            self._by_name[area.key].append(area)

    def resolve(
        self, *, text: str, hint: str | None = None, location: Location | None = None
    ) -> Place | None:
        """The best place for a report, or None when nothing in it names a known area."""
        if location is not None:
            return self._from_coordinates(location)
        for source in (hint, text):
            if source:
                place = self._from_words(source)
                if place is not None:
                    return place
        return None

    def _mentions(self, text: str) -> list[tuple[str, list[Area]]]:
        tokens = normalise(text).split()
        found: list[tuple[str, list[Area]]] = []
        for size in range(MAX_NGRAM, 0, -1):
            for start in range(len(tokens) - size + 1):
                phrase = " ".join(tokens[start : start + size])
                if size == 1 and len(phrase) < 4:
                    continue
                if phrase in self._by_name:
                    found.append((phrase, self._by_name[phrase]))
        return found

    def _from_words(self, text: str) -> Place | None:
        mentions = self._mentions(text)
        if not mentions:
            return None
        kecamatan = {a.code: a for _, areas in mentions for a in areas if a.level == "kecamatan"}
        desa = [(p, a) for p, areas in mentions for a in areas if a.level != "kecamatan"]
        # A desa whose kecamatan is named too is the most specific reading.
        for phrase, area in desa:
            if area.parent_code in kecamatan:
                return self._place(area, 0.95, "desa", phrase)
        names = {p for p, _ in desa}
        for phrase in names:
            candidates = [a for p, a in desa if p == phrase]
            if len(candidates) == 1:
                return self._place(candidates[0], 0.85, "desa", phrase)
        if kecamatan:
            phrase = next(p for p, areas in mentions if any(a.level == "kecamatan" for a in areas))
            return self._place(next(iter(kecamatan.values())), 0.8, "kecamatan", phrase)
        phrase, area = desa[0]  # a desa name shared by several kecamatan, nothing to choose by
        return self._place(area, 0.5, "desa", phrase)

    def _from_coordinates(self, location: Location) -> Place:
        areas = self.gazetteer.desa or self.gazetteer.kecamatan
        nearest = min(areas, key=lambda a: haversine_km(location.lat, location.lon, a.lat, a.lon))
        kec = self.gazetteer.kecamatan_of(nearest)
        desa = nearest if nearest.level != "kecamatan" else None
        return Place(
            kecamatan_code=kec.code,
            kecamatan=kec.name,
            desa_code=desa.code if desa else None,
            desa=desa.name if desa else None,
            lat=location.lat,
            lon=location.lon,
            confidence=0.9 if (location.accuracy_m or 0) <= 500 else 0.7,
            method="coordinates",
        )

    def _place(self, area: Area, confidence: float, method: str, matched: str) -> Place:
        kec = self.gazetteer.kecamatan_of(area)
        desa = area if area.level != "kecamatan" else None
        return Place(
            kecamatan_code=kec.code,
            kecamatan=kec.name,
            desa_code=desa.code if desa else None,
            desa=desa.name if desa else None,
            lat=area.lat,
            lon=area.lon,
            confidence=confidence,
            method=method,
            matched=matched,
        )
