"""`siaga incident log ID`: every event of one incident, in order, across topics, from the log.

An event belongs to the incident when it names it (subject or payload `incident_id`), when
it is about one of its intakes (the intakes come from its IncidentOpened and CallLinked
events), or when its `correlationid` is one of those intakes. Dead letters belong when
their original message does. Positions come from `offsets_for_times`, which both brokers
answer correctly, so `since` can skip the old part of a long log.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord

from schemas.envelope import DecodeError, Event, decode_event
from schemas.events import CallLinkedV1, DeadLetterV1, IncidentOpenedV1
from services.common.admin import log_ends, offsets_at, partitions_of, plain_consumer, read_range
from services.common.settings import CommonSettings


@dataclass(frozen=True)
class LoggedEvent:
    """One event of the incident and where it is in the log."""

    event: Event
    topic: str
    partition: int
    offset: int
    timestamp_ms: int

    def as_json(self) -> dict[str, Any]:
        """Position and the whole envelope."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "event": self.event.envelope.model_dump(mode="json"),
        }


async def _records(
    settings: CommonSettings, topics: list[str], since_ms: int
) -> list[tuple[ConsumerRecord[bytes, bytes], Event]]:
    """Every decodable record of `topics` from `since_ms` (0: the start) to the end."""
    out: list[tuple[ConsumerRecord[bytes, bytes], Event]] = []
    async with plain_consumer(settings) as consumer:
        partitions = await partitions_of(consumer, topics)
        ends = await log_ends(consumer, partitions)
        starts = (
            await offsets_at(consumer, partitions, since_ms=since_ms, ends=ends)
            if since_ms
            else dict.fromkeys(partitions, 0)
        )
        async for record in read_range(consumer, starts, ends):
            try:
                out.append((record, decode_event(record.value)))
            except DecodeError:
                continue
    return out


def _incident_of(payload: Any) -> str | None:
    value = getattr(payload, "incident_id", None)
    return None if value is None else str(value)


def _original(letter: DeadLetterV1) -> Event | None:
    try:
        return decode_event(base64.b64decode(letter.original_value_b64))
    except (DecodeError, ValueError):
        return None


async def incident_log(
    settings: CommonSettings, ident: str, *, since_ms: int = 0
) -> list[LoggedEvent]:
    """The incident's events (by incident id or any of its intake ids), in time order."""
    key = str(uuid.UUID(ident))
    found = await _records(settings, settings.topics.all(), since_ms)
    incident: str | None = None
    intakes: set[str] = set()
    for _, event in found:
        p = event.payload
        if isinstance(p, IncidentOpenedV1 | CallLinkedV1) and key in (
            str(p.incident_id),
            str(p.intake_id),
        ):
            incident = str(p.incident_id)
    if incident is None:
        incident = (
            key  # an incident id with no opening event in range, or an intake not triaged yet
        )
    for _, event in found:
        p = event.payload
        if isinstance(p, IncidentOpenedV1 | CallLinkedV1) and str(p.incident_id) == incident:
            intakes.add(str(p.intake_id))
    if key != incident:
        intakes.add(key)

    def belongs(event: Event) -> bool:
        """The event is about the incident or one of its intakes."""
        envelope = event.envelope
        if envelope.subject in intakes or envelope.subject == incident:
            return True
        if _incident_of(event.payload) == incident or envelope.correlationid in intakes:
            return True
        if isinstance(event.payload, DeadLetterV1):
            original = _original(event.payload)
            return original is not None and belongs(original)
        return False

    events = [
        LoggedEvent(event, record.topic, record.partition, record.offset, record.timestamp)
        for record, event in found
        if belongs(event)
    ]
    events.sort(
        key=lambda e: (e.event.envelope.time, e.timestamp_ms, e.topic, e.partition, e.offset)
    )
    return events
