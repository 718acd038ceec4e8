"""Timers kept in the database: a periodic job finds what is due and acts, exactly once.

Due times live in a stage's own tables, so they survive a restart; a job marks what it
fired in the same transaction as the events it writes to the outbox, so a crash either
fires a timer completely or not at all, and several instances never fire one twice
(rows are taken with FOR UPDATE SKIP LOCKED by the job's own SQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.common.db import is_transient
from services.common.logging import get_logger
from services.common.outbox import Outgoing, write_outbox
from services.common.uow import UnitOfWork

log = get_logger("timers")

Job = Callable[[UnitOfWork[Any]], Awaitable[Sequence[Outgoing]]]


@dataclass(frozen=True)
class PeriodicJob:
    """Something a stage checks every `interval_s` seconds, each run in a unit of work of
    its own (with a state from `new_state`, never a batch's)."""

    name: str
    interval_s: float
    run: Job
    new_state: Callable[[], Any] | None = None

    async def run_once(
        self, conn: asyncpg.Connection, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> Sequence[Outgoing]:
        """One run in the caller's transaction: its events, its state's writes flushed."""
        state = self.new_state() if self.new_state is not None else None
        uow = UnitOfWork(conn, clock, state)
        outgoing = await self.run(uow)
        if state is not None:
            await state.flush(conn)
        return outgoing


async def run_periodically(
    job: PeriodicJob,
    *,
    pool: asyncpg.Pool,
    publish: Callable[[Sequence[Outgoing]], None],
) -> None:
    """Run `job` forever, handing what it committed to `publish`; a failing run is logged
    and retried at the next tick."""
    while True:
        await asyncio.sleep(job.interval_s)
        try:
            async with pool.acquire() as conn, conn.transaction():
                outgoing = await job.run_once(conn)
                await write_outbox(conn, outgoing)
        except Exception as exc:
            level = log.warning if is_transient(exc) else log.error
            level(
                "timer job failed, retried next tick",
                job=job.name,
                error=f"{type(exc).__name__}: {exc}",
            )
            continue
        publish(outgoing)
