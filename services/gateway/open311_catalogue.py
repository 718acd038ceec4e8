"""Open311 services: the complaint categories a citizen's app may report, read from the data
pack's `open311.toml` and checked at load, each with the agency triage names for it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.common import MAX_NAME, MAX_TEXT
from schemas.vocabulary import Category
from services.common.datapack import DataFileError, read_toml
from services.common.gazetteer import Gazetteer

# A service code goes in a URL path (`services/{code}.json`): no dots, slashes or spaces.
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Categories that are no complaint anyone files: triage's verdicts on non-incidents.
NOT_SERVICES = frozenset({Category.PRANK, Category.GHOST})

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_placeholder(text: str) -> str:
    try:
        text.format(agency="DPUPR")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"only {{agency}} may be named in braces ({exc})") from None
    return text


Notice = Annotated[Text, StringConstraints(max_length=MAX_NAME * 2)]


class NoticesFile(_Strict):
    """`[notices]`: what a citizen is told at each step of a request."""

    received: Notice
    queued: Notice
    handled: Notice
    resolved: Notice
    cancelled: Notice
    merged: Notice

    @field_validator("*")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return _one_placeholder(value)


class ServiceEntry(_Strict):
    """`[[service]]`: one service as written."""

    code: str
    category: Category | None = None
    name: Annotated[Text, StringConstraints(max_length=MAX_NAME)]
    description: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""
    keywords: list[Annotated[Text, StringConstraints(max_length=100)]] = Field(default_factory=list)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CODE.match(value):
            raise ValueError("a code is 1-64 letters, digits, '_' or '-', starting alphanumeric")
        return value

    @field_validator("keywords")
    @classmethod
    def _no_commas(cls, value: list[str]) -> list[str]:
        if any("," in k for k in value):
            raise ValueError("a keyword has no comma (the list is shown comma-separated)")
        return value

    @property
    def of_category(self) -> Category:
        """The service's category: the one named, else the one its code is."""
        if self.category is not None:
            return self.category
        return Category(self.code)

    @model_validator(mode="after")
    def _category(self) -> ServiceEntry:
        if self.category is None and self.code not in {c.value for c in Category}:
            raise ValueError(f"service {self.code!r}: name its category (its code is none)")
        if self.of_category in NOT_SERVICES:
            raise ValueError(f"service {self.code!r}: {self.of_category} is no complaint")
        return self


class Open311File(_Strict):
    """`open311.toml` as written."""

    notices: NoticesFile
    service: list[ServiceEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Open311File:
        codes = [s.code for s in self.service]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"service code used twice: {', '.join(twice)}")
        return self


@dataclass(frozen=True)
class Service:
    """An Open311 service: what the citizen picks, and the agency of its category."""

    code: str
    category: Category
    name: str
    description: str
    keywords: tuple[str, ...]
    agency: str


@dataclass(frozen=True)
class Catalogue:
    """The services offered, the notices, and the region codes an `address_id` may be."""

    services: tuple[Service, ...]
    notices: NoticesFile
    addresses: Mapping[str, str]

    def find(self, code: str) -> Service | None:
        """The service of `code`, or None."""
        return next((s for s in self.services if s.code == code), None)


def addresses_of(gazetteer: Gazetteer) -> dict[str, str]:
    """Each Kemendagri code of a kecamatan or desa/kelurahan, and the place hint it gives:
    "Desa, Kecamatan" (the enricher reads a desa's kecamatan to tell namesakes apart)."""
    found: dict[str, str] = {}
    for area in gazetteer.areas:
        if area.level == "kecamatan":
            found[area.code] = area.name
        elif area.level in ("desa", "kelurahan"):
            found[area.code] = f"{area.name}, {gazetteer.kecamatan_of(area).name}"
    return found


def load_catalogue(
    path: Path, *, agencies: Mapping[Category, str], gazetteer: Gazetteer
) -> Catalogue:
    """The services of `path`, with the agency of each category (triage's categories.toml);
    `DataFileError` names the file and the first bad entry in one line."""
    written = read_toml(path, Open311File)
    services = []
    for entry in written.service:
        agency = agencies.get(entry.of_category)
        if not agency or agency == "-":
            raise DataFileError(f"{path}: service {entry.code!r}: no agency for its category")
        services.append(
            Service(
                code=entry.code,
                category=entry.of_category,
                name=entry.name,
                description=entry.description,
                keywords=tuple(entry.keywords),
                agency=agency,
            )
        )
    return Catalogue(tuple(services), written.notices, addresses_of(gazetteer))
