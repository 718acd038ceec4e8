"""Who may do what at the gateway: API keys by scope, a rate limit per key, a body limit."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.gateway.keys import ApiKey

Lookup = Callable[[str], Awaitable[ApiKey | None]]


@dataclass
class Bucket:
    """A token bucket: `burst` requests at once, refilled at `rate_per_s`."""

    tokens: float
    at: float


@dataclass
class RateLimiter:
    """Requests per minute per client (a key, or a webhook's sender); the clock is passed in,
    so the decision is tested without waiting."""

    rate_per_minute: int
    burst: int
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def take(self, client: str, *, now: float) -> float:
        """0 when `client` may go on, else the seconds until it may."""
        rate = self.rate_per_minute / 60.0
        bucket = self.buckets.get(client)
        if bucket is None:
            bucket = self.buckets[client] = Bucket(tokens=float(self.burst), at=now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        if len(self.buckets) > 100_000:  # many one-off clients: forget the full ones
            self._forget_full(now)
        return (1.0 - bucket.tokens) / rate

    def _forget_full(self, now: float) -> None:
        rate = self.rate_per_minute / 60.0
        full = [k for k, b in self.buckets.items() if b.tokens + (now - b.at) * rate >= self.burst]
        for k in full:
            del self.buckets[k]


@dataclass
class KeyCache:
    """Keys looked up recently, trusted for `ttl_s` (a revoked key stops within that time);
    a secret nobody issued is remembered as None too, so a flood of bad keys costs no
    database round trip each."""

    lookup: Lookup
    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, tuple[float, ApiKey | None]] = field(default_factory=dict)

    async def get(self, secret: str) -> ApiKey | None:
        """The key of `secret`, from memory while fresh, else from the database."""
        now = self.clock()
        hit = self._seen.get(secret)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        key = await self.lookup(secret)
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[secret] = (now, key)
        return key


def bearer(headers: Any) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
