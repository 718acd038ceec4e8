"""The inbox's retention: rows of processed messages older than it are pruned periodically.

A row only matters while its message can come again. Kafka redelivers a record (after a
crash before the offset commit, a rebalance, a group whose committed offsets expired and
that starts over from the earliest record) only while the record is still in the log, so a
retention at least as long as the topics' (Kafka's default: 7 days) covers every
redelivery. A redriven dead letter older than the retention is applied again by the stages
that had processed its original: redrive letters within it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from services.common.outbox import Outgoing
from services.common.settings import InboxSettings
from services.common.timers import PeriodicJob
from services.common.uow import UnitOfWork


async def prune_inbox(conn: asyncpg.Connection, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` inbox rows processed before `before`; returns how many went."""
    # SKIP LOCKED: several replicas of a stage prune at once without waiting on each other.
    status = await conn.execute(
        """
        DELETE FROM inbox WHERE message_key IN (
            SELECT message_key FROM inbox WHERE processed_at < $1
            LIMIT $2 FOR UPDATE SKIP LOCKED
        )
        """,
        before,
        limit,
    )
    return int(status.rpartition(" ")[2])


def inbox_pruner(
    settings: InboxSettings, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> PeriodicJob:
    """The periodic job that keeps a stage's inbox to its retention."""
    retention = timedelta(days=settings.retention_days)

    async def prune(uow: UnitOfWork[None]) -> Sequence[Outgoing]:
        await prune_inbox(uow.conn, before=clock() - retention, limit=settings.prune_batch)
        return ()

    return PeriodicJob("inbox-prune", settings.prune_interval_s, prune)
