"""Intakes made durable in groups: requests that arrive while a transaction commits wait
for the next one, which takes them all (a group commit). PostgreSQL flushes its log to
disk at each commit, so a busy gateway pays one flush for many intakes, and a quiet one
waits for nothing (a group is whatever arrived meanwhile, often one)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from schemas.envelope import Event
from schemas.topics import Topics
from services.common.db import is_transient
from services.common.logging import get_logger
from services.common.outbox import OutboxRelay, Outgoing, write_outbox
from services.gateway.intake import accept_intake

log = get_logger("gateway")

Extra = Callable[[asyncpg.Connection, datetime], Awaitable[None]]


@dataclass(frozen=True)
class Accepted:
    """One intake to make durable, who sent it, and what else a new one keeps in its
    transaction (a channel's conversation, an Open311 request's details)."""

    event: Event
    key_name: str | None
    extra: Extra | None = None


def _unwell(exc: BaseException) -> bool:
    """The database failed (not this intake's data): nothing of the group can be kept."""
    if is_transient(exc):
        return True
    bad_data = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, bad_data)


class GroupCommit:
    """Takes intakes from many requests and commits them together; each request learns
    whether its intake was new. Each intake has a savepoint of its own, so one whose extra
    fails is refused alone; a commit that fails fails its whole group (a 5xx each: nothing
    of theirs was kept, and the sender may retry)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        relay: OutboxRelay,
        topics: Topics,
        clock: Callable[[], datetime],
        max_group: int = 200,
    ) -> None:
        self.pool = pool
        self.relay = relay
        self.topics = topics
        self.clock = clock
        self.max_group = max_group
        self._waiting: list[tuple[Accepted, asyncio.Future[bool]]] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin committing groups."""
        self._task = asyncio.create_task(self._run(), name="gateway-group-commit")

    async def stop(self) -> None:
        """Stop; requests still waiting are told the gateway is stopping."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future in self._waiting:
            if not future.done():
                future.set_exception(ConnectionError("the gateway is stopping"))
        self._waiting = []

    async def submit(self, accepted: Accepted) -> bool:
        """Wait until the intake is committed; True when it was new."""
        if self._task is None or self._task.done():
            raise ConnectionError("the gateway is not accepting intakes")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((accepted, future))
        self._arrived.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._waiting:
                group = self._waiting[: self.max_group]
                self._waiting = self._waiting[self.max_group :]
                await self._commit(group)

    async def _commit(self, group: list[tuple[Accepted, asyncio.Future[bool]]]) -> None:
        outcome: dict[int, bool | BaseException] = {}
        outgoing: list[Outgoing] = []
        now = self.clock()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                for i, (accepted, _) in enumerate(group):
                    try:
                        async with conn.transaction():  # a savepoint: this intake alone
                            new = await accept_intake(
                                conn, event=accepted.event, now=now, key_name=accepted.key_name
                            )
                            if new and accepted.extra is not None:
                                await accepted.extra(conn, now)
                    except Exception as exc:
                        if _unwell(exc):
                            raise  # the database, not this intake: the whole group fails
                        outcome[i] = exc
                        continue
                    outcome[i] = new
                    if new:
                        outgoing.append(Outgoing.of(accepted.event, self.topics))
                await write_outbox(conn, outgoing)
        except Exception as exc:
            log.warning("intakes not accepted", count=len(group), error=type(exc).__name__)
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        self.relay.send_committed(outgoing)
        for i, (_, future) in enumerate(group):
            if future.done():
                continue
            result = outcome[i]
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
