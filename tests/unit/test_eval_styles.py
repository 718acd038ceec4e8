"""The styles `make eval` rewrites held-out reports in keep what each report says."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from eval.styles import (
    STYLES,
    forwarded,
    restyle,
    run_together,
    sms,
    social,
    speech_to_text,
    split_words,
    typing_slips,
)

REPORT = (
    "Tolong! Bapak saya pingsan di kamar mandi, wajahnya mencong dan tidak bisa bicara. "
    "Desa Kalisalak, Limpung."
)
Rewrite = Callable[[str, random.Random], str]
# Long enough that every style changes something in it.
LONG = " ".join([REPORT] * 5)


def _rng() -> random.Random:
    return random.Random(3)


@pytest.mark.parametrize("style", list(STYLES))
def test_a_style_rewrites_a_report_alike_on_every_run(style: str) -> None:
    once = restyle(style, "b-017", LONG)
    assert once == restyle(style, "b-017", LONG)
    assert once != LONG


def test_reports_are_rewritten_each_in_their_own_way() -> None:
    rewrites = {restyle("typing slips", f"a-{n:03d}", LONG) for n in range(20)}
    assert len(rewrites) > 10


def test_speech_to_text_drops_case_and_punctuation_only() -> None:
    said = speech_to_text(REPORT, _rng())
    assert said == said.lower()
    assert not any(c in said for c in "!.,")
    assert said.split() == [w.strip("!.,").lower() for w in REPORT.split()]


@pytest.mark.parametrize("rewrite", [run_together, split_words])
def test_joining_or_cutting_words_keeps_every_letter(rewrite: Rewrite) -> None:
    text = LONG
    rewritten = rewrite(text, _rng())
    assert rewritten != text
    assert "".join(rewritten.split()) == "".join(text.split())


def test_a_typing_slip_is_one_letter_at_most_and_never_the_first() -> None:
    text = LONG
    slipped = typing_slips(text, _rng())
    assert slipped != text
    for before, after in zip(text.split(), slipped.split(), strict=True):
        assert abs(len(before) - len(after)) <= 1
        assert before[0] == after[0]
        assert sorted(before) == sorted(after) or len(before) != len(after)


def test_an_sms_keeps_each_words_first_and_last_letters_and_consonants() -> None:
    text = LONG
    short = sms(text, _rng())
    assert short != text
    for before, after in zip(text.split(), short.split(), strict=True):
        assert (before[0], before[-1]) == (after[0], after[-1])
        consonants = [c for c in before[1:-1] if c not in "aeiou"]
        assert [c for c in after[1:-1]] == consonants or after == before


@pytest.mark.parametrize("wrap", [forwarded, social])
def test_a_wrapper_keeps_the_report_whole(wrap: Rewrite) -> None:
    wrapped = wrap(REPORT, _rng())
    assert REPORT in wrapped and len(wrapped) > len(REPORT)
