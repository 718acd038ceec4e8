"""When the read model changes, for the command-centre page's live updates: one poller per
gateway process, shared by every open event stream, looks cheaply at the read model's inbox
a few times a second and wakes the streams when something new was applied.

Every event the projector applies writes its inbox row in the same transaction as its
effects, so the inbox sees every change (units moving, reviews, work orders, the timeline)
and nothing is visible before its row is. Its rows are written in time order and indexed
by time (BRIN), so counting those of the last minutes is cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.common.logging import get_logger

log = get_logger("gateway.centre")


@dataclass(frozen=True)
class Look:
    """One look at the read model's inbox: from when it counted, the database's time then,
    how many messages were applied since, and when the newest was."""

    since: datetime
    now: datetime
    count: int
    newest: datetime | None


class ChangeWatch:
    """Tells from successive looks whether the read model changed in between. Looks count
    from a fixed instant (so a transaction that commits late, with an earlier time, still
    adds one), moved forward every `reanchor` so the count stays small."""

    def __init__(self, *, reanchor: timedelta = timedelta(minutes=10)) -> None:
        self.reanchor = reanchor
        self._since: datetime | None = None
        self._last: Look | None = None

    def since(self) -> datetime | None:
        """Where the next look counts from; None: a fresh start, a while before now."""
        return self._since

    def saw(self, look: Look) -> bool:
        """Take a look; True when it shows a change since the one before."""
        last, self._last = self._last, look
        self._since = None if look.now - look.since > self.reanchor else look.since
        if last is None:
            return False
        if look.since != last.since:
            # Counted from a new instant: the counts differ anyway, the newest tells.
            return look.newest != last.newest
        return (look.count, look.newest) != (last.count, last.newest)


Looker = Callable[[datetime | None], Awaitable[Look]]


def inbox_looker(reads: asyncpg.Pool, *, window: timedelta = timedelta(minutes=1)) -> Looker:
    """A look at the read model's inbox through the read-only pool; a fresh start counts
    from `window` before the database's now (longer than any transaction)."""

    async def look(since: datetime | None) -> Look:
        row = await reads.fetchrow(
            """
            SELECT a.since, now() AS now, count(i.message_key) AS count,
                   max(i.processed_at) AS newest
              FROM (SELECT COALESCE($1::timestamptz, now() - $2::interval) AS since) a
              LEFT JOIN inbox i ON i.processed_at >= a.since
             GROUP BY a.since
            """,
            since,
            window,
        )
        assert row is not None
        return Look(row["since"], row["now"], row["count"], row["newest"])

    return look


class ChangeFeed:
    """The read model's version as the page sees it: a number that goes up when something
    changed. Polls only while someone listens; `close` ends every listener (the gateway
    stopping), so open streams do not hold the server up."""

    def __init__(self, *, interval_s: float = 0.3, watch: ChangeWatch | None = None) -> None:
        self.interval_s = interval_s
        self.version = 0
        self.closed = False
        self._watch = watch or ChangeWatch()
        self._changed = asyncio.Event()
        self._listeners = 0
        self._poller: asyncio.Task[None] | None = None

    @property
    def watching(self) -> bool:
        """Whether the poller runs (someone listens), so `version` follows the read model."""
        return self._poller is not None

    @contextlib.asynccontextmanager
    async def listening(self, look: Looker) -> AsyncIterator[ChangeFeed]:
        """Be one of the listeners (the first starts the poller, the last stops it)."""
        self._listeners += 1
        if self._poller is None and not self.closed:
            self._poller = asyncio.create_task(self._poll(look), name="centre-changes")
        try:
            yield self
        finally:
            self._listeners -= 1
            if self._listeners == 0:
                await self._stop_poller()

    async def wait(self, seen: int, *, timeout: float) -> int | None:
        """The version once it is not `seen` (at once if it is not already); None when
        `timeout` passed without a change or the feed closed."""
        if self.version == seen and not self.closed:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await changed.wait()
        return None if self.closed or self.version == seen else self.version

    def bump(self) -> None:
        """Something changed: wake every listener."""
        self.version += 1
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    async def close(self) -> None:
        """End every listener now, and poll no more."""
        self.closed = True
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()
        await self._stop_poller()

    async def _stop_poller(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _poll(self, look: Looker) -> None:
        failing = False
        while True:
            try:
                if self._watch.saw(await look(self._watch.since())):
                    self.bump()
                failing = False
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                if not failing:  # once per outage, not three times a second
                    log.warning(
                        "cannot look at the read model", error=f"{type(exc).__name__}: {exc}"
                    )
                failing = True
            await asyncio.sleep(self.interval_s)
