"""Caller history, kept by the enricher (its own `enricher` schema)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.common.processing import Deferred


@dataclass(frozen=True)
class CallerHistory:
    """What was known of a number before the current report."""

    reports: int
    pranks: int
    last_report_at: datetime | None


async def record_report(
    conn: asyncpg.Connection,
    later: Deferred,
    *,
    intake_id: UUID,
    phone: str,
    at: datetime,
    ghost: bool,
) -> CallerHistory:
    """Count a report from `phone` and return the history as it was before it; which intake
    it was is noted in `later` (read back only when a verdict comes)."""
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
    later.add(
        "INSERT INTO caller_intakes (intake_id, phone, received_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (intake_id) DO NOTHING",
        intake_id,
        phone,
        at,
    )
    if row is None:
        return CallerHistory(reports=0, pranks=0, last_report_at=None)
    return CallerHistory(row["reports"], row["pranks"], row["last_report_at"])


async def record_verdict(
    conn: asyncpg.Connection,
    later: Deferred,
    *,
    incident_id: UUID,
    intake_id: UUID | None = None,
    prank: bool = False,
) -> str | None:
    """Note what an incident's opening intake was or that it was a prank; recount the pranks
    of its caller once both are known. Returns the caller's number when it was recounted."""
    verdict = await conn.fetchrow(
        """
        INSERT INTO incident_verdicts (incident_id, intake_id, prank) VALUES ($1, $2, $3)
        ON CONFLICT (incident_id) DO UPDATE
           SET intake_id = COALESCE(incident_verdicts.intake_id, EXCLUDED.intake_id),
               prank = incident_verdicts.prank OR EXCLUDED.prank
        RETURNING intake_id, prank
        """,
        incident_id,
        intake_id,
        prank,
    )
    if verdict is None or verdict["intake_id"] is None or not verdict["prank"]:
        return None  # nothing to count (yet): most incidents are not pranks
    intake = verdict["intake_id"]
    await later.flush(conn)  # the intake's number may have been noted in this batch
    phone = await conn.fetchval("SELECT phone FROM caller_intakes WHERE intake_id = $1", intake)
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
