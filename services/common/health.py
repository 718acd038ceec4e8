"""Each stage's HTTP endpoint: /healthz (alive), /readyz (broker, database, partitions), /metrics.

Consumer lag is the high watermark that the stage's own fetches report minus its committed
offset: both brokers report that high watermark correctly (Tansu's ListOffsets does not).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from services.common.logging import get_logger

log = get_logger("health")

CHECK_TIMEOUT_S = 2.0


class StageMetrics:
    """The Prometheus metrics of one stage, in a registry of its own (several stages may
    share a process in tests)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.registry = CollectorRegistry()
        labels = ["stage"]
        self.events_in = Counter(
            "siaga_events_in",
            "Records consumed and handled (including skipped and dead-lettered)",
            labels,
            registry=self.registry,
        ).labels(stage)
        self.events_out = Counter(
            "siaga_events_out",
            "Events published from the outbox",
            labels,
            registry=self.registry,
        ).labels(stage)
        self.dead_letters = Counter(
            "siaga_dead_letters",
            "Records turned into dead letters",
            labels,
            registry=self.registry,
        ).labels(stage)
        self._errors = Counter(
            "siaga_errors",
            "Failures by kind: database_unavailable (batch retried), batch_failed, relay_failed",
            [*labels, "kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "siaga_batch_processing_seconds",
            "Time to apply one consumer batch durably (decode, handle, commit)",
            labels,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        ).labels(stage)
        self.lag = Gauge(
            "siaga_consumer_lag",
            "High watermark minus committed offset, per assigned partition",
            [*labels, "topic", "partition"],
            registry=self.registry,
        )

    def error(self, kind: str) -> None:
        """Count one failure of `kind`."""
        self._errors.labels(self.stage, kind).inc()

    def errors(self, kind: str) -> float:
        """How many failures of `kind` were counted (for tests and `siaga lag`)."""
        return float(self._errors.labels(self.stage, kind)._value.get())

    async def refresh_lag(self, consumer: AIOKafkaConsumer | None) -> dict[TopicPartition, int]:
        """Recompute the lag gauge from the consumer's assignment; returns it."""
        if consumer is None:
            return {}
        found = await partition_lag(consumer)
        self.lag.clear()
        for tp, lag in found.items():
            self.lag.labels(self.stage, tp.topic, str(tp.partition)).set(lag)
        return found

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return bytes(generate_latest(self.registry))


async def partition_lag(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    """Lag of each assigned partition from the consumer's own fetches; a partition not
    fetched yet is left out rather than guessed."""
    found: dict[TopicPartition, int] = {}
    for tp in sorted(consumer.assignment()):
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        committed = await consumer.committed(tp)
        found[tp] = max(0, highwater - (committed if committed is not None else 0))
    return found


Check = Callable[[], Awaitable[None]]


class HealthServer:
    """A small aiohttp server for one stage's probes and metrics."""

    def __init__(
        self,
        *,
        metrics: StageMetrics,
        checks: dict[str, Check],
        consumer: Callable[[], AIOKafkaConsumer | None],
    ) -> None:
        self.metrics = metrics
        self._checks = checks
        self._consumer = consumer
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.started = time.monotonic()

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0 picks a free port); returns the port."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"status": "alive", "stage": self.metrics.stage, "uptime_s": self.uptime()}
        )

    def uptime(self) -> float:
        """Seconds since the server started."""
        return round(time.monotonic() - self.started, 1)

    async def readiness(self) -> dict[str, str]:
        """Each check's outcome: `ok` or the one-line reason it failed."""
        results: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
        consumer = self._consumer()
        assigned = sorted(consumer.assignment()) if consumer is not None else []
        results["partitions"] = (
            f"ok ({len(assigned)} assigned)" if assigned else "no partition assigned"
        )
        return results

    def membership(self) -> dict[str, object]:
        """What the consumer reads: its member id in the stage's group (none under `siaga
        up`, whose supervisor gives each process its partitions), how many partitions it
        holds (`siaga up` knows a stage consumes when its processes hold them all between
        them), and how many the topics of those partitions have."""
        consumer = self._consumer()
        if consumer is None:
            return {}
        # aiokafka has no public accessor for the member id; "" until it has joined.
        member = getattr(getattr(consumer, "_coordinator", None), "member_id", "") or None
        subscribed = sum(
            len(consumer.partitions_for_topic(t) or ()) for t in consumer.subscription()
        )
        return {
            "member_id": member,
            "assigned": len(consumer.assignment()),
            "subscribed": subscribed,
        }

    async def _readyz(self, _: web.Request) -> web.Response:
        results = await self.readiness()
        ready = all(v.startswith("ok") for v in results.values())
        return web.json_response(
            {
                "ready": ready,
                "stage": self.metrics.stage,
                "checks": results,
                "consumer": self.membership(),
            },
            status=200 if ready else 503,
        )

    async def _metrics(self, _: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(
                self.metrics.refresh_lag(self._consumer()), timeout=CHECK_TIMEOUT_S
            )
        except Exception as exc:  # the rest of the metrics are still worth serving
            log.warning("consumer lag unavailable", error=f"{type(exc).__name__}: {exc}")
        return web.Response(
            body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
