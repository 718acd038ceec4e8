"""The operator's report client: every report is spooled to disk before it is sent.

A report is written to the spool (fsync'd, atomically renamed) first and removed only
after the broker has acknowledged it, so an unreachable broker, a crash or a killed
terminal never loses what a call-taker entered; the next run sends what is left.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.errors import KafkaError

from schemas.common import Caller, Location
from schemas.envelope import DecodeError, Event, decode_event, encode_event, new_event
from schemas.events import IntakeReceivedV1
from schemas.ids import derive_id
from schemas.vocabulary import Channel
from services.common.kafka import producer, send_events
from services.common.outbox import Outgoing
from services.common.settings import CommonSettings, NotConfigured


def intake_event(intake: IntakeReceivedV1, *, source: str = "/siaga/operator") -> Event:
    """The CloudEvent for an intake; the same intake always gives the same event id."""
    return new_event(
        intake,
        id=derive_id(intake.intake_id, "received"),
        source=source,
        time=intake.received_at,
        correlationid=str(intake.intake_id),
    )


def new_intake(
    *,
    channel: Channel,
    text: str,
    phone: str | None = None,
    name: str | None = None,
    place_hint: str | None = None,
    location: Location | None = None,
    operator_id: str | None = None,
    intake_id: uuid.UUID | None = None,
) -> IntakeReceivedV1:
    """An intake as a call-taker enters it, received now."""
    return IntakeReceivedV1(
        intake_id=intake_id or uuid.uuid4(),
        channel=channel,
        received_at=datetime.now(UTC),
        caller=Caller(phone=phone, name=name),
        text=text,
        place_hint=place_hint,
        location=location,
        operator_id=operator_id,
    )


class Spool:
    """A folder of reports not yet acknowledged by the broker, oldest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, event: Event) -> Path:
        """Write an event durably; a re-put of the same intake overwrites itself."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = event.envelope.time.strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"{stamp}-{event.id}.json"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(encode_event(event))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return path

    def set_aside(self, path: Path, *, reason: str) -> Path:
        """Move a file that is not a report (damaged, hand-edited) out of the way, so it
        cannot block the reports behind it; `bad/` keeps it for a person to look at."""
        bad = self.folder / "bad"
        bad.mkdir(exist_ok=True)
        target = bad / path.name
        os.replace(path, target)
        target.with_suffix(".reason").write_text(reason + "\n")
        return target

    def pending(self) -> list[Path]:
        """Spooled files, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.json"))


@dataclass(frozen=True)
class Delivery:
    """What became of a submission: how many spooled reports went out, how many wait."""

    sent: int
    waiting: int
    error: str | None = None


async def flush(settings: CommonSettings, spool: Spool, *, timeout_s: float = 10.0) -> Delivery:
    """Send every spooled report; those the broker did not take stay for next time."""
    files = spool.pending()
    if not files:
        return Delivery(sent=0, waiting=0)
    try:
        client = producer(settings, request_timeout_ms=int(timeout_s * 1000))
    except NotConfigured as exc:
        return Delivery(sent=0, waiting=len(files), error=str(exc))
    sent = 0
    try:
        await asyncio.wait_for(client.start(), timeout=timeout_s)
        for path in files:
            try:
                event = decode_event(path.read_bytes())
            except DecodeError as exc:
                spool.set_aside(path, reason=str(exc))
                continue
            await asyncio.wait_for(
                send_events(client, [Outgoing.of(event, settings.topics)]), timeout=timeout_s
            )
            path.unlink()
            sent += 1
    except (KafkaError, OSError, TimeoutError) as exc:
        return Delivery(sent=sent, waiting=len(files) - sent, error=f"{type(exc).__name__}: {exc}")
    finally:
        await client.stop()
    return Delivery(sent=sent, waiting=0)


async def flush_until(
    settings: CommonSettings, spool: Spool, *, wait_s: float, timeout_s: float = 5.0
) -> Delivery:
    """Flush, and while reports wait because the broker is unreachable, try again with
    backoff for up to `wait_s` seconds (a desk client waiting for the network)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    backoff = 0.5
    sent = 0
    while True:
        delivery = await flush(settings, spool, timeout_s=timeout_s)
        sent += delivery.sent
        if not delivery.waiting or loop.time() + backoff > deadline:
            return Delivery(sent=sent, waiting=delivery.waiting, error=delivery.error)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 5.0)


async def submit(
    settings: CommonSettings, intake: IntakeReceivedV1, *, timeout_s: float = 10.0
) -> Delivery:
    """Spool the intake, then send everything spooled."""
    spool = Spool(settings.home.home / "spool")
    spool.put(intake_event(intake))
    return await flush(settings, spool, timeout_s=timeout_s)
