"""The gateway's conversations with citizens: where each channel intake is answered, the
replies queued for it, and the agencies' notices of each incident (a repository around a
connection; every write idempotent, the ids derived from their cause)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from schemas.ids import derive_id
from schemas.vocabulary import Channel
from services.gateway.replies import Kind, notice_text, template_params


@dataclass(frozen=True)
class Conversation:
    """Where a channel's intake is answered: the citizen's address on the channel (a
    WhatsApp wa_id, an SMS number), the report's number, and the receipt to send."""

    channel: Channel
    address: str
    reference: str
    receipt: str


@dataclass(frozen=True)
class Queued:
    """A reply to queue: its id (derived from its cause), the intake it answers, why, the
    text, and the same words as a template's parameters where a template may carry it."""

    reply_id: UUID
    intake_id: UUID
    kind: Kind
    body: str
    params: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Reply:
    """A reply taken to be sent: to whom, on which channel, what, and its try number."""

    reply_id: UUID
    intake_id: UUID
    channel: Channel
    address: str
    kind: Kind
    body: str
    params: tuple[str, ...] | None
    attempts: int


@dataclass(frozen=True)
class Notice:
    """An agency's word on an incident (its answer, or how it closed it)."""

    notice_id: UUID
    incident_id: UUID
    kind: Kind
    agency: str
    text: str
    noticed_at: datetime


async def start_conversation(
    conn: asyncpg.Connection, *, intake_id: UUID, conversation: Conversation, now: datetime
) -> None:
    """Record where an intake is answered and queue its receipt, in the intake's own
    transaction (the intake row must exist)."""
    await conn.execute(
        """
        INSERT INTO conversations (intake_id, channel, address, reference, started_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (intake_id) DO NOTHING
        """,
        intake_id,
        conversation.channel.value,
        conversation.address,
        conversation.reference,
        now,
    )
    receipt = Queued(derive_id(intake_id, "receipt"), intake_id, Kind.RECEIPT, conversation.receipt)
    await queue_replies(conn, [receipt], now=now)


async def queue_replies(
    conn: asyncpg.Connection, replies: Sequence[Queued], *, now: datetime
) -> None:
    """Queue replies, due now; a reply id queued before is left as it is."""
    await conn.executemany(
        """
        INSERT INTO replies (reply_id, intake_id, kind, body, params, queued_at, due_at)
        VALUES ($1, $2, $3, $4, $5, $6, $6)
        ON CONFLICT (reply_id) DO NOTHING
        """,
        [
            (r.reply_id, r.intake_id, r.kind.value, r.body, list(r.params or ()) or None, now)
            for r in replies
        ],
    )


def _notice_reply(notice: Notice, intake_id: UUID, reference: str) -> Queued:
    words = {"reference": reference, "agency": notice.agency, "text": notice.text}
    # One reply per notice and intake, whichever came first (the notice or the link).
    reply_id = derive_id(notice.notice_id, f"reply/{intake_id}")
    body, params = notice_text(notice.kind, **words), template_params(notice.kind, **words)
    return Queued(reply_id, intake_id, notice.kind, body, params)


async def record_notice(conn: asyncpg.Connection, notice: Notice, *, now: datetime) -> None:
    """Keep an agency's notice and queue it to every conversation of its incident."""
    await conn.execute(
        """
        INSERT INTO notices (notice_id, incident_id, kind, agency, text, noticed_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (notice_id) DO NOTHING
        """,
        notice.notice_id,
        notice.incident_id,
        notice.kind.value,
        notice.agency,
        notice.text,
        notice.noticed_at,
    )
    rows = await conn.fetch(
        """
        SELECT c.intake_id, c.reference
          FROM conversations c JOIN intakes i USING (intake_id)
         WHERE i.incident_id = $1
        """,
        notice.incident_id,
    )
    replies = [_notice_reply(notice, r["intake_id"], r["reference"]) for r in rows]
    await queue_replies(conn, replies, now=now)


async def queue_earlier_notices(
    conn: asyncpg.Connection, *, intake_id: UUID, incident_id: UUID, now: datetime
) -> None:
    """An intake joined its incident: queue to its conversation (if it has one) the
    notices the incident had already (the link may be read after the notice)."""
    reference = await conn.fetchval(
        "SELECT reference FROM conversations WHERE intake_id = $1", intake_id
    )
    if reference is None:
        return
    rows = await conn.fetch(
        "SELECT notice_id, incident_id, kind, agency, text, noticed_at FROM notices "
        "WHERE incident_id = $1 ORDER BY noticed_at, notice_id",
        incident_id,
    )
    notices = [
        Notice(
            notice_id=r["notice_id"],
            incident_id=r["incident_id"],
            kind=Kind(r["kind"]),
            agency=r["agency"],
            text=r["text"],
            noticed_at=r["noticed_at"],
        )
        for r in rows
    ]
    await queue_replies(conn, [_notice_reply(n, intake_id, reference) for n in notices], now=now)


async def take_due(
    conn: asyncpg.Connection, *, now: datetime, lease_until: datetime, limit: int
) -> list[Reply]:
    """Take up to `limit` replies due now, each counted as one more try and hidden from
    other senders until `lease_until` (a sender that dies mid-send leaves them to be tried
    again then). A conversation's replies go in order: none is taken while an earlier one
    of the same intake is still unsent."""
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT r.reply_id FROM replies r
             WHERE r.sent_at IS NULL AND r.failed_at IS NULL AND r.due_at <= $1
               AND NOT EXISTS (
                   SELECT 1 FROM replies e
                    WHERE e.intake_id = r.intake_id AND e.sent_at IS NULL
                      AND e.failed_at IS NULL
                      AND e.seq < r.seq)
             ORDER BY r.due_at, r.seq
             LIMIT $3
             FOR UPDATE SKIP LOCKED
        )
        UPDATE replies r SET attempts = r.attempts + 1, due_at = $2
          FROM due, conversations c
         WHERE r.reply_id = due.reply_id AND c.intake_id = r.intake_id
        RETURNING r.reply_id, r.intake_id, c.channel, c.address, r.kind, r.body, r.params,
                  r.attempts
        """,
        now,
        lease_until,
        limit,
    )
    return [
        Reply(
            reply_id=r["reply_id"],
            intake_id=r["intake_id"],
            channel=Channel(r["channel"]),
            address=r["address"],
            kind=Kind(r["kind"]),
            body=r["body"],
            params=tuple(r["params"]) if r["params"] is not None else None,
            attempts=r["attempts"],
        )
        for r in rows
    ]


async def mark_sent(
    conn: asyncpg.Connection | asyncpg.Pool, *, reply_id: UUID, now: datetime
) -> None:
    """The send API took the reply."""
    await conn.execute(
        "UPDATE replies SET sent_at = $2, last_error = NULL WHERE reply_id = $1", reply_id, now
    )


async def mark_retry(
    conn: asyncpg.Connection | asyncpg.Pool, *, reply_id: UUID, due_at: datetime, error: str
) -> None:
    """The try failed; the reply is due again at `due_at`."""
    await conn.execute(
        "UPDATE replies SET due_at = $2, last_error = $3 WHERE reply_id = $1",
        reply_id,
        due_at,
        error,
    )


async def mark_failed(
    conn: asyncpg.Connection | asyncpg.Pool, *, reply_id: UUID, now: datetime, error: str
) -> None:
    """The reply is given up (refused, or too many tries); it stays, with its last error."""
    await conn.execute(
        "UPDATE replies SET failed_at = $2, last_error = $3 WHERE reply_id = $1",
        reply_id,
        now,
        error,
    )
