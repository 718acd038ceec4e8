"""Transactional outbox: events are written with the effects, then relayed to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from schemas.envelope import CONTENT_TYPE, TYPE_HEADER, Event, encode_event, event_type_of
from services.common.logging import get_logger

if TYPE_CHECKING:
    # For annotations only: a client that only routes events (`Outgoing`) loads neither
    # the database driver nor FastStream.
    import asyncpg
    from faststream.kafka import KafkaBroker

    from schemas.topics import Topics
    from services.common.health import StageMetrics

log = get_logger("outbox")


@dataclass(frozen=True)
class Outgoing:
    """One event bound for a topic under a key."""

    event: Event
    topic: str
    key: bytes | None

    @cached_property
    def value(self) -> bytes:
        """The encoded event (encoded once, for the outbox row and for the send)."""
        return encode_event(self.event)

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
    # One statement for the batch; rows take their `seq` in the order given, which is the
    # order the relay sends leftovers in.
    await conn.execute(
        """
        INSERT INTO outbox (event_id, topic, key, value)
        SELECT event_id, topic, key, value
          FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[])
               WITH ORDINALITY AS o(event_id, topic, key, value, n)
         ORDER BY n
        ON CONFLICT (event_id) DO NOTHING
        """,
        [o.event.id for o in outgoing],
        [o.topic for o in outgoing],
        [o.key for o in outgoing],
        [o.value for o in outgoing],
    )


class OutboxRelay:
    """Sends a stage's events to Kafka and deletes them from the outbox once the broker has them.

    Events of a transaction that has just committed are queued (`send_committed`) and sent
    from memory by `send_queued`, in commit order, while the stage goes on with its next
    batch: a hop costs no extra database round trip and no wait. Whatever that leaves
    behind (a send that failed, a crash between commit and send, another instance's
    leftovers) is sent from the table, in `seq` order, by `run`. A key's events never
    overtake each other: after a failed send every later event goes through the table too,
    and sending from memory resumes only when nothing older is left there.
    """

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        broker: KafkaBroker,
        schema: str,
        batch_size: int = 500,
        metrics: StageMetrics | None = None,
        grace_s: float = 5.0,
        max_queued: int = 1_000,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._broker = broker
        self._batch_size = batch_size
        self._lock_key = f"siaga.outbox.{schema}"
        # Rows younger than this belong to a live sender (this instance or another) that
        # is about to send and delete them; the table drain leaves them alone.
        self._grace_s = grace_s
        # When the broker is slower than the stage, the table is the buffer, not memory.
        self._max_queued = max_queued
        self._wake = asyncio.Event()
        self._queue: list[Outgoing] = []
        self._queued = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Until the table has been drained once, older rows may wait there: start behind.
        self._caught_up = False
        self._left_behind = 0  # times events were left to the table drain
        self._sent: list[str] = []  # ids sent from memory, to delete from the table
        self.published = 0

    @property
    def queued(self) -> int:
        """Events waiting in memory to be sent."""
        return len(self._queue)

    def wake(self) -> None:
        """Ask the relay to look at the table now."""
        self._wake.set()

    def send_committed(self, outgoing: Sequence[Outgoing]) -> None:
        """Queue the events of a transaction that has just committed; if older events still
        wait in the table (or too many are queued), leave these to the table drain too."""
        if not outgoing:
            return
        if self._caught_up and len(self._queue) < self._max_queued:
            self._queue += outgoing
            self._idle.clear()
            self._queued.set()
        else:
            self._fall_behind()

    def _fall_behind(self) -> None:
        self._caught_up = False
        self._left_behind += 1
        self.wake()

    async def send_queued(self) -> None:
        """Send what is queued, forever: all that waits as one pipelined send."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            batch, self._queue = self._queue, []
            try:
                if not self._caught_up:
                    # A send failed meanwhile: these are in the table, behind older rows.
                    self._fall_behind()
                    continue
                await self._send([(o.topic, o.key, o.value, o.event.envelope.type) for o in batch])
            except Exception as exc:
                # They are safe in the table; from now on everything goes through it, so no
                # later event overtakes them.
                self._fall_behind()
                self._failed("sending from memory failed, the outbox will be drained", exc)
                continue
            finally:
                if not self._queue:
                    self._idle.set()
            self._sent += [o.event.id for o in batch]
            self._count(len(batch))
            self.wake()

    async def close(self, *, timeout_s: float = 2.0) -> None:
        """Before stopping: wait a while for what is queued to be sent, and delete what was
        (anything left is sent from the table by the next start)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=timeout_s)
        with contextlib.suppress(Exception):
            await self._forget_sent()

    async def run(self, *, idle_poll_s: float = 0.5) -> None:
        """Relay forever: delete what was sent at once; drain the table while behind, and
        every `idle_poll_s` look for rows left there (by a crash, or another instance)."""
        loop = asyncio.get_running_loop()
        backoff = 0.1
        next_look = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, next_look - loop.time()))
            self._wake.clear()
            try:
                await self._forget_sent()
                if self._caught_up and loop.time() < next_look:
                    continue
                next_look = loop.time() + idle_poll_s
                left_behind = self._left_behind
                while await self.drain_once() == self._batch_size:
                    pass
                if not self._caught_up and self._left_behind == left_behind:
                    self._caught_up = True  # nothing older waits: send at once again
                backoff = 0.1
            except Exception as exc:
                # Broker or database unwell: nothing is lost (rows stay until published),
                # so wait and try again rather than let the relay die.
                self._failed("outbox relay retrying", exc, retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._wake.set()

    async def _forget_sent(self) -> None:
        """Delete the rows of events the broker has (one statement for all sent so far)."""
        if not self._sent:
            return
        sent, self._sent = self._sent, []
        try:
            await self._pool.execute("DELETE FROM outbox WHERE event_id = ANY($1::text[])", sent)
        except Exception:
            self._sent = sent + self._sent
            raise

    async def drain_once(self) -> int:
        """Send one batch of rows left in the table, oldest first; returns how many were sent.
        While caught up, only rows older than the grace period count as left."""
        async with self._pool.acquire() as conn, conn.transaction():
            # One relay per schema at a time, so events of one key leave in order.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._lock_key)
            if self._caught_up:
                rows = await conn.fetch(
                    "SELECT seq, topic, key, value FROM outbox "
                    "WHERE created_at < now() - make_interval(secs => $2) ORDER BY seq LIMIT $1",
                    self._batch_size,
                    self._grace_s,
                )
            else:
                rows = await conn.fetch(
                    "SELECT seq, topic, key, value FROM outbox ORDER BY seq LIMIT $1",
                    self._batch_size,
                )
            if not rows:
                return 0
            # The table keeps no type: these go without the type header, and every stage
            # reading them parses them (a rare path: a failed send, a crash, a restart).
            await self._send([(row["topic"], row["key"], row["value"], None) for row in rows])
            await conn.execute(
                "DELETE FROM outbox WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows]
            )
        self._count(len(rows))
        return len(rows)

    async def _send(self, messages: list[tuple[str, bytes | None, bytes, str | None]]) -> None:
        """Send pipelined, in order, and wait until the broker has every one; each with its
        event type in the type header when it is known."""
        futures = [
            await self._broker.publish(
                value,
                topic,
                key=key,
                headers=(
                    {"content-type": CONTENT_TYPE}
                    if type_ is None
                    else {"content-type": CONTENT_TYPE, TYPE_HEADER: type_}
                ),
                no_confirm=True,
            )
            for topic, key, value, type_ in messages
        ]
        await asyncio.gather(*futures)

    def _failed(self, message: str, exc: Exception, **fields: Any) -> None:
        if self._metrics is not None:
            self._metrics.error("relay_failed")
        log.warning(message, schema=self._lock_key, error=f"{type(exc).__name__}: {exc}", **fields)

    def _count(self, n: int) -> None:
        self.published += n
        if self._metrics is not None:
            self._metrics.events_out.inc(n)
