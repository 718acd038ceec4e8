"""Transactional outbox: events are written with the effects, then relayed to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from faststream.kafka import KafkaBroker

from schemas.envelope import CONTENT_TYPE, Event, encode_event, event_type_of
from schemas.topics import Topics
from services.common.health import StageMetrics
from services.common.logging import get_logger

log = get_logger("outbox")


@dataclass(frozen=True)
class Outgoing:
    """One event bound for a topic under a key."""

    event: Event
    topic: str
    key: bytes | None

    @classmethod
    def of(cls, event: Event, topics: Topics, *, key: str | bytes | None = None) -> Outgoing:
        """Route an event to its registered topic, keyed by its subject unless told otherwise."""
        topic = event_type_of(event).topic(topics)
        if key is None:
            key = event.envelope.subject
        return cls(event=event, topic=topic, key=key.encode() if isinstance(key, str) else key)


async def write_outbox(conn: asyncpg.Connection, outgoing: Sequence[Outgoing]) -> None:
    """Store events in the caller's transaction; an event id already stored is not stored again."""
    if not outgoing:
        return
    await conn.executemany(
        """
        INSERT INTO outbox (event_id, topic, key, value)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (event_id) DO NOTHING
        """,
        [(o.event.id, o.topic, o.key, encode_event(o.event)) for o in outgoing],
    )


class OutboxRelay:
    """Publishes outbox rows in order and deletes them once the broker has them."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        broker: KafkaBroker,
        schema: str,
        batch_size: int = 500,
        metrics: StageMetrics | None = None,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._broker = broker
        self._batch_size = batch_size
        self._lock_key = f"siaga.outbox.{schema}"
        self._wake = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        """Ask the relay to look now (called after a stage commits)."""
        self._wake.set()

    async def run(self, *, idle_poll_s: float = 0.5) -> None:
        """Relay forever; polls now and then for rows written by other instances."""
        backoff = 0.1
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=idle_poll_s)
            self._wake.clear()
            try:
                while await self.drain_once() == self._batch_size:
                    pass
                backoff = 0.1
            except Exception as exc:
                # Broker or database unwell: nothing is lost (rows stay until published),
                # so wait and try again rather than let the relay die.
                if self._metrics is not None:
                    self._metrics.error("relay_failed")
                log.warning(
                    "outbox relay retrying",
                    schema=self._lock_key,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._wake.set()

    async def drain_once(self) -> int:
        """Publish one batch of pending rows; returns how many were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            # One relay per schema at a time, so events of one key leave in order.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._lock_key)
            rows = await conn.fetch(
                "SELECT seq, topic, key, value FROM outbox ORDER BY seq LIMIT $1",
                self._batch_size,
            )
            if not rows:
                return 0
            futures = [
                await self._broker.publish(
                    row["value"],
                    row["topic"],
                    key=row["key"],
                    headers={"content-type": CONTENT_TYPE},
                    no_confirm=True,
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute(
                "DELETE FROM outbox WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows]
            )
        self.published += len(rows)
        if self._metrics is not None:
            self._metrics.events_out.inc(len(rows))
        return len(rows)
