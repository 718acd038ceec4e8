"""The regency's data pack: Batang's built in, another regency's from SIAGA_DATA_DIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from services.common.datapack import BUILTIN_PACK, DataPackError, open_pack, resolve_pack
from services.common.gazetteer import load_gazetteer
from services.common.settings import HomeSettings
from services.dispatcher.fleet import starter_fleet
from services.enricher.boundaries import load_boundaries
from services.enricher.places import PlaceResolver, read_landmarks

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def siaga(*args: str, cwd: Path, data_dir: Path | None) -> subprocess.CompletedProcess[str]:
    """`siaga ARGS` in a fresh process, run from `cwd`, with only this SIAGA_DATA_DIR."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env["SIAGA_HOME"] = str(cwd / ".siaga")
    if data_dir is not None:
        env["SIAGA_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def write_fake_regency(root: Path) -> Path:
    """A made-up regency's pack, with file names of its own: 2 kecamatan, 3 desa."""
    (root / "regions").mkdir(parents=True)
    (root / "facilities").mkdir()
    (root / "regions" / "sukamaju_regions.csv").write_text(
        "code,level,name,parent_code,lat,lon\n"
        "99.01,kabupaten,Kabupaten Sukamaju,99,-7.50,110.50\n"
        "99.01.01,kecamatan,Sukamaju,99.01,-7.45,110.45\n"
        "99.01.02,kecamatan,Ciherang,99.01,-7.55,110.55\n"
        "99.01.01.2001,desa,Mekarsari,99.01.01,-7.45,110.45\n"
        "99.01.02.2001,desa,Cibodas,99.01.02,-7.53,110.53\n"
        "99.01.02.1002,kelurahan,Sindanglaya,99.01.02,-7.57,110.57\n",
        encoding="utf-8",
    )

    def square(code: str, level: str, lat: float, lon: float) -> dict[str, object]:
        ring = [[lon - 0.01, lat - 0.01], [lon + 0.01, lat - 0.01], [lon + 0.01, lat + 0.01]]
        ring += [[lon - 0.01, lat + 0.01], [lon - 0.01, lat - 0.01]]
        return {
            "type": "Feature",
            "properties": {"kode": code, "level": level},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    features = [
        square("99.01.01.2001", "desa", -7.45, 110.45),
        square("99.01.02.2001", "desa", -7.53, 110.53),
        square("99.01.02.1002", "kelurahan", -7.57, 110.57),
    ]
    (root / "regions" / "batas_wilayah.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    (root / "facilities" / "faskes.csv").write_text(
        "name,type,address,phone,source,lat,lon\n"
        "RSUD Sukamaju,hospital,,,made up,,\n"
        "Puskesmas Ciherang,puskesmas,,,made up,,\n",
        encoding="utf-8",
    )
    (root / "landmarks.csv").write_text(
        "name,variants,kind,kecamatan,desa,lat,lon,coords_from,note\n"
        "Pasar Ciherang,pasar cibodas,market,Ciherang,Cibodas,,,desa centroid,\n",
        encoding="utf-8",
    )
    return root


def test_the_builtin_pack_is_used_where_no_shared_folder_is_beside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain clone: run from a folder with no ../shared, and no SIAGA_DATA_DIR."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIAGA_DATA_DIR", raising=False)
    pack = HomeSettings().pack()
    assert pack.builtin and pack.root == BUILTIN_PACK
    assert pack.regions.name == "batang_regions.csv"
    assert pack.boundaries is not None and pack.facilities is not None
    assert pack.landmarks is not None
    assert all(p.is_relative_to(ROOT / "services") for p in (pack.regions, pack.boundaries))
    gazetteer = load_gazetteer(pack)
    assert gazetteer.regency == "Kabupaten Batang"
    assert (len(gazetteer.kecamatan), len(gazetteer.desa)) == (15, 248)
    boundaries = load_boundaries(pack)
    assert boundaries is not None and len(boundaries.polygons) == 264
    fleet = starter_fleet(gazetteer, facilities=pack.facilities)
    assert len(fleet) == 49
    assert sum(u.unit_id.startswith("AMB-PKM-") for u in fleet) == 21
    place = PlaceResolver.from_pack(pack).resolve(text="omah kobong ning Tumbrep")
    assert place is not None and (place.kecamatan, place.desa) == ("Bandar", "Tumbrep")


def test_siaga_triage_finds_a_desa_run_from_a_plain_folder(tmp_path: Path) -> None:
    done = siaga("triage", "longsor di desa Brayo", "--json", cwd=tmp_path, data_dir=None)
    assert done.returncode == 0, done.stderr
    place = json.loads(done.stdout)["place"]
    assert (place["kecamatan"], place["desa"]) == ("Wonotunggal", "Brayo")


def test_every_file_of_the_builtin_pack_is_package_data() -> None:
    """What pyproject.toml's package-data globs pick is what a wheel (and the image) holds."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["services"]
    services = ROOT / "services"
    packaged = {p for pattern in patterns for p in services.glob(pattern) if p.is_file()}
    in_pack = {p for p in BUILTIN_PACK.rglob("*") if p.is_file()}
    assert len(in_pack) == 9 and in_pack <= packaged


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
@pytest.mark.parametrize(
    "name",
    [
        "regions/batang_regions.csv",
        "regions/batang_boundaries.geojson",
        "facilities/batang_facilities.csv",
    ],
)
def test_the_builtin_region_and_facility_files_are_the_shared_ones(name: str) -> None:
    assert (BUILTIN_PACK / name).read_bytes() == (SHARED / name).read_bytes()


def test_another_regencys_pack_loads_from_siaga_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_fake_regency(tmp_path / "sukamaju")
    monkeypatch.setenv("SIAGA_DATA_DIR", str(root))
    pack = HomeSettings().pack()
    assert not pack.builtin and pack.source == str(root)
    assert pack.boundaries is not None and pack.boundaries.name == "batas_wilayah.geojson"
    assert pack.facilities is not None and pack.facilities.name == "faskes.csv"
    gazetteer = load_gazetteer(pack)
    assert gazetteer.regency == "Kabupaten Sukamaju"
    assert [k.name for k in gazetteer.kecamatan] == ["Sukamaju", "Ciherang"]
    assert [d.name for d in gazetteer.desa] == ["Mekarsari", "Cibodas", "Sindanglaya"]
    fleet = starter_fleet(gazetteer, facilities=pack.facilities)
    ambulance = next(u for u in fleet if u.unit_id == "AMB-PKM-CIHERANG")
    assert ambulance.kecamatan == "Ciherang"
    assert {u.base for u in fleet} >= {"Polsek Sukamaju", "Polsek Ciherang"}
    resolver = PlaceResolver.from_pack(pack)
    place = resolver.resolve(text="kebakaran di desa Cibodas")
    assert place is not None and (place.kecamatan, place.desa) == ("Ciherang", "Cibodas")
    market = resolver.resolve(text="kecelakaan di depan pasar cibodas")
    assert market is not None and market.method == "landmark" and market.desa == "Cibodas"
    assert resolver.resolve(text="kebakaran di Tumbrep") is None  # Batang is not loaded
    assert [m.name for m in read_landmarks(pack.landmarks)] == ["Pasar Ciherang"]


def test_siaga_triage_uses_the_pack_siaga_data_dir_names(tmp_path: Path) -> None:
    root = write_fake_regency(tmp_path / "sukamaju")
    done = siaga("triage", "rumah terbakar di Sindanglaya", "--json", cwd=tmp_path, data_dir=root)
    assert done.returncode == 0, done.stderr
    place = json.loads(done.stdout)["place"]
    assert (place["kecamatan"], place["desa"]) == ("Ciherang", "Sindanglaya")


def test_a_pack_needs_only_its_region_file(tmp_path: Path) -> None:
    (tmp_path / "regions").mkdir()
    (tmp_path / "regions" / "x_regions.csv").write_text(
        "code,level,name,parent_code,lat,lon\n"
        "99.02.01,kecamatan,Alpha,99.02,-7.0,110.0\n"
        "99.02.02,kecamatan,Beta,99.02,-7.2,110.2\n",
        encoding="utf-8",
    )
    pack = open_pack(tmp_path)
    assert (pack.boundaries, pack.facilities, pack.landmarks) == (None, None, None)
    gazetteer = load_gazetteer(pack)
    assert gazetteer.centre == pytest.approx((-7.1, 110.1))  # no regency row: the mean
    assert load_boundaries(pack) is None and read_landmarks(pack.landmarks) == []
    assert not any(
        u.unit_id.startswith("AMB-PKM-") for u in starter_fleet(gazetteer, facilities=None)
    )


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (None, "no such folder"),
        ([], "no region file regions/*_regions.csv"),
        (["regions/batang.csv"], "no region file regions/*_regions.csv"),
        (["regions/a_regions.csv", "regions/b_regions.csv"], "more than one regions/*_regions.csv"),
        (["regions/a_regions.csv", "facilities/x.csv", "facilities/y.csv"], "more than one"),
    ],
)
def test_a_folder_without_a_usable_pack_is_refused_in_one_line(
    tmp_path: Path, layout: list[str] | None, message: str
) -> None:
    root = tmp_path / "pack"
    for name in layout or []:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("code,level,name,parent_code,lat,lon\n", encoding="utf-8")
    if layout is not None:
        root.mkdir(exist_ok=True)
    with pytest.raises(DataPackError, match="SIAGA_DATA_DIR") as raised:
        resolve_pack(root)
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("layout", ["missing", "empty"])
def test_siaga_refuses_a_bad_siaga_data_dir_in_one_line(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "pack"
    if layout == "empty":
        root.mkdir()
    done = siaga("triage", "kebakaran di Tumbrep", cwd=tmp_path, data_dir=root)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"siaga: SIAGA_DATA_DIR {root}: ")


def test_a_region_file_without_its_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "regions").mkdir()
    (tmp_path / "regions" / "x_regions.csv").write_text("kode,nama\n1,A\n", encoding="utf-8")
    with pytest.raises(DataPackError, match="no column code, lat, level"):
        load_gazetteer(open_pack(tmp_path))
