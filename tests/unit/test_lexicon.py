"""Triage's word lists as data: the pattern syntax, validation at load, another regency's
lexicon from SIAGA_TRIAGE_LEXICON_DIR, and the model files made by `make model`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.vocabulary import Channel, Priority
from services.triage.bootstrap import TriageSettings
from services.triage.lexicon import BUILT_IN, LexiconError, load_lexicon
from services.triage.model import ModelError, built_in_model, load_model
from services.triage.phrases import PatternError, PhraseIndex, expand


def test_patterns_match_words_affixes_choices_concepts_and_gaps() -> None:
    index = PhraseIndex(
        [
            ("@person .. tidak gerak", "still"),
            ("*timpa", "crushed"),
            ("kejang* .. (tidak berhenti|lebih dari)", "fit"),
        ],
        concepts={"person": ["anak", "korban"]},
    )
    found = {m.value for m in index.find(["korban", "masih", "tidak", "gerak"])}
    assert found == {"still"}
    assert {m.value for m in index.find(["rumah", "tertimpa", "pohon"])} == {"crushed"}
    assert {
        m.value for m in index.find(["kejangnya", "sudah", "lebih", "dari", "lima", "menit"])
    } == {"fit"}
    assert not index.find(
        ["korban", "sudah", "bangun", "lalu", "diam", "tidak", "gerak"]
    )  # gap of four
    assert expand("a (b c|d) e") == ["a b c e", "a d e"]
    # choices of one word each are one slot, not one pattern each
    assert expand("(a|b*) (c|d) e") == ["a|b* c|d e"]


@pytest.mark.parametrize(
    "bad",
    [
        ".. tidak",
        "tidak ..",
        "@nobody sakit",
        "ab*",
        "(a|b",
        "a)",
        "ditarik (paksa )?masuk",
        "sakit,",
    ],
)
def test_a_pattern_that_cannot_be_read_is_refused(bad: str) -> None:
    with pytest.raises(PatternError):
        PhraseIndex([(bad, 1)], concepts={})


def test_the_built_in_lexicon_loads_and_names_every_category() -> None:
    lexicon = load_lexicon()
    assert len(lexicon.complaints.complaint) >= 20
    assert all(c.questions for c in lexicon.complaints.complaint)


def test_another_lexicon_comes_from_settings_and_a_broken_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "lexicon"
    shutil.copytree(BUILT_IN, folder)
    complaints = folder / "complaints.toml"
    # A regency adds its own word for a stroke ("ngeblek" is made up for the test).
    text = complaints.read_text(encoding="utf-8").replace(
        'certain = [\n  "stroke",', 'certain = [\n  "ngeblek", "stroke",', 1
    )
    complaints.write_text(text, encoding="utf-8")
    monkeypatch.setenv("SIAGA_TRIAGE_LEXICON_DIR", str(folder))
    classifier = TriageSettings().classifier(place_names=[])
    decision = classifier.classify(text="bapak saya ngeblek", channel=Channel.PSC119)
    assert decision.priority is Priority.P1 and "stroke" in decision.complaints

    complaints.write_text(text.replace("category = ", "category = 1 # ", 1), encoding="utf-8")
    with pytest.raises(LexiconError, match="complaint"):
        load_lexicon(folder)
    (folder / "modifiers.toml").unlink()
    with pytest.raises(LexiconError, match=r"modifiers\.toml"):
        load_lexicon(folder)


def test_the_model_files_read_back_as_written(tmp_path: Path) -> None:
    model = built_in_model()
    model.save(tmp_path)
    again = load_model(tmp_path)
    assert again.vocabulary == model.vocabulary
    for name, head in model.heads.items():
        assert (again.heads[name].weights == head.weights).all()
        assert again.heads[name].classes == head.classes
    for name in ("features.tsv", "model.json", "words.txt"):
        assert (tmp_path / name).read_bytes() == (
            Path(load_model.__code__.co_filename).parent / "model" / name
        ).read_bytes()
    (tmp_path / "features.tsv").write_text("feature\tidf\nw:x\tnot a number\n")
    with pytest.raises(ModelError, match="damaged"):
        load_model(tmp_path)
