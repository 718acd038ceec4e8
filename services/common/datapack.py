"""The regency's data pack: regions, boundaries, facilities, landmarks, run cards, fleet,
Open311 services, public alerts."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    # pydantic is imported by `read_toml` only: the command line resolves the pack to
    # start and must not pay for a validation library it may not use.
    from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound="BaseModel")

# Batang's pack is package data beside the code: setuptools installs it as plain files,
# in a wheel as in an editable checkout.
BUILTIN_PACK = Path(__file__).resolve().parents[1] / "datapack" / "batang"

REGIONS = "regions/*_regions.csv"
BOUNDARIES = "regions/*.geojson"
FACILITIES = "facilities/*.csv"
LANDMARKS = "landmarks.csv"
RUN_CARDS = "runcards.toml"
FLEET = "fleet.toml"
OPEN311 = "open311.toml"
ALERTS = "alerts.toml"


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
    run_cards: Path
    fleet: Path
    open311: Path
    alerts: Path
    builtin: bool

    @property
    def source(self) -> str:
        """The pack as a person would name it: the built-in one, or its folder."""
        return f"the built-in {self.root.name.title()} pack" if self.builtin else str(self.root)


def open_pack(root: Path, *, builtin: bool = False) -> DataPack:
    """The pack in `root`: `regions/<name>_regions.csv`, optional `regions/*.geojson`,
    `facilities/*.csv` and `landmarks.csv`, found by pattern, not by name; and optional
    `runcards.toml`, `fleet.toml`, `open311.toml` and `alerts.toml`, whose absence means
    Batang's built-in ones."""
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
        # A pack without its own run cards or fleet gets Batang's, as before they were data.
        run_cards=one(RUN_CARDS) or BUILTIN_PACK / RUN_CARDS,
        fleet=one(FLEET) or BUILTIN_PACK / FLEET,
        open311=one(OPEN311) or BUILTIN_PACK / OPEN311,
        alerts=one(ALERTS) or BUILTIN_PACK / ALERTS,
        builtin=builtin,
    )


def resolve_pack(data_dir: Path | None) -> DataPack:
    """The pack in `data_dir` (SIAGA_DATA_DIR) when set, else Batang's built-in pack."""
    if data_dir is None:
        return open_pack(BUILTIN_PACK, builtin=True)
    return open_pack(data_dir)


class DataFileError(DataPackError):
    """A data file that cannot be read or says something wrong; one line names both."""


def read_toml(path: Path, model: type[M]) -> M:
    """`path` parsed and validated as `model`; `DataFileError` names the file and the first
    bad entry, in one line."""
    from pydantic import ValidationError

    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"{path}: not TOML: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise DataFileError(f"{path}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    error = errors[0]
    where = ""
    for part in error["loc"]:
        if part == "[key]":
            continue  # a bad key is named by the part before it
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    message = str(error["msg"]).removeprefix("Value error, ")
    found = error.get("input")
    shown = f" (found {found!r})" if isinstance(found, str | int | float) else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{shown}{more}" if where else f"{message}{shown}{more}"
