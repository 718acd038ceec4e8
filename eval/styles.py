"""The held-out reports rewritten in the styles a call-taker's screen also receives.

A writer's set shows one way of telling an emergency; the same report also arrives as a
speech-to-text transcript, as a hurried SMS, or wrapped in a forward, a social-media comment
or an official's situation report. `make eval` triages every held-out report in each style
below, with the same held-out model, and reports the figures per style: triage should not
lose a threat to life because of how it was typed or what was said around it. Each rewrite
keeps what the report says (no word of it is dropped), so its labels still hold; the
rewrites are seeded by the report's id, so every run rewrites alike. What a wrapper adds
names no category of its own, and silent calls are not wrapped.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_PUNCTUATION = re.compile(r"[^\w\s]")
_INNER_VOWELS = re.compile(r"[aeiou]")

RUN_TOGETHER = 0.12  # share of word pairs written as one word
SPLIT = 0.15  # share of words of 7 letters or more written as two
SLIPS = 0.2  # share of words of 6 letters or more with one typing slip
NO_VOWELS = 0.25  # share of words of 6 letters or more written without their inner vowels


def speech_to_text(text: str, rng: random.Random) -> str:
    """A transcript: lower case, no punctuation."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def run_together(text: str, rng: random.Random) -> str:
    """Some pairs of words written as one ("tidaksadar")."""
    words = text.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        if i + 1 < len(words) and rng.random() < RUN_TOGETHER:
            out.append(words[i] + words[i + 1])
            i += 2
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


def _some_words(
    text: str,
    rng: random.Random,
    change: Callable[[str], str],
    *,
    share: float,
    shortest: int = 6,
    letters_only: bool = True,
) -> str:
    """`text` with `share` of its words of `shortest` letters or more (letters only, unless
    told otherwise) passed through `change`."""
    out: list[str] = []
    for word in text.split():
        long_enough = len(word) >= shortest and (word.isalpha() or not letters_only)
        if long_enough and rng.random() < share:
            word = change(word)
        out.append(word)
    return " ".join(out)


def split_words(text: str, rng: random.Random) -> str:
    """Some long words cut in two ("kece lakaan")."""

    def cut(word: str) -> str:
        at = rng.randrange(3, len(word) - 2)
        return f"{word[:at]} {word[at:]}"

    return _some_words(text, rng, cut, share=SPLIT, shortest=7, letters_only=False)


def typing_slips(text: str, rng: random.Random) -> str:
    """Some long words with one slip: a letter left out, two swapped, or one doubled."""

    def slip(word: str) -> str:
        at = rng.randrange(1, len(word) - 1)
        kind = rng.randrange(3)
        if kind == 0:
            return word[:at] + word[at + 1 :]
        if kind == 1:
            return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        return word[:at] + word[at] + word[at:]

    return _some_words(text, rng, slip, share=SLIPS)


def sms(text: str, rng: random.Random) -> str:
    """Some long words without their inner vowels ("kbkrn")."""

    def shortened(word: str) -> str:
        return word[0] + _INNER_VOWELS.sub("", word[1:-1]) + word[-1]

    return _some_words(text, rng, shortened, share=NO_VOWELS)


def forwarded(text: str, rng: random.Random) -> str:
    """Passed on from a neighbourhood group, among other news."""
    head = rng.choice(("Diteruskan dari grup RT:", "Fwd dari grup warga:", "Info dari tetangga:"))
    # What is passed on around it says nothing of any category (a schedule or a notice
    # would be a report of its own).
    tail = rng.choice(
        (
            "Mohon dibagikan ke warga lain.",
            "Terima kasih, semoga bermanfaat.",
            "Begitu kabarnya, mohon maaf kalau kurang jelas.",
        )
    )
    return f"{head} {text} {tail}"


def social(text: str, rng: random.Random) -> str:
    """A comment under a post: emoji, hashtags and mentions of the agencies' accounts."""
    tags = rng.choice(
        (
            "😭🙏 #batang #infobatang @polresbatang",
            "🙏🙏 #infobatang @psc119batang @bpbdbatang",
            "😱 #batangviral @pemkabbatang",
        )
    )
    return f"{text} {tags}"


def situation_report(text: str, rng: random.Random) -> str:
    """An official's report with fields."""
    hour = rng.randrange(0, 24)
    return (
        f"LAPORAN SITUASI. Waktu: {hour:02d}.{rng.randrange(60):02d} WIB. "
        f"Kejadian: {text} Pelapor: warga. Tindak lanjut: diteruskan ke petugas."
    )


# Styles that add words around a report: a silent call so wrapped is no silent call, so
# reports labelled `ghost` are left out of their figures.
WRAPPERS = frozenset({"forwarded, among other news", "social comment", "situation report"})

STYLES: dict[str, Callable[[str, random.Random], str]] = {
    "speech-to-text": speech_to_text,
    "words run together": run_together,
    "words split": split_words,
    "typing slips": typing_slips,
    "SMS without vowels": sms,
    "forwarded, among other news": forwarded,
    "social comment": social,
    "situation report": situation_report,
}


def restyle(style: str, report_id: str, text: str) -> str:
    """`text` (of report `report_id`) in `style`, the same on every run."""
    return STYLES[style](text, random.Random(f"{style}/{report_id}"))
