"""`make eval`: triage labelled reports offline, as `siaga triage` does, and print the scores.

The honest figures are on writers the model never saw: the shared corpus
(`../shared/data/corpora/siaga_dev_reports.jsonl`) has five sets, each by its own writer in
its own style. For each set in turn the model is trained (as `make model` trains it) on the
team's corpus and the other four, and tested on that one; the figures are printed per
held-out set and pooled over all five, then again with every held-out report rewritten in
each style of `eval/styles.py` (a transcript, an SMS, a forward...). The team's own corpus
is scored with a model trained on the shared corpus only; LAPOR! and Montgomery County with
the shipped model (it never saw them). The time to triage one report (places and classification) is measured on the shipped
engine. Everything is written to `eval/results.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from eval.corpora import Report, blind_sets, dev_reports, lapor, montco, own_corpus, shared_data
from eval.metrics import Outcome, score
from eval.styles import STYLES, WRAPPERS, restyle
from eval.train import train
from schemas.vocabulary import Channel
from services.common.settings import CommonSettings
from services.triage.classifier import Classifier
from services.triage.offline import OfflineTriage

RESULTS = Path(__file__).resolve().parent / "results.json"
# Sets whose reports were read while the lexicons were written (their mistakes looked at);
# the other sets' texts were not read, only their figures.
READ_DURING_DEVELOPMENT = ("a", "b", "c")
# Left out of the styles' figures in results.json: the plain held-out figures have them.
PER_REPORT_DETAIL = ("per_category", "top_confusions")
TARGETS = {
    "p1_recall": 0.97,
    "p3_p4_raised_to_p1": 0.05,
    "category_right": 0.92,
    "kecamatan_right": 0.97,
    "median_ms": 2.0,
}


def run(engine: OfflineTriage, reports: Sequence[Report]) -> list[tuple[Report, dict[str, Any]]]:
    """Each report with the `siaga triage` answer for it."""
    return [
        (r, engine.triage(text=r.text, channel=Channel(r.channel), place_hint=r.place_hint))
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
            alt=r.alt,
            needs_confirmation=bool(a.get("needs_confirmation")),
        )
        for r, a in answers
    ]


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def print_table(name: str, figures: dict[str, Any], *, per_category: bool = False) -> None:
    """One set's figures as a readable block."""
    print(f"\n== {name}: {figures['reports']} reports")
    if per_category:
        print(f"{'category':<18} {'support':>7} {'precision':>9} {'recall':>7} {'f1':>6}")
        for category, row in figures["per_category"].items():
            print(
                f"{category:<18} {row['support']:>7} {row['precision']:>9.2f} "
                f"{row['recall']:>7.2f} {row['f1']:>6.2f}"
            )
    print(
        f"category right {_pct(figures['category_right'])} (exact {_pct(figures['accuracy'])}, "
        f"macro-F1 {figures['macro_f1']:.3f})   P1 recall {_pct(figures['p1_recall'])} "
        f"(of {figures['p1_reports']})   P3/P4 raised to P1 {_pct(figures['p3_p4_raised_to_p1'])} "
        f"(of {figures['p3_p4_reports']})"
    )
    print(
        f"kecamatan right {_pct(figures['kecamatan_right'])} (of {figures['places_named']} naming "
        f"a place)   to human review {_pct(figures['sent_to_human_review'])}   "
        f"P1s to confirm {_pct(figures['p1_to_confirm'])}"
    )
    if figures["top_confusions"]:
        print("confusions: " + "; ".join(f"{k} x{v}" for k, v in figures["top_confusions"].items()))


def print_errors(answers: Sequence[tuple[Report, dict[str, Any]]]) -> None:
    """The reports triage got wrong (category, P1 missed or raised, kecamatan), on stderr."""
    for r, a in answers:
        got_kec = (a["place"] or {}).get("kecamatan")
        wrong_category = a["category"] != r.category and a["category"] not in r.alt
        missed = r.priority == "P1" and a["priority"] != "P1"
        raised = r.priority in ("P3", "P4") and a["priority"] == "P1"
        if wrong_category or missed or raised or (r.kecamatan and got_kec != r.kecamatan):
            print(
                f"{r.id} [{r.category} {r.priority} {r.kecamatan}] -> "
                f"[{a['category']} {a['priority']} {got_kec}] {r.text!r} | {a['explanation']}",
                file=sys.stderr,
            )


def held_out_engine(
    settings: CommonSettings, shared: Sequence[Report], own: Sequence[Report], writer: str
) -> OfflineTriage:
    """Triage with a model trained on the team's corpora (`own`) and the shared sets but
    `writer`'s."""
    model = train([r for r in shared if r.writer != writer] + list(own))
    engine = OfflineTriage.from_settings(settings)
    engine.classifier = Classifier(
        threshold=engine.classifier.threshold,
        model=model,
        place_names=[a.name for a in engine.resolver.gazetteer.areas],
    )
    return engine


