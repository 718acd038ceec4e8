"""`make eval`: triage every report of the three corpora offline and print and save the scores.

Siaga's own corpus is split in halves (`split` in the file: dev and test, alternating within
each category). The rules were written before the corpus, then adjusted by looking only at
mistakes on the dev half; the test half is the honest figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.corpora import Report, lapor, montco, own_corpus, shared_data
from eval.metrics import Outcome, score
from schemas.vocabulary import Channel
from services.common.settings import CommonSettings
from services.triage.offline import OfflineTriage

RESULTS = Path(__file__).resolve().parent / "results.json"


def run(engine: OfflineTriage, reports: Sequence[Report]) -> list[tuple[Report, dict[str, Any]]]:
    """Each report with the `siaga triage` answer for it."""
    return [
        (
            r,
            engine.triage(text=r.text, channel=Channel(r.channel), place_hint=r.place_hint),
        )
        for r in reports
    ]


def outcomes(answers: Sequence[tuple[Report, dict[str, Any]]]) -> list[Outcome]:
    """Labels beside answers."""
    return [
        Outcome(
            category=r.category,
            priority=r.priority,
            kecamatan=r.kecamatan,
            predicted_category=a["category"],
            predicted_priority=a["priority"],
            predicted_kecamatan=(a["place"] or {}).get("kecamatan"),
            needs_review=bool(a.get("needs_review")),
        )
        for r, a in answers
    ]


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def print_table(name: str, figures: dict[str, Any]) -> None:
    """One corpus split as a readable block."""
    print(f"\n== {name}: {figures['reports']} reports")
    print(f"{'category':<18} {'support':>7} {'precision':>9} {'recall':>7} {'f1':>6}")
    for category, row in figures["per_category"].items():
        print(
            f"{category:<18} {row['support']:>7} {row['precision']:>9.2f} "
            f"{row['recall']:>7.2f} {row['f1']:>6.2f}"
        )
    print(
        f"macro-F1 {figures['macro_f1']:.3f}   accuracy {_pct(figures['accuracy'])}   "
        f"P1 recall {_pct(figures['p1_recall'])} (of {figures['p1_reports']})   "
        f"P3/P4 raised to P1 {_pct(figures['p3_p4_raised_to_p1'])} "
        f"(of {figures['p3_p4_reports']})"
    )
    print(
        f"kecamatan right {_pct(figures['kecamatan_right'])} (of {figures['places_named']} naming a place)   "
        f"place found where none is labelled {_pct(figures['unplaced_reports_given_a_place'])}   "
        f"to human review {_pct(figures['sent_to_human_review'])}"
    )
    if figures["top_confusions"]:
        print("confusions: " + "; ".join(f"{k} x{v}" for k, v in figures["top_confusions"].items()))


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate, print, write `eval/results.json`."""
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--errors", choices=("dev", "test", "all"), help="list the mistakes")
    args = parser.parse_args(argv)
    settings = CommonSettings()
    data_dir = shared_data()
    started = time.perf_counter()
    engine = OfflineTriage.from_settings(settings)
    print(f"engine ready in {time.perf_counter() - started:.2f}s")
    results: dict[str, Any] = {}
    own = run(engine, own_corpus())
    results["siaga"] = {
        split: score(outcomes([(r, a) for r, a in own if split == "all" or r.split == split]))
        for split in ("all", "dev", "test")
    }
    for split in ("dev", "test", "all"):
        print_table(f"siaga corpus, {split}", results["siaga"][split])
    if args.errors:
        for r, a in own:
            if args.errors != "all" and r.split != args.errors:
                continue
            got_kec = (a["place"] or {}).get("kecamatan")
            wrong = (r.category, r.priority) != (a["category"], a["priority"]) or (
                r.kecamatan and got_kec != r.kecamatan
            )
            if wrong:
                print(
                    f"{r.id} [{r.category} {r.priority} {r.kecamatan}] -> "
                    f"[{a['category']} {a['priority']} {got_kec}] {r.text!r} | {a['explanation']}",
                    file=sys.stderr,
                )
    if data_dir is None:
        print("\n../shared/data not found: public corpora skipped")
    else:
        for name, loader in (("lapor", lapor), ("montco", montco)):
            timer = time.perf_counter()
            answers = run(engine, loader(data_dir))
            figures = score(outcomes(answers))
            results[name] = {"all": figures}
            print_table(f"{name} corpus", figures)
            print(f"({len(answers)} reports in {time.perf_counter() - timer:.1f}s)")
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
