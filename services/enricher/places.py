"""Resolve a report's words or coordinates to kecamatan and desa with a confidence.

Words: every run of up to four words is looked up among the gazetteer's kecamatan and
desa names and the landmarks callers name (markets, hospitals, beaches, the toll road...);
after a place word ("di", "ning", "desa", "kec") a misspelt name is matched fuzzily (two
letters swapped count as one slip), and "di" or "ke" typed onto a name ("dilimpung") is
taken apart.
Names that are also everyday words (Bawang is an onion, Tulis is "write", Lobang a hole)
count only after such a place word. A name several kecamatan share is settled by the other
places the report names; the kecamatan most words point to wins, and the most specific
place inside it (landmark or desa) is returned. Coordinates go to the desa whose polygon
holds them.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import OSA

from schemas.common import Location, Place
from services.common.datapack import DataPack
from services.common.gazetteer import Area, Gazetteer, load_gazetteer
from services.common.geo import haversine_km
from services.common.text import words
from services.enricher.boundaries import Boundaries, load_boundaries

MAX_NGRAM = 4
NAMESAKE_KECAMATAN = 0.01
# An account named in a post or comment ("@dukcapil_batang", "@bpbd.batang").
_HANDLE = re.compile(r"@[\w.]+")
# A word written with a capital inside a sentence ("... di Juragan", "jl raya Tulis"): a
# name, where the same word in lower case may be an everyday one ("juragan", "tulis").
_CAPITALISED = re.compile(r"(?<![.!?:\n]\s)(?<![.!?:\n])(?<!^)\b([A-Z][a-z]{2,})\b")
# Prepositions often written onto the name that follows them ("dilimpung"), and how long
# that name must be to be taken apart from them.
GLUED_CUES = frozenset({"di", "ke"})
MIN_GLUED = 5
MIN_SPLIT_NAME = 8  # letters a one-word name needs before it is read when written as two
MIN_FUZZY = 6  # letters a name needs before a misspelling of it is recognised
FUZZY_MEMO_SIZE = 50_000  # phrases whose fuzzy match is remembered
# Where the incident is ("di pasar") weighs more than where the caller came from ("dari");
# Javanese "ning/nang/neng Gemuh", krama "wonten/teng".
NEAR_CUES = frozenset(
    {
        "di",
        "lokasi",
        "depan",
        "samping",
        "belakang",
        "at",
        "in",
        "ning",
        "nang",
        "neng",
        "wonten",
        "teng",
    }
)
# Words that announce a place; after them a name may be misspelt or be an everyday word.
PLACE_CUES = NEAR_CUES | frozenset(
    {
        "desa",
        "kelurahan",
        "kecamatan",
        "dukuh",
        "dusun",
        "dsn",
        "dk",
        "daerah",
        "wilayah",
        "sekitar",
        "dekat",
        "sebelah",
        "kampung",
        "arah",
        "dari",
        "ke",
        "alamat",
        "kawasan",
        "area",
        "perbatasan",
        "cedhak",
        "cedak",
        "jurusan",
        "menuju",
        "simpang",
        "perempatan",
        "pertigaan",
        "jalur",
        "tanjakan",
        "turunan",
        "perumahan",
        "komplek",
        "jalan",
        "pantura",
        "warga",
        "village",
        "towards",
        "near",
        # "jalan raya Subah"
        "raya",
    }
)
# Words that name the kind of area; the only cues for names that are common words.
AREA_CUES = frozenset({"desa", "kelurahan", "kecamatan", "dukuh", "dusun", "dsn", "dk", "kampung"})
# What is named after its desa ("SD Tembok", "sawah Kepuh"): before a name that is also a
# word, written with its capital, these make it a place too (never one spelled otherwise).
NAMED_AFTER = frozenset(
    {
        "sd",
        "sdn",
        "smp",
        "smpn",
        "sma",
        "sman",
        "smk",
        "smkn",
        "mi",
        "mts",
        "puskesmas",
        "pasar",
        "balai",
        "masjid",
        "sawah",
        "kebun",
        "tpi",
        "stasiun",
        "terminal",
    }
)
# Before which a name that is also a word counts when written with its capital.
CAPITAL_CUES = NEAR_CUES | NAMED_AFTER | {"jalan"}
# After a name, English names the kind of area ("Kedawung village").
AREA_AFTER = {"village": "desa", "district": "kecamatan", "subdistrict": "kecamatan"}
FAR_CUES = frozenset({"dari", "ke", "arah", "jurusan", "menuju", "towards"})

# Area names that are also everyday words, or desa names many regencies have (Sidorejo,
# Tegalsari): a place word must come before them.
COMMON_WORD_NAMES = frozenset(
    {
        "sukorejo",
        "ngaliyan",
        "babadan",
        "plumbon",
        "tegalsari",
        "karanganyar",
        "sidorejo",
        "wonosari",
        "kalirejo",
        "sidoharjo",
        "gondang",
        "jambangan",
        "kambangan",
        "semampir",
        "sembung",
        "banaran",
        "bawang",
        "tulis",
        "bandar",
        "sendang",
        "wates",
        "sidayu",
        "candi",
        "kauman",
        "kluwih",
        "boja",
        "toso",
    }
)
# ... and these need a word naming the kind of area ("desa Lobang"), or the place hint.
EVERYDAY_WORD_NAMES = frozenset(
    {
        "lobang",
        "tembok",
        "banjiran",
        "pesantren",
        "bulu",
        "timbang",
        "manggis",
        "kemiri",
        "randu",
        "gapuro",
        "juragan",
        "bakalan",
        "depok",
        "bandung",
        "kebumen",
        "wonosobo",
        "gombong",
        "menjangan",
        "soka",
        "getas",
        "masin",
        "terban",
        "beji",
        "sempu",
        "kepuh",
        "gemuh",
        "tombo",
        "pacet",
        "banteng",
        "lebo",
    }
)
# Names that are also words: never matched fuzzily, never taken apart from "di" or "ke".
WORD_NAMES = EVERYDAY_WORD_NAMES | COMMON_WORD_NAMES

# Phrases that contain a place name but name no place ("batang pohon" is a tree trunk).
NOT_PLACES = frozenset(
    {
        "kabupaten batang",
        "pemkab batang",
        "pemerintah kabupaten batang",
        "bupati batang",
        "batang regency",
        "batang pohon",
        "batang kayu",
        "batang bambu",
        "batang rokok",
        "batang besi",
        "tol batang semarang",
        "batang semarang",
        "semarang batang",
    }
)


@dataclass(frozen=True)
class Target:
    """Something a name can mean: an area, or a landmark inside one."""

    area: Area
    kecamatan: Area
    lat: float
    lon: float
    landmark: str | None = None

    @property
    def specificity(self) -> int:
        """Landmark in a known desa 3, desa 2, landmark in a kecamatan 1, kecamatan 0."""
        in_desa = self.area.level != "kecamatan"
        if self.landmark:
            return 3 if in_desa else 1
        return 2 if in_desa else 0


@dataclass
class Mention:
    """Words of the report that name one or more targets."""

    start: int
    end: int
    phrase: str
    targets: list[Target]
    from_hint: bool
    edits: int = 0
    cue: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class Landmark:
    """A place callers name, as the data pack's `landmarks.csv` writes it down."""

    name: str
    variants: tuple[str, ...]
    kind: str
    kecamatan: str
    desa: str | None
    lat: float | None
    lon: float | None


