"""The place resolver on hard cases: shared desa names, landmarks, typos, everyday words,
coordinates on and off the polygons (Batang's built-in data pack)."""

from __future__ import annotations

import pytest

from schemas.common import Location
from services.common.datapack import resolve_pack
from services.common.gazetteer import Gazetteer, load_gazetteer
from services.enricher.boundaries import load_boundaries
from services.enricher.places import PlaceResolver, read_landmarks

PACK = resolve_pack(None)


@pytest.fixture(scope="module")
def resolver() -> PlaceResolver:
    return PlaceResolver.from_pack(PACK)


@pytest.mark.parametrize(
    ("text", "hint", "kecamatan", "desa"),
    [
        ("omah kobong ning Tumbrep", None, "Bandar", "Tumbrep"),
        ("kebakaran ning tumbrp bandar", None, "Bandar", "Tumbrep"),  # typo after a place word
        ("kebakaran di limpong", None, "Limpung", "Limpung"),
        ("ada kecelakaan motor di depan pasar Limpung", None, "Limpung", "Limpung"),
        ("tlg ada org tenggelam di pantai sigandu", None, "Batang", "Klidang Lor"),
        ("wisatawan tenggelam di telaga dringo", None, "Bawang", "Pranten"),  # not desa Dringo
        ("pasien dirujuk ke RSUD Kalisari", None, "Batang", None),  # not desa Kalisari
        ("banjir rob di klidanglor", None, "Batang", "Klidang Lor"),
        ("rumah di Proyonanggan kebakaran", None, "Batang", "Proyonanggan Tengah"),
        ("angin puting beliung di Kluwih Bandar", None, "Bandar", "Kluwih"),
        ("longsor di desa lobang", None, "Limpung", "Lobang"),
        ("pohon tumbang di jalan", "Kalisari, Blado", "Blado", "Kalisari"),
        ("kecelakaan di tol Batang Semarang arah Kandeman", None, "Kandeman", None),
        ("batang pohon tumbang di kandeman", None, "Kandeman", "Kandeman"),
        ("buruh pingsan di kawasan industri", None, "Gringsing", "Ketanggan"),
        ("ada kecelakaan dilimpung", None, "Limpung", "Limpung"),  # "di" typed onto the name
        # an account's handle names an agency, not where the report is from
        ("@pdam_batang pipa bocor di Bawang", None, "Bawang", "Bawang"),
        ("@pdam.batang air mati terus", None, "Batang", None),  # nothing else: the handle
        # a name both a kecamatan and a desa elsewhere: the kecamatan, unless told otherwise
        ("pipa bocor di Bawang sudah seminggu", None, "Bawang", "Bawang"),
        ("pipa bocor di desa Bawang kecamatan Blado", None, "Blado", "Bawang"),
        # a name that is also a word, written with its capital after "di" or "ning"
        ("ada pohon tumbang di Juragan, jalan tertutup", None, "Kandeman", "Juragan"),
        ("omah kobong ning Gemuh, tulung", None, "Pecalungan", "Gemuh"),
        # "jalan raya X": the road's name is a place
        ("kecelakaan di jalan raya bawang arah dieng", None, "Bawang", "Bawang"),
        # a one-word name written as two
        ("jalan ambles pecalu ngan", None, "Pecalungan", None),
        ("pohon tumbang gring sing arah semarang", None, "Gringsing", None),
        # the desa the caller names outweighs a landmark named as the cause
        ("warga desa Ponowareng mengeluhkan debu, diduga dari PLTU", None, "Tulis", "Ponowareng"),
        ("banjir kewonotunggal arah hulu", None, "Wonotunggal", "Wonotunggal"),
        ("kebakaran di limpnug", None, "Limpung", "Limpung"),  # two letters swapped: one slip
        # what is named after its desa: a school, a road, a field
        ("pagar SD Tembok roboh kena angin", None, "Limpung", "Tembok"),
        ("warung bensin pinggir dalan Banteng kobong", None, "Tersono", "Banteng"),
        ("rebutan banyu nang sawah Kepuh", None, "Limpung", "Kepuh"),
        # English names the kind of area after the name; "in" says where
        (
            "our mess in Kedawung village, near the Batang Industrial Park",
            None,
            "Banyuputih",
            "Kedawung",
        ),
    ],
)
def test_names_callers_use_resolve_to_the_right_place(
    resolver: PlaceResolver, text: str, hint: str | None, kecamatan: str, desa: str | None
) -> None:
    place = resolver.resolve(text=text, hint=hint)
    assert place is not None, text
    assert place.kecamatan == kecamatan, (text, place)
    if desa is not None:
        assert place.desa == desa, (text, place)
    assert place.matched


@pytest.mark.parametrize(
    "text",
    [
        "jalan lobang besar",  # a hole, not desa Lobang
        "ada bandar narkoba",  # a dealer, not kecamatan Bandar
        "sedang ada kebakaran",  # not desa Sendang
        "tawuran pelajar, Kabupaten Batang",
        "harga bawang naik terus",
        "suratnya sudah ditulis",  # "written", not "di Tulis"
        "motornya dibandar murah",  # an everyday-word name stays glued
    ],
)
def test_everyday_words_are_not_places(resolver: PlaceResolver, text: str) -> None:
    assert resolver.resolve(text=text) is None


