"""Caller history, kept by the enricher (its own `enricher` schema)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from schemas.envelope import Event
from schemas.events import IncidentOpenedV1, IntakeReceivedV1
from services.common.processing import Deferred, Rows


@dataclass(frozen=True)
class CallerHistory:
    """What was known of a number before the current report."""

    reports: int
    pranks: int
    last_report_at: datetime | None


_CALLER_INTAKES = Rows(
    "INSERT INTO caller_intakes (intake_id, phone, received_at) "
    "SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) "
    "ON CONFLICT (intake_id) DO NOTHING"
)


@dataclass
class _Count:
    """What this batch adds to a number's row."""

    reports: int = 0
    ghosts: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None


class Callers:
    """The enricher's state for one batch: the numbers its intakes came from are locked and
    read in one statement, counted in memory and written back in one; which intake each
    number made, and which intake opened each incident, are collected too and written in
    one statement each (read back only when a verdict comes)."""

    def __init__(self) -> None:
        self.later = Deferred()
        self._known: dict[str, CallerHistory] = {}
        self._counts: dict[str, _Count] = {}
        self._openings: dict[UUID, UUID] = {}  # incident -> the intake that opened it
        self._pranks: set[UUID] = set()  # incidents of the batch known to be pranks

    async def prepare(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Lock and read, in one go, the numbers of the batch's intakes, and which of the
        incidents it sees opened were already judged pranks."""
        phones = {
            e.payload.caller.phone
            for e in events
            if isinstance(e.payload, IntakeReceivedV1) and e.payload.caller.phone
        }
        await self._read(conn, phones)
        opened = [e.payload.incident_id for e in events if isinstance(e.payload, IncidentOpenedV1)]
        if opened:
            rows = await conn.fetch(
                "SELECT incident_id FROM incident_verdicts "
                "WHERE incident_id = ANY($1::uuid[]) AND prank",
                opened,
            )
            self._pranks.update(row["incident_id"] for row in rows)

    async def _read(self, conn: asyncpg.Connection, phones: Collection[str]) -> None:
        # Not `set(phones) - self._known.keys()`: that walks every number the batch has
        # read, once per report.
        wanted = sorted({p for p in phones if p not in self._known})
        if not wanted:
            return
        # Locked in one order, so two instances with numbers in common cannot deadlock.
        rows = await conn.fetch(
            "SELECT phone, reports, pranks, last_report_at FROM callers "
            "WHERE phone = ANY($1::text[]) ORDER BY phone FOR UPDATE",
            wanted,
        )
        empty = CallerHistory(reports=0, pranks=0, last_report_at=None)
        self._known.update(dict.fromkeys(wanted, empty))
        for row in rows:
            self._known[row["phone"]] = CallerHistory(
                row["reports"], row["pranks"], row["last_report_at"]
            )

    async def record_report(
        self,
        conn: asyncpg.Connection,
        *,
        intake_id: UUID,
        phone: str,
        at: datetime,
        ghost: bool,
    ) -> CallerHistory:
        """Count a report from `phone` and return the history as it was before it."""
        await self._read(conn, (phone,))
        before = self._known[phone]
        last = before.last_report_at
        self._known[phone] = CallerHistory(
            reports=before.reports + 1,
            pranks=before.pranks,
            last_report_at=at if last is None else max(last, at),
        )
        count = self._counts.setdefault(phone, _Count())
        count.reports += 1
        count.ghosts += int(ghost)
        count.first_at = at if count.first_at is None else min(count.first_at, at)
        count.last_at = at if count.last_at is None else max(count.last_at, at)
        self.later.add(
            _CALLER_INTAKES,
            intake_id,
            phone,
            at,
        )
        return before

    async def record_opening(
        self, conn: asyncpg.Connection, *, incident_id: UUID, intake_id: UUID
    ) -> None:
        """Note which intake opened an incident: with the batch's other writes, unless the
        incident was already judged a prank, whose count the batch's later calls must see."""
        self._openings.setdefault(incident_id, intake_id)
        if incident_id in self._pranks:
            await self.flush(conn)  # a verdict that came first: counted now (rare)

    def saw_prank(self, incident_id: UUID) -> None:
        """An incident of this batch was judged a prank."""
        self._pranks.add(incident_id)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write what the batch counted (adding to whatever is there) and the incidents it
        saw opened, recount the numbers whose prank verdict came first, and start afresh."""
        counts, self._counts = self._counts, {}
        openings, self._openings = self._openings, {}
        self._known = {}
        if counts:
            phones = sorted(counts)
            await conn.execute(
                """
                INSERT INTO callers (phone, reports, ghosts, first_report_at, last_report_at)
                SELECT * FROM unnest($1::text[], $2::int[], $3::int[],
                                     $4::timestamptz[], $5::timestamptz[])
                ON CONFLICT (phone) DO UPDATE
                   SET reports = callers.reports + EXCLUDED.reports,
                       ghosts = callers.ghosts + EXCLUDED.ghosts,
                       last_report_at = GREATEST(callers.last_report_at, EXCLUDED.last_report_at)
                """,
                phones,
                [counts[p].reports for p in phones],
                [counts[p].ghosts for p in phones],
                [counts[p].first_at for p in phones],
                [counts[p].last_at for p in phones],
            )
        await self.later.flush(conn)
        if openings:
            verdicts = await conn.fetch(
                """
                INSERT INTO incident_verdicts (incident_id, intake_id, prank)
                SELECT incident_id, intake_id, false
                  FROM unnest($1::uuid[], $2::uuid[]) AS o(incident_id, intake_id)
                ON CONFLICT (incident_id) DO UPDATE
                   SET intake_id = COALESCE(incident_verdicts.intake_id, EXCLUDED.intake_id)
                RETURNING intake_id, prank
                """,
                list(openings),
                list(openings.values()),
            )
            # A prank verdict that came before its incident's opening is counted now.
            for verdict in verdicts:
                if verdict["prank"]:
                    await _recount_pranks(conn, intake_id=verdict["intake_id"])


async def record_prank(
    conn: asyncpg.Connection, callers: Callers, *, incident_id: UUID
) -> str | None:
    """Note that an incident was a prank; recount the pranks of its caller once the intake
    that opened it is known too. Returns the caller's number when it was recounted."""
    # The opening, the intake and its number may have come in this batch; the flush also
    # drops what the batch read, so its later calls read the recount.
    await callers.flush(conn)
    callers.saw_prank(incident_id)
    intake = await conn.fetchval(
        """
        INSERT INTO incident_verdicts (incident_id, intake_id, prank) VALUES ($1, NULL, true)
        ON CONFLICT (incident_id) DO UPDATE SET prank = true
        RETURNING intake_id
        """,
        incident_id,
    )
    if intake is None:
        return None  # counted when the opening comes
    return await _recount_pranks(conn, intake_id=intake)


async def _recount_pranks(conn: asyncpg.Connection, *, intake_id: UUID) -> str | None:
    """Count again the pranks of the number `intake_id` came from; returns that number."""
    phone = await conn.fetchval("SELECT phone FROM caller_intakes WHERE intake_id = $1", intake_id)
    if phone is None:
        return None  # a withheld number: nothing to count against
    await conn.execute(
        """
        UPDATE callers
           SET pranks = (SELECT count(*) FROM incident_verdicts v
                           JOIN caller_intakes c USING (intake_id)
                          WHERE c.phone = $1 AND v.prank)
         WHERE phone = $1
        """,
        phone,
    )
    return str(phone)
