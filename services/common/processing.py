"""Batch processing with at-least-once, idempotent semantics shared by every stage.

A batch of records is handled in one database transaction: each record is decoded
(bad ones become dead letters), recorded in the inbox (one statement for the batch) and
handled, each handler given the transaction's `UnitOfWork` (its connection, its clock
and the stage's `BatchState`, made afresh for the transaction, which may first read what
the handlers will need: `Prepares`); writes the handlers collected (`Deferred`, a stage's
`BatchState`) are sent, and the output events go to the outbox, in the same transaction.
Once it has committed, the events are handed to `publish` (the outbox relay queues them to be sent at once).
If a handler refuses or fails on a record (or a collected write fails), the batch is
redone with a savepoint per record, so that record alone is dead-lettered (and left out
of the inbox, so a redrive can apply it).
The caller commits the Kafka offsets only after this returns, so nothing is
acknowledged before it is durable, and a redelivered record finds its inbox row and
changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import asyncpg

from schemas.common import Contract
from schemas.envelope import TYPE_HEADER, DecodeError, Event, decode_event, event_type_of
from schemas.registry import current_type, model_for_type
from schemas.topics import Topics
from services.common.db import is_transient
from services.common.deadletter import dead_letter
from services.common.health import StageMetrics
from services.common.logging import get_logger, handling
from services.common.outbox import Outgoing, write_outbox
from services.common.records import Record
from services.common.uow import UnitOfWork

# A stage's handler: given the transaction's unit of work and an event of the payload type
# its signature names (`event: Event[IncidentClassifiedV1]`), the events to send (`Stage`).
Handler = Callable[[UnitOfWork[Any], Event[Any]], Awaitable[Sequence[Outgoing]]]

log = get_logger("processing")


class Rejected(Exception):
    """The domain refuses an event (e.g. an illegal state transition): dead-letter it."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class BatchState(Protocol):
    """What a stage keeps for one transaction alone (writes it collects, locks it took,
    look-ups it made): made afresh for each transaction, flushed before its effects
    commit, and dropped with it, whatever becomes of it."""

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Send what was collected, in the caller's transaction."""


