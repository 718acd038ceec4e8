"""The classifier on reports as people really send them: typos, Javanese, English, denials,
pranks, flagged numbers; and the text helpers underneath."""

from __future__ import annotations

import pytest

from schemas.events import CallerSignals
from schemas.vocabulary import Category, Channel, Priority
from services.common.text import normalise, words
from services.triage.classifier import Classifier
from services.triage.reading import Speller

FLAGGED = CallerSignals(
    prior_reports=5, prior_pranks=4, repeat_caller=True, prank_flagged=True, ghost=False
)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


@pytest.mark.parametrize(
    ("text", "channel", "category", "priority"),
    [
        (
            "tlg ada kcelakaan truk di pantura, sopir kejepit",
            Channel.CALL112,
            "traffic_accident",
            "P1",
        ),
        ("kebakran gudang kayu, apinya besar", Channel.CALL112, "fire", "P1"),
        ("omah kobong, genine nganti duwur", Channel.CALL112, "fire", "P1"),
        ("bocah kelelep ning kali, durung ketemu", Channel.CALL112, "rescue", "P1"),
        ("bojoku getihen akeh bar nglahirke", Channel.PSC119, "medical", "P1"),
        ("my father collapsed and is not breathing", Channel.CALL112, "medical", "P1"),
        ("someone stole my bag at the market", Channel.CALL112, "crime", "P2"),
        ("banjir setinggi lutut masuk rumah warga", Channel.WHATSAPP, "disaster", "P2"),
        ("dalan ning desa bolong-bolong, mbok didandani", Channel.WHATSAPP, "infrastructure", "P3"),
        # A big tree across the road is urgent, not a 3-day complaint (the shared corpus
        # labels its like P2 too).
        ("uwit gedhe tumbang nutup dalan", Channel.SMS, "environment", "P2"),
        ("banyu PDAM butek kaya teh", Channel.SMS, "utilities", "P3"),
        ("blangko ktp habis terus, kapan ada lagi", Channel.INSTAGRAM, "civil_registry", "P3"),
        ("antrean pendaftaran pasien bpjs panjang sekali", Channel.WEB, "health_service", "P3"),
        ("knalpot brong tiap malam berisik banget", Channel.INSTAGRAM, "public_order", "P3"),
        ("bantuan PKH salah sasaran", Channel.WEB, "social_welfare", "P3"),
        ("mau tanya jadwal pendaftaran CPNS", Channel.WHATSAPP, "information", "P4"),
        ("truk terguling di tanjakan, sopir luka", Channel.CALL112, "traffic_accident", "P2"),
    ],
)
def test_reports_as_people_send_them(
    classifier: Classifier, text: str, channel: Channel, category: str, priority: str
) -> None:
    decision = classifier.classify(text=text, channel=channel)
    assert (decision.category.value, decision.priority.value) == (category, priority), (
        decision.explanation
    )
    assert not decision.needs_review, decision.explanation


def test_a_denied_threat_is_no_threat(classifier: Classifier) -> None:
    denied = classifier.classify(
        text="tanah longsor menutup jalan, tidak ada korban jiwa", channel=Channel.CALL112
    )
    assert denied.category is Category.DISASTER and denied.priority is Priority.P2
    said = classifier.classify(text="tanah longsor, ada korban jiwa", channel=Channel.CALL112)
    assert said.priority is Priority.P1


def test_a_fire_already_out_is_urgent_not_immediate(classifier: Classifier) -> None:
    decision = classifier.classify(
        text="tadi kebakaran dapur, api sudah padam tapi asap masih ada", channel=Channel.CALL112
    )
    assert (decision.category, decision.priority) == (Category.FIRE, Priority.P2)
    assert "sudah padam" in decision.explanation


def test_a_caller_owning_up_to_a_prank_is_a_prank_unless_a_life_is_at_risk(
    classifier: Classifier,
) -> None:
    prank = classifier.classify(
        text="ada kebakaran pak di hatiku hahaha, cuma bercanda", channel=Channel.CALL112
    )
    assert prank.category is Category.PRANK and not prank.dispatches_units
    # Laughing nervously while someone is trapped is no prank.
    real = classifier.classify(
        text="haha tolong ada kebakaran, orang terjebak", channel=Channel.CALL112
    )
    assert (real.category, real.priority) == (Category.FIRE, Priority.P1)


def test_a_flagged_number_is_lowered_unless_a_life_is_at_risk(classifier: Classifier) -> None:
    risky = classifier.classify(
        text="ada kebakaran, orang terjebak", channel=Channel.CALL112, signals=FLAGGED
    )
    assert (risky.category, risky.priority) == (Category.FIRE, Priority.P1)
    assert risky.dispatches_units and not risky.needs_review
    assert "flagged" in risky.explanation
    calm = classifier.classify(text="ada kebakaran", channel=Channel.CALL112, signals=FLAGGED)
    assert (calm.category, calm.priority) == (Category.FIRE, Priority.P3)


def test_a_life_threat_is_never_held_for_review(classifier: Classifier) -> None:
    unclear = classifier.classify(text="tolong ada yang tidak sadar", channel=Channel.SMS)
    assert unclear.priority is Priority.P1 and not unclear.needs_review
    vague = classifier.classify(text="halo, pak, tolong", channel=Channel.CALL112)
    assert vague.needs_review and vague.priority is Priority.P4


def test_threat_words_say_how_bad_not_what(classifier: Classifier) -> None:
    decision = classifier.classify(text="ada kebakaran, orang terjebak", channel=Channel.CALL112)
    assert decision.confidence >= 0.7, decision.explanation


def test_text_helpers_spell_out_shorthand_and_fix_typos_only_towards_keywords() -> None:
    assert normalise("Tolooong!!  Alun2 Batang") == "tolong alun alun batang"
    assert words("tlg omah kobong ning Tumbrep") == ["tolong", "rumah", "kobong", "di", "tumbrep"]
    assert words("omahe kobong") == ["rumah", "kobong"]
    assert words("ngancam pake parang") == ["ngancam", "pake", "parang"]  # not "bapak"
    speller = Speller({"kebakaran", "bakar", "tenggelam"}, known={"bayar"})
    assert speller.correct("kebakran") == "kebakaran"
    assert speller.correct("tengelam") == "tenggelam"
    assert speller.correct("bayar") == "bayar"  # a real word, not a slip of "bakar"
    assert speller.correct("bakarnya") == "bakar"  # ending dropped
    assert speller.correct("kota") == "kota"  # short words are never guessed


def test_the_speller_remembers_a_bounded_number_of_words_and_answers_alike() -> None:
    slips = ["kebakran", "tengelam", "bakarnya", "kebakarn", "tenggelm", "kota", "tolong"]
    fresh = [Speller({"kebakaran", "bakar", "tenggelam"}).correct(w) for w in slips]
    speller = Speller({"kebakaran", "bakar", "tenggelam"})
    speller.MEMO_SIZE = 3
    for _ in range(3):  # asked again and again, past the bound
        assert [speller.correct(w) for w in slips] == fresh
    assert len(speller._memo) <= 3


def test_a_misdial_is_no_prank(classifier: Classifier) -> None:
    """A prank verdict counts against the caller's number; a wrong number owns up to no joke."""
    decision = classifier.classify(
        text="maaf pak salah sambung, tadi mau telpon toko bangunan", channel=Channel.CALL112
    )
    assert decision.category is not Category.PRANK, decision.explanation
    assert decision.priority is Priority.P4
