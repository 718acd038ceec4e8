"""The gateway under load: intakes accepted over HTTP (CloudEvents, structured mode) at a
fixed rate and at the most the server takes, next to a minimal handler on the same server
in the same run (its raw ceiling: the HTTP stack, the body limit and the access log, and
nothing of Siaga's)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench.http_load import post_load
from bench.workload import Workload
from schemas.envelope import CONTENT_TYPE, encode_event
from services.common.db import connect_url
from services.gateway.keys import Scope, create_key

CONNECTIONS = 32  # clients at once when finding the maximum
FIXED_RATE = 100  # intakes a second: a very busy night's peak, many times over


async def bench_key(database_url: str) -> str:
    """A fresh intake key, made straight in the gateway's schema."""
    conn = await connect_url(database_url, schema="gateway", application="bench", sslmode=None)
    try:
        _, secret = await create_key(
            conn, name="bench", scopes=frozenset({Scope.INTAKE}), now=datetime.now(UTC)
        )
    finally:
        await conn.close()
    return secret


async def measure(url: str, *, key: str, workload: Workload, seconds: float) -> dict[str, Any]:
    """Accepted intakes a second and latency, at FIXED_RATE and at the maximum, on /events
    and on the minimal handler /noop; the ratio of the two maxima."""
    bodies = [encode_event(workload.next()[0]) for _ in range(2_000)]

    def body(i: int) -> bytes:
        # A resend of the same intake is a duplicate: fine for /noop, not for /events.
        return bodies[i] if i < len(bodies) else encode_event(workload.next()[0])

    headers = {"Content-Type": CONTENT_TYPE, "Authorization": f"Bearer {key}"}
    results: dict[str, Any] = {}
    for name, path in (("noop", "/noop"), ("events", "/events")):
        fixed = await post_load(
            url, path, body, headers, seconds=seconds, connections=8, rate=FIXED_RATE
        )
        most = await post_load(url, path, body, headers, seconds=seconds, connections=CONNECTIONS)
        results[name] = {f"at_{FIXED_RATE}_per_s": fixed.summary(), "max": most.summary()}
    ceiling = results["noop"]["max"]["accepted_per_s"]
    results["ratio_events_to_noop"] = (
        round(results["events"]["max"]["accepted_per_s"] / ceiling, 3) if ceiling else None
    )
    return results
