"""The gateway's HTTP plumbing: refusals as JSON, a body limit, an access log without
personal data, and the API-key check every protected route shares."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from services.common.logging import get_logger
from services.gateway.access import KeyCache, RateLimiter, bearer
from services.gateway.keys import ApiKey, Scope

log = get_logger("gateway")

Scope_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope_, Receive, Send], Awaitable[None]]


class Refusal(Exception):
    """A request refused with an HTTP status and a one-line reason for the client."""

    def __init__(self, status: int, reason: str, *, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


async def authorize(
    *, keys: KeyCache, limiter: RateLimiter, secret: str | None, scope: Scope
) -> ApiKey:
    """The key behind `secret` if it may act in `scope` now; else a Refusal (401 without a
    known key, 403 when it may not, 429 when it goes too fast)."""
    if not secret:
        raise Refusal(401, "an API key is needed", headers={"WWW-Authenticate": "Bearer"})
    key = await keys.get(secret)
    if key is None or key.revoked_at is not None:
        raise Refusal(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if not key.allows(scope):
        raise Refusal(403, f"this key has no {scope.value} scope")
    wait = limiter.take(f"key:{key.key_id}", now=time.monotonic())
    if wait:
        raise Refusal(429, "too many requests", headers={"Retry-After": str(int(wait) + 1)})
    return key


def bearer_secret(headers: Any) -> str | None:
    """The API key of a request's `Authorization: Bearer` header."""
    return bearer(headers)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse a body over `max_bytes` with 413, by its Content-Length before reading it, or
    as soon as a chunked body passes the limit (nothing of it reaches a handler)."""

    def __init__(self, app: App, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, {"error": f"body over {self.max_bytes} bytes"})
            return
        seen = 0
        started = False

        async def counted() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def watched(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, {"error": f"body over {self.max_bytes} bytes"})


class AccessLog:
    """One log line per request: method, path (no query string: it may carry a phone
    number), status, time; the client's address is not kept either."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def watched(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                ms=round((time.perf_counter() - began) * 1000, 2),
            )
