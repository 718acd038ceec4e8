"""The gateway's reply sender: sends the replies due through the channels' send APIs, in
the background, so a send API that is down never holds up or loses an intake.

Replies are taken from `gateway.replies` in a short transaction of their own (each hidden
from other senders for a lease) and sent outside it; a reply is sent at least once (a
sender dying between the send and its mark sends it again after the lease). A failed try
is retried with a doubling wait; a reply refused by the API, or failing `max_attempts`
times, is given up: logged, counted, and kept with its last error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import asyncpg

from services.common.db import is_transient
from services.common.health import StageMetrics
from services.common.logging import get_logger, mask_phone, mask_phones_in
from services.gateway.conversations import Reply, mark_failed, mark_retry, mark_sent, take_due
from services.gateway.replies import (
    NotConfigured,
    Outbound,
    Outcome,
    outcome,
    request_for,
    retry_delay,
)
from services.gateway.settings import RepliesSettings, SmsSettings, WhatsAppSettings

log = get_logger("gateway.replies")


async def deliver(session: aiohttp.ClientSession, request: Outbound) -> tuple[int | None, str]:
    """POST one request; its status (None when nothing answered) and the start of what the
    API said."""
    try:
        async with session.post(
            request.url, headers=request.headers, json=request.json, data=request.form
        ) as response:
            said = (await response.text(errors="replace"))[:300]
            return response.status, said
    except (aiohttp.ClientError, TimeoutError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


@dataclass
class ReplySender:
    """Sends the replies due, every `settings.poll_s` or as soon as woken."""

    pool: asyncpg.Pool
    session: aiohttp.ClientSession
    whatsapp: WhatsAppSettings
    sms: SmsSettings
    settings: RepliesSettings
    clock: Callable[[], datetime]
    metrics: StageMetrics | None = None
    _woken: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """A reply was queued: look now rather than at the next tick."""
        self._woken.set()

    async def run(self) -> None:
        """Send what is due, forever; a database failure is logged and tried next tick."""
        while True:
            try:
                taken = await self.send_due()
            except Exception as exc:
                level = log.warning if is_transient(exc) else log.error
                level("replies not sent this tick", error=f"{type(exc).__name__}: {exc}")
                taken = 0
            if taken >= self.settings.batch:
                continue  # more are waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout=self.settings.poll_s)
            self._woken.clear()

    async def send_due(self) -> int:
        """Send the replies due now, at once; how many were taken."""
        now = self.clock()
        lease = timedelta(seconds=self.settings.timeout_s * 2 + 30)
        async with self.pool.acquire() as conn, conn.transaction():
            replies = await take_due(
                conn, now=now, lease_until=now + lease, limit=self.settings.batch
            )
        results = await asyncio.gather(*(self.send(r) for r in replies), return_exceptions=True)
        for reply, result in zip(replies, results, strict=True):
            if isinstance(result, Exception):  # not marked: tried again when its lease ends
                log.warning(
                    "reply's outcome not recorded",
                    reply_id=str(reply.reply_id),
                    error=f"{type(result).__name__}: {result}",
                )
        return len(replies)

    async def send(self, reply: Reply) -> Outcome:
        """Try one reply and record how it went."""
        try:
            request = request_for(
                reply.channel,
                whatsapp=self.whatsapp,
                sms=self.sms,
                to=reply.address,
                body=reply.body,
                params=reply.params,
            )
        except NotConfigured as exc:
            status, said = None, str(exc)
        else:
            status, said = await deliver(self.session, request)
        result = outcome(status)
        error = (
            None if result is Outcome.SENT else mask_phones_in(f"{status or 'no answer'}: {said}")
        )
        now = self.clock()
        if result is Outcome.SENT:
            await mark_sent(self.pool, reply_id=reply.reply_id, now=now)
            log.info("reply sent", **self._about(reply))
        elif result is Outcome.RETRY and reply.attempts < self.settings.max_attempts:
            wait = retry_delay(
                reply.attempts, base_s=self.settings.backoff_s, max_s=self.settings.backoff_max_s
            )
            due = now + timedelta(seconds=wait)
            await mark_retry(self.pool, reply_id=reply.reply_id, due_at=due, error=error or "")
            log.warning(
                "reply not sent, will retry", retry_in_s=wait, error=error, **self._about(reply)
            )
        else:
            await mark_failed(self.pool, reply_id=reply.reply_id, now=now, error=error or "")
            if self.metrics is not None:
                self.metrics.error("reply_failed")
            log.error("reply given up", outcome=result.value, error=error, **self._about(reply))
        return result

    @staticmethod
    def _about(reply: Reply) -> dict[str, object]:
        return {
            "reply_id": str(reply.reply_id),
            "intake_id": str(reply.intake_id),
            "channel": reply.channel.value,
            "to": mask_phone(reply.address),
            "kind": reply.kind.value,
            "attempt": reply.attempts,
        }


@contextlib.asynccontextmanager
async def reply_sender(
    pool: asyncpg.Pool,
    *,
    whatsapp: WhatsAppSettings,
    sms: SmsSettings,
    settings: RepliesSettings,
    clock: Callable[[], datetime],
    metrics: StageMetrics | None = None,
) -> AsyncIterator[ReplySender]:
    """A reply sender running in the background until the context exits."""
    timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        sender = ReplySender(pool, session, whatsapp, sms, settings, clock, metrics)
        task = asyncio.create_task(sender.run(), name="gateway-replies")
        try:
            yield sender
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
