"""Batang's starter fleet, placed at its real bases (kecamatan centroids where that is all we know)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from schemas.common import Location
from schemas.envelope import Event, new_event
from schemas.events import UnitRegisteredV1
from schemas.ids import derive_id
from schemas.vocabulary import UnitType
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


# Bases every kecamatan has: a Polsek. Regency-level bases are in Batang town.
_CORE: tuple[UnitSpec, ...] = (
    UnitSpec(
        "AMB-PSC119-1", UnitType.AMBULANCE, "PSC 119", "PSC 119 Si Slamet", "Batang", ("ALS",)
    ),
    UnitSpec(
        "AMB-PSC119-2", UnitType.AMBULANCE, "PSC 119", "PSC 119 Si Slamet", "Batang", ("ALS",)
    ),
    UnitSpec(
        "AMB-RSUD-BATANG", UnitType.AMBULANCE, "RSUD Batang", "RSUD Batang", "Batang", ("ALS",)
    ),
    UnitSpec(
        "AMB-RSUD-LIMPUNG", UnitType.AMBULANCE, "RSUD Limpung", "RSUD Limpung", "Limpung", ("ALS",)
    ),
    UnitSpec(
        "FIRE-BATANG-1", UnitType.FIRE_TRUCK, "Damkar", "Mako Damkar Batang", "Batang", ("water",)
    ),
    UnitSpec(
        "FIRE-BATANG-2", UnitType.FIRE_TRUCK, "Damkar", "Mako Damkar Batang", "Batang", ("water",)
    ),
    UnitSpec(
        "FIRE-LIMPUNG-1", UnitType.FIRE_TRUCK, "Damkar", "Pos Damkar Limpung", "Limpung", ("water",)
    ),
    UnitSpec(
        "FIRE-GRINGSING-1",
        UnitType.FIRE_TRUCK,
        "Damkar",
        "Pos Damkar Gringsing",
        "Gringsing",
        ("water",),
    ),
    UnitSpec(
        "SAR-BATANG-1",
        UnitType.RESCUE,
        "SAR/Damkar",
        "Mako Damkar Batang",
        "Batang",
        ("water_rescue",),
    ),
    UnitSpec("BPBD-BATANG-1", UnitType.BPBD_TEAM, "BPBD", "BPBD Batang", "Batang", ("evacuation",)),
    UnitSpec("BPBD-BATANG-2", UnitType.BPBD_TEAM, "BPBD", "BPBD Batang", "Batang", ("evacuation",)),
    UnitSpec(
        "DPU-BATANG-1", UnitType.PUBLIC_WORKS_CREW, "DPUPR", "DPUPR Batang", "Batang", ("roads",)
    ),
    UnitSpec(
        "POL-POLRES-1", UnitType.POLICE, "Polres Batang", "Polres Batang", "Batang", ("traffic",)
    ),
    UnitSpec(
        "POL-POLRES-2", UnitType.POLICE, "Polres Batang", "Polres Batang", "Batang", ("traffic",)
    ),
)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-")


def _puskesmas_ambulances(facilities: Path, kecamatan_names: list[str]) -> list[UnitSpec]:
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
                UnitSpec(f"AMB-PKM-{suffix}", UnitType.AMBULANCE, name, name, kecamatan, ("BLS",))
            )
    return units


def starter_fleet(gazetteer: Gazetteer, *, facilities: Path | None) -> list[UnitSpec]:
    """The core units, a Polsek car per kecamatan and an ambulance per puskesmas in the
    data pack's facilities file (`facilities`, None when the pack has none)."""
    names = [k.name for k in gazetteer.kecamatan]
    fleet = list(_CORE)
    fleet += [
        UnitSpec(f"POL-{_slug(k)}", UnitType.POLICE, f"Polsek {k}", f"Polsek {k}", k, ())
        for k in names
        if k != "Batang"
    ]
    if facilities is not None:
        fleet += _puskesmas_ambulances(facilities, names)
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
