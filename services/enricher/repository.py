"""Caller history, kept by the enricher (its own `enricher` schema)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class CallerHistory:
    """What was known of a number before the current report."""

    reports: int
    pranks: int
    last_report_at: datetime | None


async def record_report(
    conn: asyncpg.Connection, *, phone: str, at: datetime, ghost: bool
) -> CallerHistory:
    """Count a report from `phone` and return the history as it was before it."""
    row = await conn.fetchrow(
        """
        WITH before AS (
            SELECT reports, pranks, last_report_at FROM callers WHERE phone = $1 FOR UPDATE
        ), upsert AS (
            INSERT INTO callers (phone, reports, ghosts, first_report_at, last_report_at)
            VALUES ($1, 1, $3::int, $2, $2)
            ON CONFLICT (phone) DO UPDATE
               SET reports = callers.reports + 1,
                   ghosts = callers.ghosts + $3::int,
                   last_report_at = GREATEST(callers.last_report_at, EXCLUDED.last_report_at)
        )
        SELECT reports, pranks, last_report_at FROM before
        """,
        phone,
        at,
        int(ghost),
    )
    if row is None:
        return CallerHistory(reports=0, pranks=0, last_report_at=None)
    return CallerHistory(row["reports"], row["pranks"], row["last_report_at"])
