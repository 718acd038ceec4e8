"""The starter fleet, read from the data pack's fleet.toml, and its registration events."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.common import MAX_CODE, MAX_NAME, Location
from schemas.envelope import Event, new_event
from schemas.events import UnitRegisteredV1
from schemas.ids import derive_id
from schemas.vocabulary import UnitType
from services.common.datapack import BUILTIN_PACK, FLEET, DataFileError, read_toml
from services.common.gazetteer import Gazetteer


@dataclass(frozen=True)
class UnitSpec:
    """A unit of the starter fleet."""

    unit_id: str
    unit_type: UnitType
    agency: str
    base: str
    kecamatan: str
    capabilities: tuple[str, ...] = ()


Capability = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CODE)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnitEntry(_Strict):
    """A `[[unit]]` of fleet.toml: one unit at its base."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^\S+$", description="Call sign")
    type: UnitType = Field(description="Kind of unit")
    agency: Name = Field(description="Owning agency")
    base: Name = Field(description="Home base name")
    kecamatan: Name = Field(description="Kecamatan of the base (its centre places the unit)")
    capabilities: list[Capability] = Field(default_factory=list, max_length=32)


class PolsekRule(_Strict):
    """`[polsek]`: a police car at the Polsek of every kecamatan but those skipped."""

    skip: list[Name] = Field(default_factory=list, description="Kecamatan without one")


class PuskesmasRule(_Strict):
    """`[puskesmas]`: an ambulance at every puskesmas of the pack's facilities file."""

    capabilities: list[Capability] = Field(default_factory=list, max_length=32)


class FleetFile(_Strict):
    """fleet.toml as written: the units, and the rules that add one per Polsek or puskesmas."""

    unit: list[UnitEntry] = Field(default_factory=list, description="The units by name")
    polsek: PolsekRule | None = None
    puskesmas: PuskesmasRule | None = None


@dataclass(frozen=True)
class FleetPlan:
    """The starter fleet a data pack asks for: its named units and its per-base rules."""

    units: tuple[UnitSpec, ...]
    polsek_skip: frozenset[str] | None  # None: no Polsek cars
    puskesmas_capabilities: tuple[str, ...] | None  # None: no puskesmas ambulances


def load_fleet(path: Path) -> FleetPlan:
    """The fleet plan of `path`; `DataFileError` names the file and the bad entry."""
    found = read_toml(path, FleetFile)
    seen: set[str] = set()
    for n, entry in enumerate(found.unit):
        if entry.id in seen:
            raise DataFileError(f"{path}: unit[{n}].id: {entry.id!r} is already a unit's id")
        seen.add(entry.id)
    units = tuple(
        UnitSpec(e.id, e.type, e.agency, e.base, e.kecamatan, tuple(e.capabilities))
        for e in found.unit
    )
    return FleetPlan(
        units=units,
        polsek_skip=None if found.polsek is None else frozenset(found.polsek.skip),
        puskesmas_capabilities=(
            None if found.puskesmas is None else tuple(found.puskesmas.capabilities)
        ),
    )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-")


def _puskesmas_ambulances(
    facilities: Path, kecamatan_names: list[str], *, capabilities: tuple[str, ...]
) -> list[UnitSpec]:
    units = []
    with facilities.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("type") != "puskesmas":
                continue
            name = row["name"].strip()
            kecamatan = next((k for k in kecamatan_names if k.lower() in name.lower()), None)
            if kecamatan is None:
                continue
            suffix = _slug(name.removeprefix("Puskesmas "))
            units.append(
                UnitSpec(
                    f"AMB-PKM-{suffix}", UnitType.AMBULANCE, name, name, kecamatan, capabilities
                )
            )
    return units


def starter_fleet(
    gazetteer: Gazetteer, *, facilities: Path | None, plan: FleetPlan | None = None
) -> list[UnitSpec]:
    """The units of `plan` (default: Batang's built-in fleet.toml), then its Polsek car per
    kecamatan and its ambulance per puskesmas in the data pack's facilities file
    (`facilities`, None when the pack has none)."""
    plan = plan or load_fleet(BUILTIN_PACK / FLEET)
    names = [k.name for k in gazetteer.kecamatan]
    fleet = list(plan.units)
    if plan.polsek_skip is not None:
        fleet += [
            UnitSpec(f"POL-{_slug(k)}", UnitType.POLICE, f"Polsek {k}", f"Polsek {k}", k, ())
            for k in names
            if k not in plan.polsek_skip
        ]
    if facilities is not None and plan.puskesmas_capabilities is not None:
        fleet += _puskesmas_ambulances(facilities, names, capabilities=plan.puskesmas_capabilities)
    return fleet


def registration_events(
    fleet: list[UnitSpec], gazetteer: Gazetteer, *, at: datetime | None = None
) -> list[Event]:
    """One `UnitRegistered` per unit, with ids that repeat for the same fleet."""
    at = at or datetime.now(UTC)
    by_name = {k.name: k for k in gazetteer.kecamatan}
    events = []
    for spec in fleet:
        kec = by_name.get(spec.kecamatan)
        lat, lon = (kec.lat, kec.lon) if kec else gazetteer.centre
        payload = UnitRegisteredV1(
            unit_id=spec.unit_id,
            unit_type=spec.unit_type,
            agency=spec.agency,
            base=spec.base,
            location=Location(lat=lat, lon=lon),
            capabilities=list(spec.capabilities),
            registered_at=at,
        )
        identity = f"{spec.unit_id}/{spec.unit_type}/{spec.base}/{lat:.5f}/{lon:.5f}"
        events.append(
            new_event(payload, id=derive_id(identity, "registered"), source="/siaga/fleet")
        )
    return events