def read_landmarks(path: Path | None) -> list[Landmark]:
    """The landmarks of a data pack's `landmarks.csv` (none when the pack has no such file)."""
    if path is None:
        return []
    text = path.read_text(encoding="utf-8")
    out = []
    for row in csv.DictReader(text.splitlines()):
        out.append(
            Landmark(
                name=row["name"].strip(),
                variants=tuple(v.strip() for v in row["variants"].split("|") if v.strip()),
                kind=row["kind"].strip(),
                kecamatan=row["kecamatan"].strip(),
                desa=row["desa"].strip() or None,
                lat=float(row["lat"]) if row["lat"].strip() else None,
                lon=float(row["lon"]) if row["lon"].strip() else None,
            )
        )
    return out


def max_edits(word: str) -> int:
    """How many typing slips a name of this length may carry and still be recognised."""
    if len(word) < 5:
        return 0
    return 1 if len(word) < 9 else 2


def _key(name: str) -> str:
    return " ".join(words(name))


class PlaceResolver:
    """Matches area and landmark names in free text; coordinates go to the containing desa."""

    def __init__(
        self,
        gazetteer: Gazetteer,
        *,
        boundaries: Boundaries | None = None,
        landmarks: Sequence[Landmark] = (),
    ) -> None:
        self.gazetteer = gazetteer
        self.boundaries = boundaries
        self._index: dict[str, list[Target]] = defaultdict(list)
        for area in gazetteer.areas:
            target = self._target(area)
            names = {_key(area.name), _key(area.name).replace(" ", "")}
            for name in names:
                self._add(name, target)
        # "Proyonanggan" for Proyonanggan Tengah/Utara/Selatan: the kecamatan is certain.
        heads: dict[str, list[Target]] = defaultdict(list)
        for area in gazetteer.desa:
            parts = _key(area.name).split()
            if len(parts) > 1 and len(parts[0]) >= 5:
                heads[parts[0]].append(self._target(area))
        for first, targets in heads.items():
            if first not in self._index:
                self._index[first] = targets
        for landmark in landmarks:
            found = self._landmark_target(landmark)
            if found is None:
                continue
            for name in (landmark.name, *landmark.variants):
                self._add(_key(name), found)
        self._fuzzy_memo: dict[str, tuple[list[Target] | None, int]] = {}
        self._fuzzy_keys = sorted(
            k for k in self._index if len(k) >= MIN_FUZZY and k not in WORD_NAMES
        )
        # One-word names as people split them in two ("pecalu ngan", "gring sing").
        self._split_names = {
            f"{k[:i]} {k[i:]}": k
            for k in self._index
            if " " not in k and len(k) >= MIN_SPLIT_NAME and k not in WORD_NAMES
            for i in range(3, len(k) - 2)
            if f"{k[:i]} {k[i:]}" not in self._index
        }
        self._split_heads = frozenset(k.split(" ", 1)[0] for k in self._split_names)
        # The words a name (or a phrase that is no place) can start with: with no cue and
        # no hint, a phrase starting with any other word is neither, and is not looked up.
        self._starts = frozenset(k.split(" ", 1)[0] for k in (*self._index, *NOT_PLACES))

    @classmethod
    def from_pack(cls, pack: DataPack, *, gazetteer: Gazetteer | None = None) -> PlaceResolver:
        """A data pack's areas (or `gazetteer`), boundaries and landmarks, as the stages use them."""
        return cls(
            gazetteer or load_gazetteer(pack),
            boundaries=load_boundaries(pack),
            landmarks=read_landmarks(pack.landmarks),
        )

    def _add(self, key: str, target: Target) -> None:
        if key and target not in self._index[key]:
            self._index[key].append(target)

    def _point(self, area: Area) -> tuple[float, float]:
        if self.boundaries is None:
            return area.lat, area.lon
        return self.boundaries.inner_point(area.code, area.lat, area.lon)

    def _target(self, area: Area, landmark: str | None = None) -> Target:
        lat, lon = self._point(area)
        return Target(area, self.gazetteer.kecamatan_of(area), lat, lon, landmark)

    def _landmark_target(self, landmark: Landmark) -> Target | None:
        kecamatan = next(
            (k for k in self.gazetteer.kecamatan if _key(k.name) == _key(landmark.kecamatan)),
            None,
        )
        if kecamatan is None:
            return None
        area = kecamatan
        if landmark.desa:
            area = next(
                (
                    d
                    for d in self.gazetteer.desa
                    if d.parent_code == kecamatan.code and _key(d.name) == _key(landmark.desa)
                ),
                kecamatan,
            )
        target = self._target(area, landmark.name)
        if landmark.lat is not None and landmark.lon is not None:
            target = Target(
                target.area, target.kecamatan, landmark.lat, landmark.lon, landmark.name
            )
        return target

    # ------------------------------------------------------------ resolving

    def resolve(
        self, *, text: str, hint: str | None = None, location: Location | None = None
    ) -> Place | None:
        """The best place for a report, or None when nothing in it names a known area."""
        from_words = self.from_words(text=text, hint=hint)
        if location is not None:
            coarse = location.accuracy_m is not None and location.accuracy_m > 1000
            if not (coarse and from_words is not None):
                return self.from_coordinates(location)
        return from_words

    def from_words(self, *, text: str, hint: str | None = None) -> Place | None:
        """The place named by the hint and the text, or None. An account's handle
        ("@pln_batang", "@dukcapil_batang") names an agency, not where the report is
        from: its words count only when nothing else in the report names a place."""
        mentions = []
        if hint:
            mentions += self.mentions(hint, from_hint=True)
        said = _HANDLE.sub(" ", text)
        mentions += self.mentions(said, from_hint=False)
        if not mentions and said != text:
            mentions = self.mentions(" ".join(_HANDLE.findall(text)), from_hint=False)
        if not mentions:
            return None
        return self._choose(mentions)

    def mentions(self, text: str, *, from_hint: bool) -> list[Mention]:
        """Every name of a known place in `text`, longest first, none overlapping."""
        tokens = self._unglued(words(text))
        capitalised: set[str] | None = None  # read only when a name that is a word is met
        taken = [False] * len(tokens)
        found: list[Mention] = []
        doubtful: list[Mention] = []
        # What comes before a word is the same whatever length of phrase starts there.
        cues = [self._cue(tokens, start) for start in range(len(tokens))]
        starts = self._starts
        for size in range(min(MAX_NGRAM, len(tokens)), 0, -1):
            for start in range(len(tokens) - size + 1):
                if not (from_hint or cues[start] or tokens[start] in starts):
                    continue
                if any(taken[start : start + size]):
                    continue
                phrase = " ".join(tokens[start : start + size])
                if phrase in NOT_PLACES:
                    taken[start : start + size] = [True] * size
                    continue
                cue = cues[start]
                if start + size < len(tokens) and tokens[start + size] in AREA_AFTER:
                    cue = AREA_AFTER[tokens[start + size]]
                targets = self._index.get(phrase)
                edits = 0
                if targets is None and ((cue and cue not in NAMED_AFTER) or from_hint):
                    targets, edits = self._fuzzy(phrase)
                if not targets:
                    continue
                mention = Mention(start, start + size, phrase, targets, from_hint, edits, cue)
                if phrase in WORD_NAMES and capitalised is None:
                    capitalised = {w.lower() for w in _CAPITALISED.findall(text)}
                if not self._allowed(
                    phrase, cue, from_hint, edits, capitalised is not None and phrase in capitalised
                ):
                    doubtful.append(mention)
                    continue
                taken[start : start + size] = [True] * size
                found.append(mention)
        found += self._confirmed_by_neighbours(doubtful, found, taken)
        found.sort(key=lambda m: m.start)
        return found

    def _unglued(self, tokens: list[str]) -> list[str]:
        """The words with "di" or "ke" written onto a place's name taken apart ("dilimpung",
        "kebandar"), as people type them; a name that is also an everyday word stays glued
        ("ditulis" is "written"). A one-word name written as two ("gring sing") is joined."""
        out: list[str] = []
        joined = self._split_names
        skip = False
        for at, token in enumerate(tokens):
            if skip:
                skip = False
                continue
            if (
                token in self._split_heads
                and at + 1 < len(tokens)
                and (whole := joined.get(f"{token} {tokens[at + 1]}"))
            ):
                out.append(whole)
                skip = True
                continue
            head, rest = token[:2], token[2:]
            if (
                head in GLUED_CUES
                and len(rest) >= MIN_GLUED
                and token not in self._index
                and rest in self._index
                and rest not in WORD_NAMES
            ):
                out += [head, rest]
            else:
                out.append(token)
        return out

    @staticmethod
    def _confirmed_by_neighbours(
        doubtful: list[Mention], found: list[Mention], taken: list[bool]
    ) -> list[Mention]:
        """An everyday-word name beside a name of its own kecamatan is a place after all
        ("Kluwih Bandar", "Simpar Bandar")."""
        confirmed: list[Mention] = []
        candidates = [m for m in doubtful if not any(taken[m.start : m.end])]
        for m in candidates:
            codes = {t.kecamatan.code for t in m.targets}
            for other in [*found, *candidates]:
                if other is m or not (other.end == m.start or m.end == other.start):
                    continue
                if codes & {t.kecamatan.code for t in other.targets}:
                    confirmed.append(m)
                    break
        for m in confirmed:
            taken[m.start : m.end] = [True] * (m.end - m.start)
        return confirmed

    @staticmethod
    def _cue(tokens: list[str], start: int) -> str | None:
        before = tokens[max(0, start - 2) : start]
        for word in reversed(before):
            if word in AREA_CUES:
                return word
        if before and (before[-1] in PLACE_CUES or before[-1] in NAMED_AFTER):
            return before[-1]
        return None

    def _fuzzy(self, phrase: str) -> tuple[list[Target] | None, int]:
        # The same phrases come back report after report: each is matched once (bounded).
        known = self._fuzzy_memo.get(phrase)
        if known is None:
            if len(self._fuzzy_memo) >= FUZZY_MEMO_SIZE:
                self._fuzzy_memo.clear()
            known = self._fuzzy_memo[phrase] = self._match(phrase)
        return known

    def _match(self, phrase: str) -> tuple[list[Target] | None, int]:
        # Short names and names that are everyday words are only taken as written: one slip
        # away from "Bulu" or "Reban" lie "bulus" and "rejan", words of their own.
        limit = max_edits(phrase) if len(phrase) >= MIN_FUZZY else 0
        if limit == 0:
            return None, 0
        found = process.extractOne(
            phrase, self._fuzzy_keys, scorer=OSA.distance, score_cutoff=limit
        )
        if found is None or found[0][0] != phrase[0]:
            return None, 0
        return self._index[found[0]], int(found[1])

    @staticmethod
    def _allowed(
        phrase: str, cue: str | None, from_hint: bool, edits: int, capitalised: bool = False
    ) -> bool:
        if from_hint:
            return True
        if phrase in EVERYDAY_WORD_NAMES:
            return cue in AREA_CUES or (capitalised and cue in CAPITAL_CUES and edits == 0)
        if phrase in COMMON_WORD_NAMES:
            return cue is not None or (capitalised and edits == 0)
        return edits == 0 or cue is not None

    def _choose(self, mentions: list[Mention]) -> Place:
        for m in mentions:
            if m.cue == "kecamatan":
                m.targets = [t for t in m.targets if t.area.level == "kecamatan"] or m.targets
            elif m.cue in ("desa", "kelurahan"):
                m.targets = [t for t in m.targets if t.area.level != "kecamatan"] or m.targets
            m.weight = (2.0 if m.from_hint else 1.0) * (0.7 if m.edits else 1.0)
            if m.cue in NEAR_CUES or m.cue in AREA_CUES:
                m.weight *= 1.5
            elif m.cue in FAR_CUES:
                m.weight *= 0.5
        by_proximity = self._settle_shared_names(mentions)
        support: dict[str, float] = defaultdict(float)
        for m in mentions:
            kecamatan = {t.kecamatan.code for t in m.targets}
            for code in kecamatan:
                support[code] += m.weight / len(kecamatan)
            # "di Bawang" with nothing else to go by: the kecamatan of that name before a
            # desa so named in another kecamatan (a tie-break, less than any mention's weight).
            for t in m.targets:
                if t.area.level == "kecamatan" and len(kecamatan) > 1:
                    support[t.kecamatan.code] += NAMESAKE_KECAMATAN * m.weight
        ranked = sorted(
            ((m, t) for m in mentions for t in m.targets),
            key=lambda mt: (
                -support[mt[1].kecamatan.code],
                -mt[1].specificity,
                not mt[0].from_hint,
                mt[0].start,
                mt[1].area.code,
            ),
        )
        mention, target = ranked[0]
        winner = target.kecamatan.code
        agreeing = {
            (m.from_hint, m.start)
            for m in mentions
            if any(t.kecamatan.code == winner for t in m.targets)
        }
        if len({t.kecamatan.code for t in mention.targets}) > 1:
            confidence = 0.45  # a name several kecamatan share, and nothing to choose by
        elif len(agreeing) > 1:
            confidence = 0.95
        elif id(mention) in by_proximity:
            confidence = 0.7
        elif target.specificity >= 2:
            confidence = 0.85
        else:
            confidence = 0.8
        confidence -= 0.1 * mention.edits
        method = "landmark" if target.landmark else target.area.level
        if method == "kelurahan":
            method = "desa"
        return self._place(target, round(confidence, 2), method, mention.phrase)

    def _settle_shared_names(self, mentions: list[Mention]) -> set[int]:
        """A name several kecamatan share takes the reading nearest the places named surely;
        returns the ids of mentions settled by distance alone."""
        certain = [m for m in mentions if len({t.kecamatan.code for t in m.targets}) == 1]
        if not certain:
            return set()
        sure = {m.targets[0].kecamatan.code for m in certain}
        points = [t for m in certain for t in m.targets]
        settled: set[int] = set()
        for m in mentions:
            if len({t.kecamatan.code for t in m.targets}) == 1:
                continue
            inside = [t for t in m.targets if t.kecamatan.code in sure]
            if inside:
                m.targets = inside
                continue
            nearest = min(
                m.targets,
                key=lambda t: min(haversine_km(t.lat, t.lon, p.lat, p.lon) for p in points),
            )
            m.targets = [t for t in m.targets if t.kecamatan.code == nearest.kecamatan.code]
            settled.add(id(m))
        return settled

    def from_coordinates(self, location: Location) -> Place:
        """The desa whose polygon holds the point (nearest centroid without boundaries)."""
        confidence = 0.9 if (location.accuracy_m or 0) <= 500 else 0.7
        area: Area | None = None
        if self.boundaries is not None:
            found = self.boundaries.desa_at(location.lat, location.lon)
            if found is not None:
                code, outside_km = found
                if outside_km <= 2.0:
                    area = self.gazetteer.by_code(code)
                    confidence -= 0.2 if outside_km > 0 else 0.0
        if area is None and (self.boundaries is None or not self.boundaries.polygons):
            pool = self.gazetteer.desa or self.gazetteer.kecamatan
            area = min(pool, key=lambda a: haversine_km(location.lat, location.lon, a.lat, a.lon))
        if area is None:  # outside the regency: keep the point, name no area
            return Place(lat=location.lat, lon=location.lon, confidence=0.3, method="coordinates")
        kec = self.gazetteer.kecamatan_of(area)
        desa = area if area.level != "kecamatan" else None
        return Place(
            kecamatan_code=kec.code,
            kecamatan=kec.name,
            desa_code=desa.code if desa else None,
            desa=desa.name if desa else None,
            lat=location.lat,
            lon=location.lon,
            confidence=round(confidence, 2),
            method="coordinates",
        )

    def _place(self, target: Target, confidence: float, method: str, matched: str) -> Place:
        desa = target.area if target.area.level != "kecamatan" else None
        return Place(
            kecamatan_code=target.kecamatan.code,
            kecamatan=target.kecamatan.name,
            desa_code=desa.code if desa else None,
            desa=desa.name if desa else None,
            lat=target.lat,
            lon=target.lon,
            confidence=max(0.0, min(1.0, confidence)),
            method=method,
            matched=matched,
        )
