"""Composition root of the gateway: its consumer, the HTTP application and its server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uvicorn

from services.common.db import close_pool, create_pool
from services.common.gazetteer import load_gazetteer
from services.common.logging import get_logger
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.dispatcher.runcards import RunCards
from services.gateway.accepting import GroupCommit
from services.gateway.access import KeyCache, RateLimiter
from services.gateway.app import Gateway, Router, create_app
from services.gateway.calltaker import intake_routes
from services.gateway.centre import centre_routes
from services.gateway.centre_feed import ChangeFeed
from services.gateway.eido import Issuer
from services.gateway.entrypoint import GatewayConsumer, OurIntakes
from services.gateway.exports import cap_routes, eido_routes
from services.gateway.keys import ApiKey, find_key
from services.gateway.open311 import catalogue_for, open311_routes
from services.gateway.pages import page_routes
from services.gateway.sender import reply_sender
from services.gateway.settings import (
    GatewaySettings,
    RepliesSettings,
    SmsSettings,
    WhatsAppSettings,
)
from services.gateway.stage import GATEWAY
from services.gateway.unit_page import unit_routes
from services.gateway.webhooks import webhook_routes

log = get_logger("gateway")


class _Server(uvicorn.Server):
    """uvicorn inside a process that handles its own signals (`siaga run`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only
    # on connections of a socket that says it is TCP. With it on, a small answer written
    # after its head waited for the client's delayed ACK: 40 ms on a keep-alive connection.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        # `siaga up --replicas N`: the gateway's processes share one port, the kernel
        # spreading connections between them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serve(app: Any, settings: GatewaySettings) -> AsyncIterator[str]:
    """Serve `app` where settings say until the context exits; yields its base URL."""
    sock = _listen(settings.host, settings.port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", server_header=False
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="gateway-http")
    try:
        while not server.started:
            if task.done():
                task.result()  # it failed to start: say why
                raise RuntimeError("the gateway's HTTP server stopped before it started")
            await asyncio.sleep(0.01)
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        url = f"http://{host}:{port}"
        log.info("gateway serves", url=url)
        yield url
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


def _routers(common: CommonSettings) -> tuple[Router, ...]:
    """The routers of the channels and standards the gateway speaks, besides intake (their
    data files read now, so a bad one stops the gateway before it serves)."""
    # The crews' page estimates trips with the dispatcher's speeds (the pack's run cards).
    speeds = RunCards.load(common.home.pack().run_cards).speeds
    return (
        eido_routes,
        open311_routes(catalogue_for(common)),
        webhook_routes,
        cap_routes(common),
        page_routes,
        intake_routes(common),
        unit_routes(speeds),
        centre_routes(common),
    )


@contextlib.asynccontextmanager
async def bootstrap(
    common: CommonSettings | None = None,
    settings: GatewaySettings | None = None,
    *,
    whatsapp: WhatsAppSettings | None = None,
    sms: SmsSettings | None = None,
    replies: RepliesSettings | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[StageRuntime]:
    """Run the gateway (its consumer, its reply sender and its HTTP API) until the context
    exits; `runtime.api_url` says where it serves."""
    common = common or CommonSettings()
    settings = settings or GatewaySettings()
    routers = _routers(common)
    whatsapp = whatsapp or WhatsAppSettings()
    sms = sms or SmsSettings()
    async with stage_runtime(
        stage=GATEWAY,
        settings=common,
        handlers=GatewayConsumer().handlers(),
        new_state=OurIntakes,
        batch_interval_ms=settings.batch_interval_ms,
    ) as runtime:
        reads = await create_pool(
            common, schema="readmodel", application="siaga-gateway-reads", role="reader"
        )
        try:
            async with reply_sender(
                runtime.pool,
                whatsapp=whatsapp,
                sms=sms,
                settings=replies or RepliesSettings(),
                clock=clock,
                metrics=runtime.metrics,
            ) as sender:
                gateway = _gateway(common, settings, runtime, reads, whatsapp, sms, clock)
                gateway.replies_queued = sender.wake
                gateway.commits.start()
                try:
                    async with serve(create_app(gateway, routers=routers), settings) as url:
                        runtime.api_url = url
                        try:
                            yield runtime
                        finally:
                            # Open event streams end first, or the server would wait on them.
                            await gateway.changes.close()
                finally:
                    await gateway.commits.stop()
        finally:
            await close_pool(reads)


def _gateway(
    common: CommonSettings,
    settings: GatewaySettings,
    runtime: StageRuntime,
    reads: asyncpg.Pool,
    whatsapp: WhatsAppSettings,
    sms: SmsSettings,
    clock: Callable[[], datetime],
) -> Gateway:
    pool = runtime.pool

    async def lookup(secret: str) -> ApiKey | None:
        return await find_key(pool, secret=secret)

    async def ready() -> None:
        await pool.fetchval("SELECT 1")
        if not await runtime.broker.ping(timeout=1.5):
            raise ConnectionError("broker did not answer")

    return Gateway(
        settings=settings,
        whatsapp=whatsapp,
        sms=sms,
        topics=common.topics,
        pool=pool,
        reads=reads,
        relay=runtime.relay,
        keys=KeyCache(lookup, ttl_s=settings.key_cache_s, clock=time.monotonic),
        limiter=RateLimiter(rate_per_minute=settings.rate_per_minute, burst=settings.burst),
        clock=clock,
        ready=ready,
        changes=ChangeFeed(interval_s=settings.live_poll_ms / 1000),
        commits=GroupCommit(pool=pool, relay=runtime.relay, topics=common.topics, clock=clock),
        issuer=Issuer(
            domain=settings.agency_domain,
            centre=settings.centre_name,
            regency=load_gazetteer(common.home.pack()).regency or None,
        ),
    )
