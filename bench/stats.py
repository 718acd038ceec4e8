"""The bench's one summary of a sample: nearest-rank percentiles."""

from __future__ import annotations


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and p99 of a sample (None when empty), by nearest rank, and its size."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "n": len(ordered)}
