"""A small HTTP/1.1 load generator: keep-alive connections on raw asyncio streams, so the
client costs little CPU beside the server it measures (a full HTTP client library would
cost the 2-core machine as much as the server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Load:
    """What a run did: every answer's status and latency (from its planned send time, so a
    slow server cannot hide its queue by slowing the client: no coordinated omission)."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Answers per second (2xx only), latency percentiles and what went wrong."""
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        ordered = sorted(self.latencies_ms)

        def at(q: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        return {
            "accepted_per_s": round(ok / self.seconds, 1) if self.seconds else 0.0,
            "requests": len(ordered),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "p50_ms": at(0.50),
            "p95_ms": at(0.95),
            "p99_ms": at(0.99),
        }


def _request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def post_load(
    url: str,
    path: str,
    body: Callable[[int], bytes],
    headers: dict[str, str],
    *,
    seconds: float,
    connections: int,
    rate: float | None = None,
) -> Load:
    """POST `body(i)` to `url + path` for `seconds`: as fast as `connections` keep-alive
    connections go, or at `rate` requests a second spread over them."""
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    load = Load()
    start = time.monotonic()
    end = start + seconds
    counter = iter(range(10**12))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                i = next(counter)
                planned = start + i / rate if rate else time.monotonic()
                if planned >= end:
                    return
                if rate and planned > time.monotonic():
                    await asyncio.sleep(planned - time.monotonic())
                writer.write(_request(f"{host}:{port}", path, body(i), headers))
                try:
                    status = await _answer(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    load.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                load.latencies_ms.append((time.monotonic() - planned) * 1000)
                load.statuses[status] = load.statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    load.seconds = time.monotonic() - start
    return load
