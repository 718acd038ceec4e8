"""The evaluation's label mappings and scores."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval.corpora import OWN_CORPUS, blind_sets, montco_label, own_corpus
from eval.metrics import Outcome, score
from schemas.vocabulary import Category, Channel, Priority
from services.common.datapack import resolve_pack
from services.common.gazetteer import load_gazetteer


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("EMS: CARDIAC ARREST", ("medical", "P1")),
        ("EMS: FALL VICTIM", ("medical", "P2")),
        ("EMS: VEHICLE ACCIDENT", ("traffic_accident", "P2")),
        ("Traffic: DISABLED VEHICLE -", ("traffic_accident", "P3")),
        ("Traffic: ROAD OBSTRUCTION -", ("infrastructure", "P3")),
        ("Fire: BUILDING FIRE", ("fire", "P1")),
        ("Fire: GAS-ODOR/LEAK", ("fire", "P2")),
        ("Fire: CARDIAC ARREST", ("medical", "P1")),
        ("Fire: RESCUE - WATER", ("rescue", "P1")),
        ("EMS: ASSAULT VICTIM", ("crime", "P2")),
    ],
)
def test_montgomery_titles_map_to_our_vocabulary(title: str, expected: tuple[str, str]) -> None:
    assert montco_label(title) == expected


def test_scores_count_what_they_say() -> None:
    outcomes = [
        Outcome("fire", "P1", "Bandar", "fire", "P1", "Bandar", False),
        Outcome("fire", "P1", "Subah", "medical", "P2", "Tulis", False),
        Outcome("medical", "P3", None, "medical", "P1", None, True),
    ]
    figures = score(outcomes)
    assert figures["per_category"]["fire"] == {
        "support": 2,
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(0.6667, abs=1e-4),
    }
    assert figures["per_category"]["medical"]["precision"] == 0.5
    assert figures["p1_recall"] == 0.5
    assert figures["p3_p4_raised_to_p1"] == 1.0
    assert figures["kecamatan_right"] == 0.5
    assert figures["sent_to_human_review"] == pytest.approx(0.3333, abs=1e-4)


def test_the_corpus_is_large_varied_and_uses_our_vocabulary() -> None:
    reports = own_corpus()
    assert len(reports) >= 400
    assert {r.category for r in reports} == {c.value for c in Category}
    assert {r.channel for r in reports} == {c.value for c in Channel}
    assert {r.priority for r in reports} <= {p.value for p in Priority}
    assert {r.split for r in reports} == {"dev", "test"}
    languages = {json.loads(line)["language"] for line in OWN_CORPUS.read_text().splitlines()}
    assert languages == {"id", "jv", "mixed", "en"}
    assert len({r.id for r in reports}) == len(reports)
    assert Path(OWN_CORPUS).is_file()


def test_the_blind_sets_use_our_vocabulary_and_the_regencys_places() -> None:
    reports = blind_sets()
    assert len(reports) >= 1300
    assert len({r.id for r in reports}) == len(reports)
    assert {r.category for r in reports} == {c.value for c in Category}
    assert {a for r in reports for a in r.alt} <= {c.value for c in Category}
    assert {r.channel for r in reports} <= {c.value for c in Channel}
    assert {r.priority for r in reports} == {p.value for p in Priority}
    # Every writer's set is whole (one theme each, ~150 reports).
    sizes = Counter(r.writer for r in reports)
    assert min(sizes.values()) >= 140
    kecamatan = {a.name for a in load_gazetteer(resolve_pack(None)).kecamatan}
    assert {r.kecamatan for r in reports if r.kecamatan} <= kecamatan
