"""The classifier on hard cases and the place resolver on Batang's gazetteer."""

from __future__ import annotations

import pytest

from schemas.common import Location
from schemas.events import CallerSignals
from schemas.vocabulary import Category, Channel, Priority
from services.common.datapack import resolve_pack
from services.common.gazetteer import load_gazetteer
from services.enricher.places import PlaceResolver
from services.triage.classifier import Classifier

PACK = resolve_pack(None)


def _signals(**flags: object) -> CallerSignals:
    base: dict[str, object] = {
        "prior_reports": 0,
        "prior_pranks": 0,
        "repeat_caller": False,
        "prank_flagged": False,
        "ghost": False,
    }
    base.update(flags)
    return CallerSignals.model_validate(base)


@pytest.mark.parametrize(
    ("text", "channel", "category", "priority"),
    [
        (
            "ada kecelakaan motor di depan pasar Limpung, korban luka parah",
            Channel.CALL112,
            Category.TRAFFIC_ACCIDENT,
            Priority.P1,
        ),
        ("omah kobong ning Tumbrep, tulung", Channel.CALL112, Category.FIRE, Priority.P1),
        ("bapak saya pingsan tidak sadar", Channel.PSC119, Category.MEDICAL, Priority.P1),
        (
            "banjir bandang, warga terjebak di atap",
            Channel.WHATSAPP,
            Category.DISASTER,
            Priority.P1,
        ),
        (
            "lampu jalan mati di depan SD, mohon diperbaiki",
            Channel.WHATSAPP,
            Category.INFRASTRUCTURE,
            Priority.P3,
        ),
        (
            "sampah menumpuk di pasar, baunya menyengat",
            Channel.INSTAGRAM,
            Category.ENVIRONMENT,
            Priority.P3,
        ),
        (
            "bagaimana cara mengurus akta kelahiran anak",
            Channel.WEB,
            Category.CIVIL_REGISTRY,
            Priority.P3,
        ),
        ("anak tenggelam di sungai", Channel.SMS, Category.RESCUE, Priority.P1),
    ],
)
def test_classifies_reports_as_people_say_them(
    text: str, channel: Channel, category: Category, priority: Priority
) -> None:
    decision = Classifier().classify(text=text, channel=channel, signals=_signals())
    assert (decision.category, decision.priority) == (category, priority), decision.explanation
    assert decision.explanation  # always says which words decided


def test_life_threat_is_p1_on_a_complaint_channel_too() -> None:
    decision = Classifier().classify(
        text="tetangga saya tidak sadarkan diri, pingsan", channel=Channel.WHATSAPP
    )
    assert decision.priority is Priority.P1
    assert "life at risk" in decision.explanation


def test_ghost_call_is_an_incident_not_dropped() -> None:
    decision = Classifier().classify(text="", channel=Channel.CALL112, signals=_signals(ghost=True))
    assert decision.category is Category.GHOST and decision.priority is Priority.P4
    assert not decision.dispatches_units


def test_flagged_prank_caller_still_gets_p1_when_a_life_is_at_risk() -> None:
    classifier = Classifier()
    flagged = _signals(prank_flagged=True, prior_pranks=5)
    risky = classifier.classify(
        text="ada kebakaran, orang terjebak", channel=Channel.CALL112, signals=flagged
    )
    assert risky.category is Category.FIRE and risky.priority is Priority.P1
    assert risky.dispatches_units
    calm = classifier.classify(text="ada kebakaran", channel=Channel.CALL112, signals=flagged)
    assert calm.priority is Priority.P3  # lowered, still an incident


def test_thanks_at_the_end_do_not_make_a_report_a_question() -> None:
    decision = Classifier().classify(
        text="jalan rusak parah di dekat pasar. terima kasih admin", channel=Channel.WHATSAPP
    )
    assert decision.category is Category.INFRASTRUCTURE, decision.explanation


def test_nothing_recognised_goes_to_a_human() -> None:
    decision = Classifier().classify(text="pak ada itu di sana", channel=Channel.CALL112)
    # However sure the model is, a report no rule recognises is its guess alone.
    assert decision.needs_review, decision.explanation
    assert "no rule recognised" in decision.explanation
    # A greeting and nothing else is a silent call, not a question for a human.
    silent = Classifier().classify(text="halo halo", channel=Channel.CALL112)
    assert silent.category is Category.GHOST and not silent.dispatches_units


