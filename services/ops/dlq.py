"""Dead letters: list them, and redrive their original messages to the source topic.

A redriven copy carries the same bytes (so the same envelope id) and a header naming the
dead letter. Stages that had processed the original find it in their inbox and skip it;
the stage that had failed on it never recorded it (the inbox row was rolled back with
the handler's savepoint, or the message never decoded), so it processes it now, once.
If it is still bad it becomes a new dead letter, linked to the first: a redrive is one
operator action, never a loop.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from schemas.envelope import DecodeError, decode_event, new_event
from schemas.events import DeadLetterRedrivenV1, DeadLetterV1
from schemas.ids import derive_id
from services.common.admin import log_ends, partitions_of, plain_consumer, read_range
from services.common.deadletter import REDRIVE_HEADER
from services.common.kafka import producer, send_events
from services.common.outbox import Outgoing
from services.common.settings import CommonSettings


class RedriveError(ValueError):
    """A redrive that cannot be done; the message says why."""


@dataclass(frozen=True)
class DeadLetterState:
    """Every dead letter on the topic, and the ids of those already redriven."""

    letters: dict[str, DeadLetterV1]
    redriven: set[str]

    def open(self) -> list[str]:
        """Ids of dead letters not redriven yet, oldest first."""
        return [
            i
            for i, dl in sorted(self.letters.items(), key=lambda x: x[1].dead_lettered_at)
            if i not in self.redriven
        ]


async def read_dead_letters(settings: CommonSettings) -> DeadLetterState:
    """The dead-letter topic, read from the start to its current end."""
    letters: dict[str, DeadLetterV1] = {}
    redriven: set[str] = set()
    async with plain_consumer(settings) as consumer:
        partitions = await partitions_of(consumer, [settings.topics.deadletter])
        ends = await log_ends(consumer, partitions)
        async for record in read_range(consumer, dict.fromkeys(partitions, 0), ends):
            try:
                event = decode_event(record.value)
            except DecodeError:
                continue
            if isinstance(event.payload, DeadLetterV1):
                letters[event.id] = event.payload
            elif isinstance(event.payload, DeadLetterRedrivenV1):
                redriven.add(event.payload.dead_letter_id)
    return DeadLetterState(letters, redriven)


@dataclass(frozen=True)
class Redriven:
    """One dead letter sent back: where its copy went."""

    dead_letter_id: str
    topic: str
    partition: int
    offset: int


def _b64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


async def _send_back(
    client: AIOKafkaProducer,
    settings: CommonSettings,
    ident: str,
    letter: DeadLetterV1,
    operator: str | None,
) -> Redriven:
    headers = [(k, base64.b64decode(v)) for k, v in letter.original_headers if k != REDRIVE_HEADER]
    headers.append((REDRIVE_HEADER, ident.encode()))
    key = _b64(letter.original_key_b64)
    sent = await client.send_and_wait(
        letter.source_topic, base64.b64decode(letter.original_value_b64), key=key, headers=headers
    )
    done = Redriven(ident, letter.source_topic, sent.partition, sent.offset)
    note = DeadLetterRedrivenV1(
        dead_letter_id=ident,
        stage=letter.stage,
        source_topic=letter.source_topic,
        partition=sent.partition,
        offset=sent.offset,
        redriven_at=datetime.now(UTC),
        operator=operator,
    )
    event = new_event(
        note,
        id=derive_id(f"{sent.topic}:{sent.partition}:{sent.offset}", "redriven"),
        source="/siaga/ops",
    )
    await send_events(client, [Outgoing.of(event, settings.topics, key=key)])
    return done


async def redrive(
    settings: CommonSettings,
    *,
    ids: list[str] | None = None,
    all_open: bool = False,
    operator: str | None = None,
) -> tuple[list[Redriven], list[str]]:
    """Send dead letters back to their source topics: the given ids, or every open one.
    Returns what was sent and, for `all_open`, why some were left (truncated originals)."""
    state = await read_dead_letters(settings)
    skipped: list[str] = []
    if all_open:
        chosen = []
        for ident in state.open():
            if state.letters[ident].original_truncated:
                skipped.append(f"{ident}: original was truncated, cannot be redriven")
            else:
                chosen.append(ident)
    else:
        chosen = list(ids or [])
        for ident in chosen:
            letter = state.letters.get(ident)
            if letter is None:
                raise RedriveError(f"no dead letter with id {ident!r}")
            if letter.original_truncated:
                raise RedriveError(
                    f"dead letter {ident} kept only the first bytes of a {letter.original_size}-byte original; it cannot be redriven"
                )
            if letter.source_topic not in settings.topics.all():
                raise RedriveError(
                    f"dead letter {ident} came from {letter.source_topic}, not a topic of this deployment"
                )
    done: list[Redriven] = []
    if not chosen:
        return done, skipped
    client = producer(settings)
    await client.start()
    try:
        for ident in chosen:
            done.append(await _send_back(client, settings, ident, state.letters[ident], operator))
    finally:
        await client.stop()
    return done, skipped
