"""The three corpora and how their labels map to Siaga's categories and priorities."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

OWN_CORPUS = Path(__file__).resolve().parent / "corpus" / "siaga_reports.jsonl"
BLIND_SETS = Path(__file__).resolve().parent / "corpus" / "blind_sets.jsonl"


def shared_data() -> Path | None:
    """The team's `../shared/data` (its `corpora/`, never copied into the project) beside
    the working directory or the checkout, or None when there is none."""
    for candidate in (
        Path.cwd().parent / "shared" / "data",
        Path(__file__).resolve().parents[2] / "shared" / "data",
    ):
        if (candidate / "corpora").is_dir():
            return candidate
    return None


@dataclass(frozen=True)
class Report:
    """A labelled report."""

    id: str
    text: str
    channel: str
    place_hint: str | None
    category: str
    priority: str
    kecamatan: str | None
    split: str
    alt: tuple[str, ...] = ()  # other acceptable categories
    writer: str = "siaga"  # the team, a shared set's writer (a-e) or a blind set (f1...)


def own_corpus(path: Path = OWN_CORPUS) -> list[Report]:
    """Siaga's own corpus: written by the team, labelled with category, priority, kecamatan."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        out.append(
            Report(
                id=row["id"],
                text=row["text"],
                channel=row["channel"],
                place_hint=row.get("place_hint"),
                category=row["category"],
                priority=row["priority"],
                kecamatan=row.get("kecamatan"),
                split=row["split"],
            )
        )
    return out


def blind_sets(path: Path = BLIND_SETS) -> list[Report]:
    """The team's blind sets: reports written for Siaga by writers who never saw its code,
    rules or corpora, each set in its own theme (`writer` f1, f2, ...); read while
    developing triage, then used to train its model (see `corpus/README.md`)."""
    return _by_writers(path)


DEV_REPORTS = "siaga_dev_reports.jsonl"


def dev_reports(data_dir: Path) -> list[Report]:
    """The shared labelled corpus: five sets of Batang reports, each by its own writer."""
    return _by_writers(data_dir / "corpora" / DEV_REPORTS)


def _by_writers(path: Path) -> list[Report]:
    """Reports of a JSONL file whose lines name their `writer` and `alt` categories."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        out.append(
            Report(
                id=row["id"],
                text=row["text"],
                channel=row["channel"],
                place_hint=None,
                category=row["category"],
                priority=row["priority"],
                kecamatan=row.get("kecamatan"),
                split="all",
                alt=tuple(row.get("alt") or ()),
                writer=row["writer"],
            )
        )
    return out


# LAPOR! categories of the sample -> ours. BSM (student poverty aid) and Raskin (rice for the
# poor) are both social aid programmes, which Dinsos handles here; every complaint is P3.
LAPOR_CATEGORIES = {"8": "infrastructure", "117": "social_welfare", "119": "social_welfare"}


def lapor(data_dir: Path) -> list[Report]:
    """The LAPOR!/SP4N sample (stemmed, stop words removed), as web complaints."""
    path = data_dir / "corpora" / "lapor_span_sample.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Report(
            id=f"lapor-{n}",
            text=row["text_preprocessed"],
            channel="web",
            place_hint=None,
            category=LAPOR_CATEGORIES[row["kategori_code"].strip()],
            priority="P3",
            kecamatan=None,
            split="all",
        )
        for n, row in enumerate(rows, start=1)
    ]


# Montgomery County 911 subtypes that are an immediate threat to life (our P1).
MONTCO_P1 = frozenset(
    {
        "CARDIAC ARREST",
        "CARDIAC EMERGENCY",
        "UNCONSCIOUS SUBJECT",
        "UNRESPONSIVE SUBJECT",
        "RESPIRATORY EMERGENCY",
        "CVA/STROKE",
        "HEMORRHAGING",
        "CHOKING",
        "OVERDOSE",
        "SEIZURES",
        "BUILDING FIRE",
        "BURN VICTIM",
        "RESCUE - WATER",
    }
)
MONTCO_ROAD = frozenset(
    {"ROAD OBSTRUCTION", "HAZARDOUS ROAD CONDITIONS", "DEBRIS/FLUIDS ON HIGHWAY"}
)
MONTCO_FIRE_HAZARDS = frozenset(
    {
        "GAS-ODOR/LEAK",
        "CARBON MONOXIDE DETECTOR",
        "HAZARDOUS MATERIALS INCIDENT",
        "VEHICLE LEAKING FUEL",
        "PUMP DETAIL",
        "FIRE POLICE NEEDED",
    }
)


def montco_label(title: str) -> tuple[str, str]:
    """Our (category, priority) for a Montgomery County title like `EMS: FALL VICTIM`."""
    prefix, _, rest = title.partition(":")
    subtype = rest.strip().rstrip("-").strip()
    prefix = prefix.strip().upper()
    if subtype in ("VEHICLE ACCIDENT", "DISABLED VEHICLE"):
        category = "traffic_accident"
    elif subtype in MONTCO_ROAD:
        category = "infrastructure"
    elif subtype == "ASSAULT VICTIM":
        category = "crime"
    elif subtype.startswith("RESCUE") or subtype == "ELEVATOR EMERGENCY":
        category = "rescue"
    elif "FIRE" in subtype or subtype in MONTCO_FIRE_HAZARDS:
        category = "fire"
    elif subtype == "TRANSFERRED CALL":
        category = "information"
    elif prefix in ("EMS", "FIRE"):
        category = "medical"
    else:
        category = "traffic_accident"
    if subtype in MONTCO_P1:
        priority = "P1"
    elif subtype == "DISABLED VEHICLE" or category in ("infrastructure", "information"):
        priority = "P3"
    else:
        priority = "P2"
    return category, priority


def montco(data_dir: Path) -> list[Report]:
    """The Montgomery County 911 sample: English call titles, as 112 calls."""
    path = data_dir / "corpora" / "montco_911_sample.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for n, row in enumerate(rows, start=1):
        category, priority = montco_label(row["title"])
        out.append(
            Report(
                id=f"montco-{n}",
                text=row["title"],
                channel="call112",
                place_hint=None,
                category=category,
                priority=priority,
                kecamatan=None,
                split="all",
            )
        )
    return out
