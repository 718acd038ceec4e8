"""The regency's data pack: region file, boundaries, facilities, landmarks (Batang's built in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Batang's pack is package data beside the code: setuptools installs it as plain files,
# in a wheel as in an editable checkout.
BUILTIN_PACK = Path(__file__).resolve().parents[1] / "datapack" / "batang"

REGIONS = "regions/*_regions.csv"
BOUNDARIES = "regions/*.geojson"
FACILITIES = "facilities/*.csv"
LANDMARKS = "landmarks.csv"


class DataPackError(ValueError):
    """A folder that holds no usable data pack; the message names it and says why."""


@dataclass(frozen=True)
class DataPack:
    """Where one regency's facts are: the region file, and what else the pack has."""

    root: Path
    regions: Path
    boundaries: Path | None
    facilities: Path | None
    landmarks: Path | None
    builtin: bool

    @property
    def source(self) -> str:
        """The pack as a person would name it: the built-in one, or its folder."""
        return f"the built-in {self.root.name.title()} pack" if self.builtin else str(self.root)


def open_pack(root: Path, *, builtin: bool = False) -> DataPack:
    """The pack in `root`: `regions/<name>_regions.csv`, optional `regions/*.geojson`,
    `facilities/*.csv` and `landmarks.csv`; files are found by pattern, not by name."""
    where = "built-in data pack" if builtin else "SIAGA_DATA_DIR"
    if not root.is_dir():
        raise DataPackError(f"{where} {root}: no such folder")

    def one(pattern: str) -> Path | None:
        found = sorted(p for p in root.glob(pattern) if p.is_file())
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise DataPackError(f"{where} {root}: more than one {pattern} ({names})")
        return found[0] if found else None

    regions = one(REGIONS)
    if regions is None:
        raise DataPackError(f"{where} {root}: no region file {REGIONS}")
    return DataPack(
        root=root,
        regions=regions,
        boundaries=one(BOUNDARIES),
        facilities=one(FACILITIES),
        landmarks=one(LANDMARKS),
        builtin=builtin,
    )


def resolve_pack(data_dir: Path | None) -> DataPack:
    """The pack in `data_dir` (SIAGA_DATA_DIR) when set, else Batang's built-in pack."""
    if data_dir is None:
        return open_pack(BUILTIN_PACK, builtin=True)
    return open_pack(data_dir)
