"""The starter fleet is data: the shipped fleet.toml gives today's fleet, a bad one one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from schemas.vocabulary import UnitType
from services.common.datapack import BUILTIN_PACK, DataFileError, DataPackError, open_pack
from services.common.gazetteer import load_gazetteer
from services.dispatcher.fleet import UnitSpec, load_fleet, starter_fleet

SHIPPED = BUILTIN_PACK / "fleet.toml"
A, F, P = UnitType.AMBULANCE, UnitType.FIRE_TRUCK, UnitType.POLICE

# The core units as they were written in fleet.py before they became data.
CORE_BEFORE = [
    UnitSpec("AMB-PSC119-1", A, "PSC 119", "PSC 119 Si Slamet", "Batang", ("ALS",)),
    UnitSpec("AMB-PSC119-2", A, "PSC 119", "PSC 119 Si Slamet", "Batang", ("ALS",)),
    UnitSpec("AMB-RSUD-BATANG", A, "RSUD Batang", "RSUD Batang", "Batang", ("ALS",)),
    UnitSpec("AMB-RSUD-LIMPUNG", A, "RSUD Limpung", "RSUD Limpung", "Limpung", ("ALS",)),
    UnitSpec("FIRE-BATANG-1", F, "Damkar", "Mako Damkar Batang", "Batang", ("water",)),
    UnitSpec("FIRE-BATANG-2", F, "Damkar", "Mako Damkar Batang", "Batang", ("water",)),
    UnitSpec("FIRE-LIMPUNG-1", F, "Damkar", "Pos Damkar Limpung", "Limpung", ("water",)),
    UnitSpec("FIRE-GRINGSING-1", F, "Damkar", "Pos Damkar Gringsing", "Gringsing", ("water",)),
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
    UnitSpec("POL-POLRES-1", P, "Polres Batang", "Polres Batang", "Batang", ("traffic",)),
    UnitSpec("POL-POLRES-2", P, "Polres Batang", "Polres Batang", "Batang", ("traffic",)),
]


def test_the_shipped_fleet_is_the_one_written_in_code_before() -> None:
    pack = open_pack(BUILTIN_PACK, builtin=True)
    plan = load_fleet(pack.fleet)
    assert list(plan.units) == CORE_BEFORE
    fleet = starter_fleet(load_gazetteer(pack), facilities=pack.facilities, plan=plan)
    assert fleet[: len(CORE_BEFORE)] == CORE_BEFORE
    polsek = [u for u in fleet if u.agency.startswith("Polsek ")]
    assert len(polsek) == 14 and "POL-BATANG" not in {u.unit_id for u in polsek}
    assert polsek[0] == UnitSpec(
        "POL-WONOTUNGGAL", P, "Polsek Wonotunggal", "Polsek Wonotunggal", "Wonotunggal", ()
    )
    puskesmas = [u for u in fleet if u.unit_id.startswith("AMB-PKM-")]
    assert len(puskesmas) == 21 and all(u.capabilities == ("BLS",) for u in puskesmas)
    assert fleet == CORE_BEFORE + polsek + puskesmas


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "fleet.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('type = "fire_truck"', 'type = "fire_engine"', r"unit\[4\]\.type: .*found 'fire_engine'"),
        (
            'id = "AMB-PSC119-2"',
            'id = "AMB-PSC119-1"',
            r"unit\[1\]\.id: 'AMB-PSC119-1' is already a unit's id",
        ),
        ('agency = "PSC 119"', 'agency = ""', r"unit\[0\]\.agency: .*at least 1 character"),
        ('id = "AMB-PSC119-1"', 'id = "AMB PSC119"', r"unit\[0\]\.id: .*pattern"),
        ('kecamatan = "Batang"', 'kecamatn = "Batang"', r"unit\[0\]\.kecamatan: Field required"),
        ('skip = ["Batang"]', 'skip = "Batang"', r"polsek\.skip: .*valid list"),
        ('capabilities = ["BLS"]', 'capability = ["BLS"]', r"puskesmas\.capability: Extra"),
        ("[[unit]]", "[[unit]", r"not TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_the_entry(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = _edited(tmp_path, old, new)
    with pytest.raises(DataFileError) as caught:
        load_fleet(path)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"{path}: ")
    assert isinstance(caught.value, DataPackError)  # so the CLI prints it as one line
    assert re.search(message, text), text


def test_a_pack_brings_its_own_fleet_and_rules(tmp_path: Path) -> None:
    (tmp_path / "regions").mkdir()
    shutil.copy(BUILTIN_PACK / "regions" / "batang_regions.csv", tmp_path / "regions")
    assert open_pack(tmp_path).fleet == SHIPPED  # none of its own: Batang's
    (tmp_path / "fleet.toml").write_text(
        '[[unit]]\nid = "AMB-1"\ntype = "ambulance"\nagency = "PSC"\nbase = "PSC"\n'
        'kecamatan = "Limpung"\n\n[polsek]\nskip = ["Batang", "Limpung"]\n',
        encoding="utf-8",
    )
    pack = open_pack(tmp_path)
    plan = load_fleet(pack.fleet)
    assert plan.puskesmas_capabilities is None  # no [puskesmas]: no puskesmas ambulances
    fleet = starter_fleet(load_gazetteer(pack), facilities=pack.facilities, plan=plan)
    assert fleet[0] == UnitSpec("AMB-1", A, "PSC", "PSC", "Limpung", ())
    assert len(fleet) == 1 + 13 and "POL-LIMPUNG" not in {u.unit_id for u in fleet}
