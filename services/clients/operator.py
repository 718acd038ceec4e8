"""The operator's report client: every report is spooled to disk before it is sent.

A report is written to the spool (fsync'd, atomically renamed) first and removed only
after the broker has acknowledged it, so an unreachable broker, a crash or a killed
terminal never loses what a call-taker entered. What is left goes out by itself: a
running `siaga up` drains the spool every few seconds, and so does the next `siaga`
command. The spool holds callers' full numbers: only its owner can read it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.errors import KafkaConnectionError, KafkaError

from schemas.common import Caller, Location
from schemas.envelope import DecodeError, Event, decode_event, encode_event, new_event
from schemas.events import IntakeReceivedV1
from schemas.ids import derive_id
from schemas.vocabulary import Channel
from services.common.files import write_private
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


# Owner only, whatever the umask: a spooled report holds the caller's full number.
FOLDER_MODE = 0o700


def _private_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, FOLDER_MODE)  # also closes a folder an older version left open


class Spool:
    """A folder of reports not yet acknowledged by the broker, oldest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, event: Event) -> Path:
        """Write an event durably; a re-put of the same intake overwrites itself."""
        _private_folder(self.folder)
        stamp = event.envelope.time.strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"{stamp}-{event.id}.json"
        write_private(path, encode_event(event), durable=True)
        return path

    def set_aside(self, path: Path, *, reason: str) -> Path:
        """Move a file that is not a report (damaged, hand-edited) out of the way, so it
        cannot block the reports behind it; `bad/` keeps it for a person to look at."""
        bad = self.folder / "bad"
        _private_folder(bad)
        target = bad / path.name
        os.replace(path, target)
        write_private(target.with_suffix(".reason"), (reason + "\n").encode(), durable=True)
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


def _why(exc: BaseException, settings: CommonSettings, timeout_s: float) -> str:
    """Why the broker did not take the reports, in a few words for the call-taker."""
    try:
        where = settings.kafka_bootstrap()
    except NotConfigured:
        where = "the broker"
    if isinstance(exc, KafkaConnectionError):
        return f"cannot connect to {where}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} in {timeout_s:g} s"
    return f"{type(exc).__name__}: {exc}"


async def flush(settings: CommonSettings, spool: Spool, *, timeout_s: float = 10.0) -> Delivery:
    """Send every spooled report; those the broker did not take stay for next time."""
    files = spool.pending()
    if not files:
        return Delivery(sent=0, waiting=0)
    try:
        client = producer(settings, request_timeout_ms=int(timeout_s * 1000))
    except NotConfigured as exc:
        return Delivery(sent=0, waiting=len(files), error=str(exc))
    sent = left = 0  # left: sent by another drainer, or set aside
    try:
        await asyncio.wait_for(client.start(), timeout=timeout_s)
        for path in files:
            try:
                # The spool holds intakes: `report` builds no decoder of other events.
                event = decode_event(path.read_bytes(), expect=IntakeReceivedV1)
            except FileNotFoundError:  # another drainer (`siaga up`, a command) sent it
                left += 1
                continue
            except DecodeError as exc:
                spool.set_aside(path, reason=str(exc))
                left += 1
                continue
            await asyncio.wait_for(
                send_events(client, [Outgoing.of(event, settings.topics)]), timeout=timeout_s
            )
            # Sent twice by two drainers at once is harmless: the same event id and intake.
            path.unlink(missing_ok=True)
            sent += 1
    except (KafkaError, OSError, TimeoutError) as exc:
        waiting = len(files) - sent - left
        return Delivery(sent=sent, waiting=waiting, error=_why(exc, settings, timeout_s))
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
    settings: CommonSettings, intake: IntakeReceivedV1, *, timeout_s: float = 5.0
) -> Delivery:
    """Spool the intake, then send everything spooled. The wait is short: the report is
    safe in the spool and goes out by itself, and the call-taker is on the phone."""
    spool = Spool(settings.home.spool_dir)
    spool.put(intake_event(intake))
    return await flush(settings, spool, timeout_s=timeout_s)


async def drain_spool(
    settings: CommonSettings | None = None, *, timeout_s: float = 2.0
) -> Delivery:
    """Send what waits in the spool of this home, if anything (a command does this before
    its own work, so it costs nothing when the spool is empty)."""
    settings = settings or CommonSettings()
    return await flush(settings, Spool(settings.home.spool_dir), timeout_s=timeout_s)


async def keep_spool_drained(
    settings: CommonSettings,
    *,
    every_s: float = 2.0,
    say: Callable[[str], None] | None = None,
) -> None:
    """Drain the spool every `every_s` seconds until cancelled: a running `siaga up` sends
    what call-takers spooled while its broker was unreachable, without anyone asking."""
    spool = Spool(settings.home.spool_dir)
    while True:
        try:
            waiting = bool(spool.pending())
        except OSError:
            waiting = False  # an unreadable spool is told by the next `siaga report`
        if waiting:
            delivery = await flush(settings, spool, timeout_s=5.0)
            if delivery.sent and say is not None:
                say(f"spool       {delivery.sent} report(s) sent from {spool.folder}")
        await asyncio.sleep(every_s)
