"""Triage's word lists, read from the TOML files of `services/triage/lexicon/` and checked at load.

The files are data, so a regency can extend them without code: `SIAGA_TRIAGE_LEXICON_DIR`
points at another folder of the same four files. Every pattern is parsed when the lexicon
loads, so a typo in a file stops the stage at start-up with the file and pattern named.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from schemas.errors import first_error
from schemas.vocabulary import Category, Priority

BUILT_IN = Path(__file__).resolve().parent / "lexicon"
FILES = ("language.toml", "categories.toml", "complaints.toml", "modifiers.toml")

Phrase = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


class LexiconError(ValueError):
    """A lexicon file that is missing or does not say what it must."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryWords(_Strict):
    """A category's agency, default priority and the phrases that point to it."""

    agency: str
    priority: Priority
    strong: list[Phrase] = Field(default_factory=list)
    normal: list[Phrase] = Field(default_factory=list)
    weak: list[Phrase] = Field(default_factory=list)
    questions: list[Phrase] = Field(default_factory=list)


class Complaint(_Strict):
    """A chief complaint: a kind of threat to life, its words and its key questions."""

    id: str
    name: str
    category: Category
    questions: list[Phrase] = Field(min_length=1)
    certain: list[Phrase] = Field(min_length=1)
    possible: list[Phrase] = Field(default_factory=list)
    resolved: list[Phrase] = Field(default_factory=list)
    lower: list[Phrase] = Field(default_factory=list)
    context: list[Phrase] = Field(default_factory=list)
    not_when: list[Phrase] = Field(default_factory=list)


class Complaints(_Strict):
    """complaints.toml: the concepts patterns share and the chief complaints."""

    concepts: dict[str, list[Phrase]]
    complaint: list[Complaint] = Field(min_length=1)


class CommonWords(_Strict):
    """Everyday words the speller must never correct."""

    words: str


class Modifiers(_Strict):
    """modifiers.toml: what changes the meaning of a finding, and words in other senses."""

    negations: list[Phrase]
    denied_after: list[Phrase]
    asked_after: list[Phrase]
    denial_fillers: list[Phrase]
    soften: list[Phrase]
    almost: list[Phrase]
    hypothetical: list[Phrase]
    hearsay: list[Phrase]
    past: list[Phrase]
    still: list[Phrase]
    ongoing: list[Phrase] = Field(default_factory=list)
    handled: list[Phrase]
    habitual: list[Phrase]
    truth_questions: list[Phrase]
    second_hand: list[Phrase]
    watched: list[Phrase]
    other_senses: list[Phrase]
    prank_admissions: list[Phrase]
    laughter: list[Phrase]
    silence: list[Phrase]
    silent_caller: list[Phrase]
    requests: list[Phrase]
    # Nobody hurt, said outright: the model alone must then be as sure as for a past event.
    unhurt: list[Phrase] = Field(default_factory=list)
    emoji: dict[str, str]
    common: CommonWords


class Language(_Strict):
    """language.toml: how callers say things, mapped to one Indonesian word each."""

    words: dict[str, str]
    doubled: list[Phrase] = Field(default_factory=list)


class Lexicon(_Strict):
    """All four files, validated."""

    language: Language
    categories: dict[Category, CategoryWords]
    complaints: Complaints
    modifiers: Modifiers

    @property
    def common_words(self) -> frozenset[str]:
        """Words the speller leaves alone."""
        return frozenset(self.modifiers.common.words.split())


def load_lexicon(folder: Path = BUILT_IN) -> Lexicon:
    """The lexicon of `folder`; `LexiconError` names the file and the problem."""
    raw: dict[str, object] = {}
    for name in FILES:
        path = folder / name
        try:
            with path.open("rb") as handle:
                raw[name.removesuffix(".toml")] = tomllib.load(handle)
        except OSError as exc:
            raise LexiconError(f"{path}: cannot be read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise LexiconError(f"{path}: {exc}") from None
    try:
        lexicon = Lexicon.model_validate(raw)
    except ValidationError as exc:
        where, message = first_error(exc)
        raise LexiconError(f"{folder}: {where}: {message}") from None
    missing = set(Category) - set(lexicon.categories)
    if missing:
        raise LexiconError(f"{folder / 'categories.toml'}: no entry for {sorted(missing)}")
    return lexicon


@cache
def built_in_lexicon() -> Lexicon:
    """The lexicon shipped with Siaga, read once per process."""
    return load_lexicon(BUILT_IN)