def in_styles(
    engine: OfflineTriage, reports: Sequence[Report]
) -> dict[str, list[tuple[Report, dict[str, Any]]]]:
    """`reports` rewritten in each style of `eval/styles.py`, triaged by `engine`."""
    return {
        style: run(
            engine,
            [
                replace(r, text=restyle(style, r.id, r.text))
                for r in reports
                if not (style in WRAPPERS and r.category == "ghost")
            ],
        )
        for style in STYLES
    }


def print_styles(figures: dict[str, dict[str, Any]]) -> None:
    """One line per style: the pooled held-out figures with the reports so rewritten."""
    print("\n== the five held-out sets rewritten in other styles (eval/styles.py)")
    print(
        f"{'style':30s} {'category right':>15s} {'P1 recall':>10s} {'P3/P4 raised to P1':>19s}"
        f" {'kecamatan right':>16s}"
    )
    for style, f in figures.items():
        print(
            f"{style:30s} {_pct(f['category_right']):>15s} {_pct(f['p1_recall']):>10s} "
            f"{_pct(f['p3_p4_raised_to_p1']):>19s} {_pct(f['kecamatan_right']):>16s}"
        )


def timing(engine: OfflineTriage, reports: Sequence[Report]) -> dict[str, float]:
    """Milliseconds to triage one report (places and classification), over `reports`."""
    times = []
    for r in reports:
        started = time.perf_counter()
        engine.triage(text=r.text, channel=Channel(r.channel), place_hint=r.place_hint)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "reports": len(times),
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
        "max_ms": round(times[-1], 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate, print, write `eval/results.json`."""
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--errors", metavar="SET", help="list the mistakes on one set (a-e, siaga, lapor, montco)"
    )
    args = parser.parse_args(argv)
    settings = CommonSettings()
    data = shared_data()
    own = own_corpus()
    results: dict[str, Any] = {"targets": TARGETS}
    if data is None:
        print("../shared/data not found: the held-out evaluation needs the shared corpus.")
        print("Scoring the team's corpus with the shipped model (trained on it: not honest).")
        engine = OfflineTriage.from_settings(settings)
        answers = run(engine, own)
        results["siaga_in_sample"] = score(outcomes(answers))
        print_table("siaga corpus, shipped model (in sample)", results["siaga_in_sample"])
        results["timing"] = timing(engine, own)
        print(f"\none report: median {results['timing']['median_ms']} ms")
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
        return 0

    shared = dev_reports(data)
    writers = sorted({r.writer for r in shared})
    team = [*own, *blind_sets()]
    pooled: list[tuple[Report, dict[str, Any]]] = []
    results["held_out"] = {}
    styled: dict[str, list[tuple[Report, dict[str, Any]]]] = {style: [] for style in STYLES}
    for writer in writers:
        started = time.perf_counter()
        engine = held_out_engine(settings, shared, team, writer)
        reports = [r for r in shared if r.writer == writer]
        answers = run(engine, reports)
        for style, restyled in in_styles(engine, reports).items():
            styled[style] += restyled
        pooled += answers
        figures = score(outcomes(answers))
        figures["read_during_development"] = writer in READ_DURING_DEVELOPMENT
        results["held_out"][writer] = figures
        read = "read while developing" if writer in READ_DURING_DEVELOPMENT else "never read"
        print_table(f"held-out set {writer} ({read})", figures)
        print(f"(trained and scored in {time.perf_counter() - started:.1f}s)")
        if args.errors == writer:
            print_errors(answers)
    results["held_out"]["all"] = score(outcomes(pooled))
    print_table("all five held-out sets pooled", results["held_out"]["all"], per_category=True)
    results["styles"] = {
        style: {k: v for k, v in score(outcomes(answers)).items() if k not in PER_REPORT_DETAIL}
        for style, answers in styled.items()
    }
    print_styles(results["styles"])

    model = train(shared)
    engine = OfflineTriage.from_settings(settings)
    names = [a.name for a in engine.resolver.gazetteer.areas]
    engine_shared = OfflineTriage(engine.resolver, Classifier(model=model, place_names=names))
    answers = run(engine_shared, own)
    results["siaga"] = score(outcomes(answers))
    print_table("siaga corpus, model trained on the shared corpus only", results["siaga"])
    if args.errors == "siaga":
        print_errors(answers)

    for name, loader in (("lapor", lapor), ("montco", montco)):
        answers = run(engine, loader(data))
        results[name] = score(outcomes(answers))
        print_table(f"{name} corpus, shipped model", results[name])
        if args.errors == name:
            print_errors(answers)

    results["timing"] = timing(engine, shared)
    t = results["timing"]
    print(
        f"\none report (places + classification), shipped engine, {t['reports']} reports: "
        f"median {t['median_ms']} ms, p95 {t['p95_ms']} ms, max {t['max_ms']} ms"
    )
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
