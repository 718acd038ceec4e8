"""`make model`: train triage's model from the team's corpus and the shared one, and write it.

Deterministic: the same corpora give byte-identical `services/triage/model/` files (features
in sorted order, one solver, weights rounded), so a change to the model is a reviewable diff.
`make eval` trains the same way on four of the shared corpus's writers and tests on the fifth.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.corpora import Report, blind_sets, dev_reports, own_corpus, shared_data
from services.common.text import words
from services.triage.classifier import Classifier
from services.triage.model import BUILT_IN, HEADS, Head, LinearModel, features, idf_of

MIN_DOCUMENTS = 2  # a feature seen in one report only is that report's, not the language's
NEGLIGIBLE = 0.1  # a weight smaller than this is written as none (held-out figures unchanged)
KNOWN_IN = 3  # a word in this many reports is spelled as people spell it, not a slip
C = 10.0  # inverse regularisation, chosen on held-out writers (make eval)
MAX_ITER = 3000


def label(report: Report, head: str) -> str:
    """The class of `report` for one head."""
    return report.category if head == "category" else report.priority


def known_words(reports: Sequence[Report]) -> tuple[str, ...]:
    """Words used in at least `KNOWN_IN` reports, sorted."""
    seen: Counter[str] = Counter()
    for r in reports:
        seen.update(set(words(r.text)))
    return tuple(sorted(w for w, n in seen.items() if n >= KNOWN_IN))


def train(reports: Sequence[Report], *, c: float = C) -> LinearModel:
    """A model trained on `reports`, reading them as the classifier will.

    Weights below `NEGLIGIBLE` are set to zero, so the checked-in file lists only the pulls
    that matter (retraining on fewer features instead cost 1.4 points of held-out category
    accuracy; an L1 penalty, 4.4). Every feature keeps its IDF: the L2 norm of a report is
    taken over the same features the model was trained on.
    """
    known = known_words(reports)
    reader = Classifier(known_words=known)
    counted = [features(reader.read(r.text)) for r in reports]
    document_frequency: Counter[str] = Counter()
    for counts in counted:
        document_frequency.update(counts.keys())
    names = sorted(f for f, n in document_frequency.items() if n >= MIN_DOCUMENTS)
    fitted = _fit(reports, counted, names, document_frequency, c)
    heads = {
        name: Head(
            head.classes,
            np.where(np.abs(head.weights) >= NEGLIGIBLE, head.weights, 0.0),
            head.intercepts,
        )
        for name, head in fitted.heads.items()
    }
    meta = {**fitted.meta, "negligible": NEGLIGIBLE}
    return LinearModel(fitted.vocabulary, fitted.idf, heads, meta, known)


def _fit(
    reports: Sequence[Report],
    counted: Sequence[Counter[str]],
    names: Sequence[str],
    document_frequency: Counter[str],
    c: float,
) -> LinearModel:
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    vocabulary = {name: row for row, name in enumerate(names)}
    idf = np.array([idf_of(document_frequency[n], len(reports)) for n in names])
    data: list[float] = []
    columns: list[int] = []
    starts = [0]
    for counts in counted:
        rows = [(vocabulary[f], n) for f, n in counts.items() if f in vocabulary]
        values = np.array([(1 + np.log(n)) * idf[r] for r, n in rows])
        norm = float(np.sqrt(values @ values)) if len(values) else 1.0
        for (r, _), v in zip(rows, values, strict=True):
            columns.append(r)
            data.append(float(v) / norm)
        starts.append(len(columns))
    matrix = csr_matrix((data, columns, starts), shape=(len(reports), len(names)))
    heads = {}
    for head in HEADS:
        # Classes weighed by their rarity: a prank or a ghost call counts as much as the
        # many medical reports (held-out category right 0.919 -> 0.925).
        fitted = LogisticRegression(C=c, max_iter=MAX_ITER, class_weight="balanced").fit(
            matrix, [label(r, head) for r in reports]
        )
        weights = np.round(fitted.coef_.T, 4)
        intercepts = np.round(fitted.intercept_, 4)
        heads[head] = Head(tuple(str(x) for x in fitted.classes_), weights, intercepts)
    meta: dict[str, object] = {
        "reports": len(reports),
        "features": len(names),
        "min_documents": MIN_DOCUMENTS,
        "c": c,
        "corpus_sha256": hashlib.sha256(
            "\n".join(f"{r.id}\t{r.text}\t{r.category}\t{r.priority}" for r in reports).encode()
        ).hexdigest(),
    }
    return LinearModel(vocabulary, idf, heads, meta)


def training_reports() -> list[Report]:
    """The team's corpus, its blind sets and the shared corpus (from `../shared/data`)."""
    data = shared_data()
    if data is None:
        raise SystemExit("make model: ../shared/data/corpora not found (the shared corpus)")
    return own_corpus() + blind_sets() + dev_reports(data)


def main(argv: Sequence[str] | None = None) -> int:
    """Train on every report and write the model folder."""
    parser = argparse.ArgumentParser(prog="python -m eval.train", description=__doc__)
    parser.add_argument("--out", type=Path, default=BUILT_IN)
    args = parser.parse_args(argv)
    reports = training_reports()
    model = train(reports)
    model.save(args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(
        f"{len(reports)} reports, {len(model.vocabulary)} features -> {args.out} ({size:,} bytes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
