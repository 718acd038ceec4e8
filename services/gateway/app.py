"""The gateway's ASGI application: what it serves, and the services its routes use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from schemas.topics import Topics
from services.common.outbox import OutboxRelay
from services.gateway.accepting import Accepted, GroupCommit
from services.gateway.access import KeyCache, RateLimiter
from services.gateway.centre_feed import ChangeFeed
from services.gateway.conversations import Conversation, start_conversation
from services.gateway.eido import Issuer
from services.gateway.http import AccessLog, BodyLimit, Refusal, authorize, bearer_secret
from services.gateway.intake import Refused, Submitted, event_for, from_request
from services.gateway.keys import ApiKey, Scope
from services.gateway.settings import GatewaySettings, SmsSettings, WhatsAppSettings


@dataclass
class Gateway:
    """What the routes use: the gateway's own pool (keys, intakes, outbox), the read model
    (read-only), the relay that publishes, the settings and the clock."""

    settings: GatewaySettings
    whatsapp: WhatsAppSettings
    sms: SmsSettings
    topics: Topics
    pool: asyncpg.Pool
    reads: asyncpg.Pool
    relay: OutboxRelay
    keys: KeyCache
    limiter: RateLimiter
    clock: Callable[[], datetime]
    ready: Callable[[], Awaitable[None]]
    issuer: Issuer
    commits: GroupCommit
    replies_queued: Callable[[], None] = lambda: None
    # The read model's changes for the command centre's live page (one poller a process).
    changes: ChangeFeed = field(default_factory=ChangeFeed)

    async def submit(
        self,
        submitted: Submitted,
        *,
        key_name: str | None,
        conversation: Conversation | None = None,
        also: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> bool:
        """Make an intake durable (the gateway's outbox, committed with others that came
        meanwhile: `GroupCommit`) and hand it to the relay; False when that intake id was accepted before (nothing is sent again). A
        channel's `conversation` (where to answer, the receipt) is recorded in the same
        transaction, so an intake is never kept without its receipt nor the reverse; `also`
        keeps what else belongs to a new intake (an Open311 request's details) there too."""
        intake_id = submitted.intake.intake_id

        async def extra(conn: asyncpg.Connection, now: datetime) -> None:
            if conversation is not None:
                await start_conversation(
                    conn, intake_id=intake_id, conversation=conversation, now=now
                )
            if also is not None:
                await also(conn)

        new = await self.commits.submit(
            Accepted(
                event=event_for(submitted),
                key_name=key_name,
                extra=extra if conversation is not None or also is not None else None,
            )
        )
        if new and conversation is not None:
            self.replies_queued()
        return new

    async def authorize(self, secret: str | None, scope: Scope) -> ApiKey:
        """The caller's key if it may act in `scope` (see `http.authorize`)."""
        return await authorize(keys=self.keys, limiter=self.limiter, secret=secret, scope=scope)


def gateway_of(request: Request) -> Gateway:
    """The gateway services of the application serving `request`."""
    found: Gateway = request.app.state.gateway
    return found


def key_with(scope: Scope) -> Any:
    """A route dependency: the request's Bearer key, which must have `scope`."""

    async def check(request: Request) -> ApiKey:
        return await gateway_of(request).authorize(bearer_secret(request.headers), scope)

    return Depends(check)


INTAKE_KEY = key_with(Scope.INTAKE)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refusal)
    return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=exc.headers)


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """The process serves."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """The database and the broker answer."""
        try:
            await gateway_of(request).ready()
        except Exception as exc:  # any failure means not ready; say which
            return JSONResponse(
                {"status": "unready", "error": f"{type(exc).__name__}: {exc}"}, status_code=503
            )
        return JSONResponse({"status": "ready"})


def _intake_routes(app: FastAPI) -> None:
    @app.post(
        "/events",
        status_code=202,
        summary="Submit an intake as a CloudEvent",
        description=(
            "A CloudEvent of type `siaga.intake.received.v1` in structured mode "
            "(`application/cloudevents+json`) or binary mode (`ce-*` headers, JSON data). "
            "202 means the intake is durable: committed to the gateway's outbox, which the "
            "relay publishes in order, retrying while the broker is unreachable. The same "
            "`intake_id` twice is one intake (`duplicate`). Needs a key with scope `intake`."
        ),
        tags=["intake"],
    )
    async def post_event(request: Request, key: ApiKey = INTAKE_KEY) -> JSONResponse:
        body = await request.body()
        try:
            submitted = from_request(request.headers.get("content-type", ""), request.headers, body)
        except Refused as exc:
            raise Refusal(400, str(exc)) from None
        new = await gateway_of(request).submit(submitted, key_name=key.name)
        return JSONResponse(
            {
                "intake_id": str(submitted.intake.intake_id),
                "status": "accepted" if new else "duplicate",
            },
            status_code=202,
        )


DOCS_PAGE = Path(__file__).parent / "static" / "docs.html"


def _docs_route(app: FastAPI) -> None:
    page = DOCS_PAGE.read_text()

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """The API described for people, drawn from /openapi.json by a page written here."""
        return HTMLResponse(page)


def _noop_route(app: FastAPI) -> None:
    @app.post("/noop", include_in_schema=False, status_code=202)
    async def noop(request: Request) -> JSONResponse:
        """Reads the body and answers: the server's raw ceiling, for the bench."""
        await request.body()
        return JSONResponse({"status": "accepted"}, status_code=202)


Router = Callable[[FastAPI], None]


def create_app(gateway: Gateway, *, routers: tuple[Router, ...] = ()) -> Any:
    """The application: health, intake and each router given (webhooks, Open311, EIDO,
    CAP), wrapped in the body limit and the access log."""
    app = FastAPI(
        # FastAPI's own pages load their script from a CDN; a command centre may be offline.
        docs_url=None,
        redoc_url=None,
        title="Siaga gateway",
        version="1",
        description="Citizen channels, CloudEvents intake, Open311 GeoReport v2, NENA EIDO "
        "and CAP 1.2 for Siaga's command centre.",
    )
    app.state.gateway = gateway
    app.add_exception_handler(Refusal, _refused)
    _health_routes(app)
    _docs_route(app)
    _intake_routes(app)
    if gateway.settings.noop_route:
        _noop_route(app)
    for router in routers:
        router(app)
    return AccessLog(BodyLimit(app, max_bytes=gateway.settings.max_body_bytes))