@runtime_checkable
class Prepares(Protocol):
    """A `BatchState` that reads, in one go, what the handlers will ask of a batch."""

    async def prepare(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Read (and lock) up front what the handlers of `events` will need."""


@runtime_checkable
class Screens(Protocol):
    """A `BatchState` that tells, before the inbox, which events of a batch concern this
    stage at all: the rest are passed over like another stage's, with no inbox row."""

    async def screen(self, conn: asyncpg.Connection, events: Sequence[Event]) -> set[str]:
        """The ids of those of `events` that may have an effect here."""


@dataclass(frozen=True)
class Rows:
    """An insert-if-absent whose parameters are arrays, one element per row (`unnest`), so
    that a batch's rows go in one statement, not one execution each. Only for
    `ON CONFLICT DO NOTHING`: an upsert may not touch the same row twice in one statement."""

    sql: str


class Deferred:
    """Order-tolerant writes of a batch, sent per statement: as one pipelined `executemany`,
    or for `Rows` as one statement with a column of values per parameter.

    Only for statements whose outcome is the same in any order (insert-if-absent, or
    upserts through COALESCE/LEAST/GREATEST or a rank): calls of one statement keep their
    order, but statements are regrouped. A handler about to run anything else flushes
    first, so what it reads or changes sees the writes before it.
    """

    def __init__(self) -> None:
        self._pending: dict[str | Rows, list[tuple[Any, ...]]] = {}

    def add(self, sql: str | Rows, *args: Any) -> None:
        """Collect one call of `sql` (for `Rows`, one row)."""
        self._pending.setdefault(sql, []).append(args)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Send what was collected."""
        pending, self._pending = self._pending, {}
        for sql, calls in pending.items():
            if isinstance(sql, Rows):
                await conn.execute(sql.sql, *(list(column) for column in zip(*calls, strict=True)))
            else:
                await conn.executemany(sql, calls)


@dataclass(frozen=True)
class _Item:
    """A record of a batch, decoded: its event and handler, or its dead letter."""

    record: Record
    event: Event | None
    handler: Handler | None
    dead: Sequence[Outgoing]


def _type_header(record: Record) -> str | None:
    """The event type a record's header says it holds, or None (no header, an empty one, as
    a dead letter's redriven copy of a null header is, or not text)."""
    for key, value in record.headers:
        if key == TYPE_HEADER:
            try:
                return value.decode() or None
            except UnicodeDecodeError:
                return None
    return None


class _Isolate(Exception):
    """A record of the batch failed: the batch is redone record by record."""


@contextlib.contextmanager
def _isolating() -> Iterator[None]:
    """A failure that waiting will not cure (unlike a database outage, which is retried)
    redoes the batch record by record."""
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise
        raise _Isolate from exc


def _about(event: Event) -> dict[str, Any]:
    """The fields of log lines written while `event` is handled."""
    incident_id = getattr(event.payload, "incident_id", None)
    return {
        "event_id": event.id,
        "incident_id": None if incident_id is None else str(incident_id),
        "event_type": event.envelope.type,
        "subject": event.envelope.subject,
        "correlation_id": event.envelope.correlationid,
    }


def event_key(event: Event) -> str:
    """Default inbox key: the envelope id."""
    return f"event:{event.id}"


class BatchProcessor:
    """Handles consumer batches for one stage; see the module docstring for the guarantees."""

    def __init__(
        self,
        *,
        stage: str,
        pool: asyncpg.Pool,
        topics: Topics,
        handlers: Mapping[type[Contract], Handler],
        inbox_key: Callable[[Event], str] = event_key,
        publish: Callable[[Sequence[Outgoing]], None] | None = None,
        owned_topics: Collection[str] | None = None,
        metrics: StageMetrics | None = None,
        new_state: Callable[[], BatchState] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.stage = stage
        # What handlers keep for a transaction (writes they collect, look-ups they made) is
        # made for it and flushed before the outbox is written: per batch on the fast
        # path, per record (inside its savepoint) on the careful one.
        self._new_state = new_state
        self._clock = clock
        self._pool = pool
        self._topics = topics
        self._handlers = handlers
        self._inbox_key = inbox_key
        self._publish = publish
        # Several stages read some topics; only the topic's owner dead-letters a message
        # nobody can decode, so the ops team sees each bad message once.
        self._owned_topics = None if owned_topics is None else frozenset(owned_topics)
        self.metrics = metrics or StageMetrics(stage)
        self._handles: dict[str, bool] = {}  # event type (as in its header) -> handled here
        self.skipped = 0
        self.processed = 0
        self.dead_lettered = 0

    async def process(self, records: Sequence[Record]) -> None:
        """Apply a batch durably; waits out database outages with backoff instead of skipping."""
        backoff = 0.1
        started = time.monotonic()
        while True:
            try:
                dead, outgoing = await self._apply(records)
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.metrics.error("database_unavailable")
                log.warning(
                    "database unavailable, batch will be retried",
                    stage=self.stage,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        self.processed += len(records)
        self.dead_lettered += dead
        self.metrics.events_in.inc(len(records))
        self.metrics.dead_letters.inc(dead)
        if self._publish is not None:
            self._publish(outgoing)
        self.metrics.latency.observe(time.monotonic() - started)

    async def _apply(self, records: Sequence[Record]) -> tuple[int, list[Outgoing]]:
        """Decode and apply the batch once; the dead letters' count and the events to send."""
        decoded = [self._decode(record) for record in records]
        try:
            return await self._apply_fast(decoded)
        except _Isolate:
            # Some record was refused or failed: redo the batch with a savepoint per
            # record, so only that record is dead-lettered and the rest apply.
            return await self._apply_careful(decoded)

    def _decode(self, record: Record) -> _Item:
        """The record's event and handler, its dead letter, or nothing (another stage's)."""
        owned = self._owned_topics is None or record.topic in self._owned_topics
        said = _type_header(record)
        if said is not None and not owned and not self._handled(said):
            # Another stage's event on a shared topic: passed over unread. Read, it would
            # be passed over too (or, if it could not be read, left to the topic's owner).
            return _Item(record, None, None, ())
        try:
            event = decode_event(record.value)
            expected = event_type_of(event).topic(self._topics)
            if expected != record.topic:
                # A real event on the wrong topic is hostile or a mistake; handling it
                # would let anyone write anywhere.
                raise DecodeError(
                    "wrong_topic", f"{event.envelope.type} belongs on {expected}, not here"
                )
            if said is not None and current_type(said) != event.envelope.type:
                # Stages that trust the header would pass it over while others apply it:
                # refused everywhere instead, and dead-lettered by the topic's owner.
                raise DecodeError(
                    "type_mismatch",
                    f"the {TYPE_HEADER} header says {said[:128]!r}, "
                    f"the event is {event.envelope.type!r}",
                )
        except DecodeError as exc:
            if not owned:
                self.skipped += 1
                return _Item(record, None, None, ())
            return _Item(record, None, None, self._dead(record, exc.kind, exc.reason))
        handler = self._handlers.get(type(event.payload))
        if handler is None:
            return _Item(record, None, None, ())  # another stage's event on a shared topic
        return _Item(record, event, handler, ())

    def _handled(self, type_: str) -> bool:
        """Whether this stage has a handler for events of `type_` (upcast to its current
        version); an unknown type has none."""
        handled = self._handles.get(type_)
        if handled is None:
            known = model_for_type(current_type(type_))
            handled = known is not None and known.model in self._handlers
            if len(self._handles) < 1_000:  # a hostile producer could invent types forever
                self._handles[type_] = handled
        return handled

    async def _apply_fast(self, items: Sequence[_Item]) -> tuple[int, list[Outgoing]]:
        """The common case: one inbox statement, the handlers, one outbox statement."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await self._apply_in(self._unit_of_work(conn), items)

    def _unit_of_work(self, conn: asyncpg.Connection) -> UnitOfWork[Any]:
        """A transaction's unit of work, with a state of its own."""
        state = self._new_state() if self._new_state is not None else None
        return UnitOfWork(conn, self._clock, state)

    async def _apply_in(
        self, uow: UnitOfWork[Any], items: Sequence[_Item]
    ) -> tuple[int, list[Outgoing]]:
        """The batch's inbox, handlers, collected writes and outbox, in the caller's transaction."""
        conn = uow.conn
        if isinstance(uow.state, Screens):
            with _isolating():
                wanted = await uow.state.screen(conn, [i.event for i in items if i.event])
            items = [
                i
                if i.event is None or i.event.id in wanted
                else _Item(i.record, None, None, i.dead)
                for i in items
            ]
        keys = [None if i.event is None else self._inbox_key(i.event) for i in items]
        named = [k for k in keys if k is not None]
        fresh = (
            {
                row["message_key"]
                for row in await conn.fetch(
                    "INSERT INTO inbox (message_key) SELECT unnest($1::text[]) "
                    "ON CONFLICT DO NOTHING RETURNING message_key",
                    named,
                )
            }
            if named
            else set()
        )
        if isinstance(uow.state, Prepares):
            with _isolating():
                await uow.state.prepare(
                    conn,
                    [i.event for i, k in zip(items, keys, strict=True) if i.event and k in fresh],
                )
        outgoing: list[Outgoing] = []
        for item, key in zip(items, keys, strict=True):
            outgoing += item.dead
            if item.event is None or item.handler is None:
                continue
            if key not in fresh:
                continue  # applied before (or earlier in this batch)
            fresh.discard(key)
            with handling(functools.partial(_about, item.event)), _isolating():
                outgoing += await item.handler(uow, item.event)
        with _isolating():
            await _flush(uow)
        await write_outbox(conn, outgoing)
        return sum(1 for i in items if i.dead), outgoing

    async def _apply_careful(self, items: Sequence[_Item]) -> tuple[int, list[Outgoing]]:
        """The batch again, a savepoint per record, so only a failing record is dead-lettered."""
        dead = 0
        batch: list[Outgoing] = []
        async with self._pool.acquire() as conn, conn.transaction():
            for item in items:
                outgoing, rejected = await self._one(conn, item)
                dead += rejected
                await write_outbox(conn, outgoing)
                batch += outgoing
        return dead, batch

    async def _one(self, conn: asyncpg.Connection, item: _Item) -> tuple[Sequence[Outgoing], int]:
        """One record in its savepoint: its events, or its dead letter (and 1)."""
        if item.event is None or item.handler is None:
            return item.dead, len(item.dead)
        uow = self._unit_of_work(conn)
        with handling(functools.partial(_about, item.event)):
            try:
                async with conn.transaction():
                    first_time = await conn.fetchval(
                        "INSERT INTO inbox (message_key) VALUES ($1) "
                        "ON CONFLICT DO NOTHING RETURNING true",
                        self._inbox_key(item.event),
                    )
                    if not first_time:
                        return (), 0
                    if isinstance(uow.state, Prepares):
                        await uow.state.prepare(conn, [item.event])
                    outgoing = list(await item.handler(uow, item.event))
                    await _flush(uow)
                    return outgoing, 0
            except Rejected as exc:
                return self._dead(item.record, exc.kind, exc.reason), 1
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.exception("handler failed, message dead-lettered", stage=self.stage)
                return self._dead(item.record, "handler_error", f"{type(exc).__name__}: {exc}"), 1

    def _dead(self, record: Record, kind: str, reason: str) -> Sequence[Outgoing]:
        """The record's dead letter, logged."""
        log.warning(
            "dead-lettered",
            stage=self.stage,
            kind=kind,
            reason=reason[:200],
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        return [
            dead_letter(record, stage=self.stage, kind=kind, reason=reason, topics=self._topics)
        ]


async def _flush(uow: UnitOfWork[Any]) -> None:
    """Send what the handlers collected for the transaction, in it."""
    if uow.state is not None:
        await uow.state.flush(uow.conn)
