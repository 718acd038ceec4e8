"""Run cards and speeds are data: the shipped file gives today's cards, a bad one one line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.vocabulary import Category, Priority, UnitType
from services.common.datapack import BUILTIN_PACK, DataFileError, DataPackError, open_pack
from services.dispatcher.runcards import RunCards

SHIPPED = BUILTIN_PACK / "runcards.toml"

# The cards as they were written in runcards.py before they became data.
CARDS_BEFORE = {
    ("medical", "P1"): ("ambulance:ALS",),
    ("medical", "P2"): ("ambulance",),
    ("fire", "P1"): ("fire_truck", "fire_truck", "ambulance"),
    ("fire", "P2"): ("fire_truck",),
    ("traffic_accident", "P1"): ("police", "ambulance:ALS", "ambulance"),
    ("traffic_accident", "P2"): ("police", "ambulance"),
    ("crime", "P1"): ("police", "police"),
    ("crime", "P2"): ("police",),
    ("disaster", "P1"): ("bpbd_team", "rescue", "ambulance"),
    ("disaster", "P2"): ("bpbd_team",),
    ("rescue", "P1"): ("rescue", "ambulance"),
    ("rescue", "P2"): ("rescue",),
}
SPEEDS_BEFORE = {
    "ambulance": 45.0,
    "fire_truck": 35.0,
    "police": 50.0,
    "rescue": 40.0,
    "bpbd_team": 35.0,
    "public_works_crew": 30.0,
}


def _travel_before(distance_km: float, unit_type: str, priority: Priority) -> tuple[float, int]:
    road_km = distance_km * 1.35
    speed = SPEEDS_BEFORE[unit_type] * (1.2 if priority is Priority.P1 else 1.0)
    return round(road_km, 2), int(road_km / speed * 3600)


def test_the_shipped_cards_are_the_ones_written_in_code_before() -> None:
    cards = RunCards.load(SHIPPED)
    found = {
        (c.value, p.value): tuple(str(s) for s in cards.slots(c, p))
        for c in Category
        for p in Priority
        if cards.slots(c, p)
    }
    assert found == CARDS_BEFORE
    ambulance = cards.slots(Category.MEDICAL, Priority.P1)[0]
    assert ambulance.unit_type is UnitType.AMBULANCE and ambulance.capability == "ALS"


@pytest.mark.parametrize("priority", list(Priority))
@pytest.mark.parametrize("unit_type", list(UnitType))
def test_the_shipped_speeds_give_the_travel_times_of_before(
    unit_type: UnitType, priority: Priority
) -> None:
    cards = RunCards.load(SHIPPED)
    for km in (0.0, 0.4, 3.7, 12.25, 41.0):
        trip = cards.travel(km, unit_type=unit_type, priority=priority)
        assert (trip.road_km, trip.seconds) == _travel_before(km, unit_type.value, priority)


def test_the_setting_still_overrides_one_card() -> None:
    cards = RunCards.load(SHIPPED).with_overrides('{"fire/P1": ["fire_truck"]}')
    assert [str(s) for s in cards.slots(Category.FIRE, Priority.P1)] == ["fire_truck"]
    assert [str(s) for s in cards.slots(Category.MEDICAL, Priority.P1)] == ["ambulance:ALS"]
    with pytest.raises(ValueError, match="bad run cards setting"):
        RunCards.load(SHIPPED).with_overrides('{"fire/P1": ["hovercraft"]}')


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "runcards.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'P2 = ["fire_truck"]',
            'P2 = ["fire_engine"]',
            r"cards\.fire\.P2\[0\]: unknown unit type \(one of ambulance, .*\) \(found 'fire_engine'\)$",
        ),
        ("[cards.utilities]\n", "", r"cards: no card for utilities \(an empty"),
        ("police = 50.0", "police = -50.0", r"speed_kmh\.police: .*greater than 0"),
        ("police = 50.0", "", r"speed_kmh: no speed for police"),
        ("ambulance = 45.0", 'ambulance = "fast"', r"speed_kmh\.ambulance: .*valid number"),
        ("[cards.crime]", "[cards.burglary]", r"cards\.burglary: .*'medical'.*found 'burglary'"),
        ('P2 = ["police"]', 'P5 = ["police"]', r"cards\.crime\.P5: .*'P1'.*found 'P5'"),
        ('P2 = ["police"]', "P2 = []", r"cards\.crime\.P2: no units \(leave the priority out"),
        ("road_factor = 1.35", "road_factor = 0.5", r"road_factor: .*greater than or equal to 1"),
        ("road_factor = 1.35", "road_factr = 1.35", r"road_factor: Field required \(and 1 more\)"),
        ("lights_and_sirens = 1.2", "", r"lights_and_sirens: Field required"),
        ('P2 = ["police"]', "P2 = [1]", r"cards\.crime\.P2\[0\]: a unit is a string"),
        ("[speed_kmh]", "[speed_kmh", r"not TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_the_entry(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = _edited(tmp_path, old, new)
    with pytest.raises(DataFileError) as caught:
        RunCards.load(path)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"{path}: ")
    assert isinstance(caught.value, DataPackError)  # so the CLI prints it as one line
    assert re.search(message, text), text


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"runcards\.toml: cannot be read"):
        RunCards.load(tmp_path / "runcards.toml")


def test_a_pack_uses_its_own_run_cards_and_batangs_without_them(tmp_path: Path) -> None:
    (tmp_path / "regions").mkdir()
    shutil.copy(BUILTIN_PACK / "regions" / "batang_regions.csv", tmp_path / "regions")
    assert open_pack(tmp_path).run_cards == SHIPPED
    own = _edited(tmp_path, 'P2 = ["fire_truck"]', 'P2 = ["fire_truck", "rescue"]')
    pack = open_pack(tmp_path)
    assert pack.run_cards == own
    cards = RunCards.load(pack.run_cards)
    assert [str(s) for s in cards.slots(Category.FIRE, Priority.P2)] == ["fire_truck", "rescue"]


def test_siaga_up_stops_at_a_bad_file_before_it_starts_anything(tmp_path: Path) -> None:
    (tmp_path / "regions").mkdir()
    shutil.copy(BUILTIN_PACK / "regions" / "batang_regions.csv", tmp_path / "regions")
    bad = _edited(tmp_path, "police = 50.0", "police = 0")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env |= {"SIAGA_DATA_DIR": str(tmp_path), "SIAGA_HOME": str(tmp_path / ".siaga")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])  # this checkout's code
    # Nothing embedded may start, even if the check were gone: these reach nothing.
    env |= {
        "SIAGA_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "SIAGA_DATABASE_URL": "postgresql://x@127.0.0.1:9/x",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "up"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr == f"siaga: {bad}: speed_kmh.police: Input should be greater than 0 (found 0)\n"
    )
    assert not (tmp_path / ".siaga" / "stack.json").exists()