def test_a_shared_desa_name_is_settled_by_the_other_words(resolver: PlaceResolver) -> None:
    sendang = [a for a in resolver.gazetteer.desa if a.name == "Sendang"]
    assert len(sendang) == 2
    for desa in sendang:
        kecamatan = resolver.gazetteer.kecamatan_of(desa).name
        place = resolver.resolve(text=f"kebakaran di ds sendang kec {kecamatan}")
        assert place is not None and (place.desa_code, place.kecamatan) == (desa.code, kecamatan)
        assert place.confidence >= 0.9
    near = resolver.resolve(text="banjir di desa Sendang dekat Limpung")
    assert near is not None and near.kecamatan == "Tersono"  # the Sendang next to Limpung
    alone = resolver.resolve(text="banjir di Sendang")
    assert alone is not None and alone.confidence < 0.5  # a guess, and it says so


def test_coordinates_resolve_to_the_desa_whose_polygon_holds_them(
    resolver: PlaceResolver,
) -> None:
    tembok = next(a for a in resolver.gazetteer.desa if a.name == "Tembok")
    place = resolver.resolve(
        text="kecelakaan di Subah",  # words lose against a precise handset position
        location=Location(lat=-7.0217, lon=109.9242, accuracy_m=20),
    )
    assert place is not None and place.method == "coordinates"
    assert (place.kecamatan, place.desa_code) == ("Limpung", tembok.code)
    coarse = resolver.resolve(
        text="kecelakaan di Subah", location=Location(lat=-7.0217, lon=109.9242, accuracy_m=5000)
    )
    assert coarse is not None and coarse.kecamatan == "Subah"  # a cell-tower guess loses


@pytest.mark.parametrize(
    "text",
    [
        "juragan saya di pasar tidak membayar gaji",  # "juragan" in lower case is a boss
        "Tulis alamat lengkap di formulir",  # a capital that starts a sentence
        "gemuh banget anaknya",
        "tembok SD retak, mohon dicek",  # a wall, before the school
        "sd tembok",  # no capital: the school's wall
    ],
)
def test_an_everyday_word_is_no_place_without_its_capital_after_a_place_word(
    resolver: PlaceResolver, text: str
) -> None:
    assert resolver.resolve(text=text) is None


def test_a_point_at_sea_or_outside_the_regency_names_no_area(resolver: PlaceResolver) -> None:
    place = resolver.resolve(text="", location=Location(lat=-6.0, lon=109.8))
    assert place is not None and place.kecamatan is None and place.confidence < 0.5


def test_a_centroid_outside_its_own_polygon_is_not_used_as_the_point(
    resolver: PlaceResolver,
) -> None:
    # SOURCES.md: desa 33.25.01.2009 (Brayo) has its centroid outside its polygon.
    boundaries = resolver.boundaries
    assert boundaries is not None
    brayo = resolver.gazetteer.by_code("33.25.01.2009")
    assert brayo is not None
    place = resolver.resolve(text="longsor di desa Brayo")
    assert place is not None and place.desa == "Brayo"
    assert (place.lat, place.lon) != (brayo.lat, brayo.lon)
    found = boundaries.desa_at(place.lat, place.lon)
    assert found is not None and found[0] == brayo.code


def test_every_landmark_names_a_known_kecamatan_and_desa() -> None:
    gazetteer = load_gazetteer(PACK)
    kecamatan = {k.name: k.code for k in gazetteer.kecamatan}
    landmarks = read_landmarks(PACK.landmarks)
    assert len(landmarks) >= 50
    for landmark in landmarks:
        assert landmark.kecamatan in kecamatan, landmark.name
        if landmark.desa:
            assert any(
                d.name == landmark.desa and d.parent_code == kecamatan[landmark.kecamatan]
                for d in gazetteer.desa
            ), landmark.name


def test_without_desa_in_the_region_file_landmarks_fall_back_to_their_kecamatan() -> None:
    full = load_gazetteer(PACK)  # as a pack whose region file lists the kecamatan only
    kecamatan_only = Gazetteer(full.regency, full.centre, tuple(full.kecamatan))
    resolver = PlaceResolver(kecamatan_only, landmarks=read_landmarks(PACK.landmarks))
    place = resolver.resolve(text="anak tenggelam di pantai sigandu")
    assert place is not None and place.kecamatan == "Batang" and place.desa is None
    assert place.method == "landmark"


def test_remembered_fuzzy_matches_resolve_as_fresh_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Misspelt names are matched once and remembered (within a bound): a resolver that
    has seen them, even past the bound, places reports as a fresh one does."""
    import services.enricher.places as places

    texts = [
        ("kebakaran ning tumbrp bandar", None),
        ("kebakaran di limpong", None),
        ("longsor di desa lobng", None),
        ("pohon tumbang di jalan", "Kalisari, Blado"),
    ]
    gazetteer, boundaries = load_gazetteer(PACK), load_boundaries(PACK)

    def placed(r: PlaceResolver) -> list[tuple[str, str | None] | None]:
        found = [r.resolve(text=t, hint=h) for t, h in texts]
        return [(p.kecamatan, p.desa) if p else None for p in found]

    fresh = placed(PlaceResolver(gazetteer, boundaries=boundaries))
    monkeypatch.setattr(places, "FUZZY_MEMO_SIZE", 2)
    seasoned = PlaceResolver(gazetteer, boundaries=boundaries)
    for _ in range(3):  # again and again, past the bound
        assert placed(seasoned) == fresh
    assert fresh[:2] == [("Bandar", "Tumbrep"), ("Limpung", "Limpung")]