@pytest.mark.parametrize(
    "text",
    [
        "hh hm",
        "hallo?? can you hear me?",
        "open line 25 detik, ditelepon balik nomor tidak aktif",
        "pesan suara 5 detik, cuma kresek kresek",
        "112 ada yang bisa dibantu ... halo ... (hening)",
    ],
)
def test_a_line_with_nothing_said_is_a_silent_call(text: str) -> None:
    """A mumble, a caller asking whether anyone hears, the call-taker's note of an open
    line (how many seconds, the call back): nothing is said, so it is a ghost call."""
    decision = Classifier().classify(text=text, channel=Channel.CALL112)
    assert decision.category is Category.GHOST, decision.explanation
    assert not decision.dispatches_units


@pytest.mark.parametrize(
    "text",
    [
        "penelepon diam saja, yang terdengar suara orang jualan dan motor lewat",
        "tidak ada jawaban atas sapaan petugas, ada suara musik dangdut, lalu terputus",
        "pelapor tidak bicara, kemungkinan hp di saku, dipanggil balik tidak diangkat",
        "suara pasar, penelepon tidak merespons panggilan petugas, ditelepon balik tidak aktif",
        # what the line carried (an engine, the wind) is not what the call is about
        "terdengar truk lewat dan orang tertawa, tidak merespon saat disapa petugas",
        "halo? (tidak ada yang bicara, hanya suara hujan, lalu terputus)",
        "sunyi, tidak ada jawaban saat ditanya berkali kali, sambungan putus",
        "halo pak? (kresek) sambungan terputus sebelum ada keterangan",
        # a caller who does not answer the operator is no unconscious patient
        "orang ngobrol soal panen, tidak ada respon saat ditanya operator, hp terpencet",
        "P",
        "[tidak ada suara, terdengar motor lewat dan angin, lalu terputus]",
    ],
)
def test_a_note_that_the_caller_said_nothing_is_a_silent_call(text: str) -> None:
    """The call-taker notes what else the line carried (a market, a radio): the caller said
    nothing, so it is still a silent call."""
    decision = Classifier().classify(text=text, channel=Channel.CALL112)
    assert decision.category is Category.GHOST, decision.explanation
    assert decision.priority is Priority.P4


def test_a_silent_line_with_a_sign_of_distress_is_no_silent_call() -> None:
    """A caller who cannot speak: only the breathing is heard."""
    decision = Classifier().classify(
        text="penelepon diam, hanya terdengar napas ngorok", channel=Channel.CALL112
    )
    assert decision.category is not Category.GHOST, decision.explanation
    assert decision.priority is Priority.P1 and decision.questions


def test_a_false_report_noted_is_a_prank_a_rumour_asked_about_is_not() -> None:
    noted = Classifier().classify(
        text="Penelepon lapor kebakaran di pasar, dicek unit tidak ada apa-apa, nomor ini "
        "sudah 3 kali laporan palsu",
        channel=Channel.CALL112,
    )
    assert noted.category is Category.PRANK, noted.explanation
    asked = Classifier().classify(
        text="min kemarin ada orang hanyut di Sambong ya? rame di grup, hoax atau beneran?",
        channel=Channel.WHATSAPP,
    )
    assert asked.category is not Category.PRANK and asked.priority is not Priority.P1


def test_a_patient_who_does_not_answer_is_no_silent_caller() -> None:
    decision = Classifier().classify(
        text="bapak saya tidak ada respon saat dipanggil, napasnya ngorok", channel=Channel.CALL112
    )
    assert decision.category is not Category.GHOST, decision.explanation
    assert decision.priority is Priority.P1


def test_desa_name_shared_by_kecamatan_is_chosen_by_the_other_words() -> None:
    resolver = PlaceResolver(load_gazetteer(PACK))
    sendang = [a for a in resolver.gazetteer.desa if a.name == "Sendang"]
    assert len(sendang) >= 2
    for desa in sendang:
        kecamatan = resolver.gazetteer.kecamatan_of(desa).name
        place = resolver.resolve(text=f"banjir di desa Sendang kecamatan {kecamatan}")
        assert place is not None
        assert (place.desa_code, place.kecamatan) == (desa.code, kecamatan)


def test_coordinates_resolve_to_the_nearest_desa() -> None:
    gazetteer = load_gazetteer(PACK)
    limpung = next(a for a in gazetteer.kecamatan if a.name == "Limpung")
    place = PlaceResolver(gazetteer).resolve(
        text="", location=Location(lat=limpung.lat, lon=limpung.lon, accuracy_m=20)
    )
    assert place.kecamatan == "Limpung" and place.method == "coordinates"


def test_unknown_place_is_unresolved_not_guessed() -> None:
    assert PlaceResolver(load_gazetteer(PACK)).resolve(text="tolong ada orang pingsan") is None
