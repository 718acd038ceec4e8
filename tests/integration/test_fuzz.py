"""Fuzz: well over 1,000 malformed or hostile messages on every input topic; each one is
dead-lettered once, with a reason, while good reports keep flowing."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas.events import DeadLetterV1
from schemas.vocabulary import Channel
from services.clients.operator import intake_event, new_intake
from services.common.outbox import Outgoing
from tests.conftest import Pipeline, progressing

pytestmark = pytest.mark.integration

HOSTILE = 1200


def _envelope(_: random.Random) -> dict[str, Any]:
    good = intake_event(new_intake(channel=Channel.SMS, text="jalan rusak"))
    return json.loads(good.envelope.model_dump_json())


def _deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _hostile(rng: random.Random, i: int) -> bytes | None:
    """One bad message; the kinds rotate so every kind is sent many times."""
    kind = i % 12
    if kind == 0:  # random bytes
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600)))
    if kind == 1:  # JSON, but not an event
        return json.dumps(rng.choice([1, "x", None, [1, 2], {"hello": "world"}, 3.5])).encode()
    if kind == 2:  # an intake with fields of the wrong type
        env = _envelope(rng)
        field = rng.choice(["intake_id", "channel", "received_at", "caller", "location", "text"])
        env["data"][field] = rng.choice([12345, ["a"], {"x": 1}, True, "not-a-uuid"])
        if field == "text":
            env["data"][field] = 42
        return json.dumps(env).encode()
    if kind == 3:  # a huge string field
        env = _envelope(rng)
        env["data"]["text"] = "A" * rng.randint(4_001, 60_000)
        return json.dumps(env).encode()
    if kind == 4:  # deep nesting
        return _deep(rng.choice([200, 5_000, 50_000]))
    if kind == 5:  # unknown version or type
        env = _envelope(rng)
        env["type"] = rng.choice(
            ["siaga.intake.received.v9", "siaga.unknown.v1", "../../etc/passwd", ""]
        )
        return json.dumps(env).encode()
    if kind == 6:  # an envelope with an attribute it does not have
        env = _envelope(rng)
        env["evil"] = "<script>alert(1)</script>"
        return json.dumps(env).encode()
    if kind == 7:  # NUL and a bad phone
        env = _envelope(rng)
        env["data"]["text"] = "jalan\u0000rusak" if rng.random() < 0.5 else "ok"
        if env["data"]["text"] == "ok":
            env["data"]["caller"] = {"phone": "'; DROP TABLE intakes; --", "name": None}
        return json.dumps(env).encode()
    if kind == 8:  # invalid UTF-8 inside something JSON-like
        return b'{"specversion":"1.0","id":"\xff\xfe","type":"siaga.intake.received.v1"}'
    if kind == 9:  # no value at all (a tombstone) or an empty one
        return None if rng.random() < 0.5 else b""
    if kind == 10:  # a missing envelope attribute
        env = _envelope(rng)
        del env[rng.choice(["id", "source", "type", "time", "data"])]
        return json.dumps(env).encode()
    # kind 11: numbers out of range and a time without a zone
    env = _envelope(rng)
    env["data"]["location"] = {"lat": 1e308, "lon": -999, "accuracy_m": -1}
    env["time"] = "2026-11-23T10:00:00"
    return json.dumps(env).encode()


def _wrong_topic(pipeline: Pipeline) -> tuple[str, bytes]:
    """A real, valid event on a topic where it does not belong."""
    event = intake_event(new_intake(channel=Channel.SMS, text="jalan rusak di Subah"))
    topic = random.choice(
        [
            pipeline.topics.incident_events,
            pipeline.topics.unit_status,
            pipeline.topics.dispatch_orders,
        ]
    )
    return topic, Outgoing.of(event, pipeline.topics).event.envelope.model_dump_json().encode()


@pytest.mark.timeout(900)  # a backstop: `progressing` fails first when nothing moves
async def test_every_hostile_message_is_dead_lettered_with_a_reason_and_good_ones_flow(
    pipeline: Pipeline,
) -> None:
    rng = random.Random(20261123)
    t = pipeline.topics
    inputs = [
        t.intake_received,
        t.intake_enriched,
        t.incident_events,
        t.dispatch_orders,
        t.unit_status,
    ]
    good = [
        new_intake(channel=Channel.CALL112, text=f"kebakaran rumah di {place}")
        for place in ("Batang", "Subah", "Limpung", "Gringsing", "Bandar", "Blado") * 5
    ]
    client = AIOKafkaProducer(
        bootstrap_servers=pipeline.settings.kafka_bootstrap(), max_request_size=2_000_000
    )
    await client.start()
    bad_positions: set[tuple[str, int, int]] = set()
    good_sends: set[int] = set()
    try:
        pending = []
        for i in range(HOSTILE):
            if i % 40 == 0:
                topic, value = _wrong_topic(pipeline)
            else:
                topic, value = rng.choice(inputs), _hostile(rng, i)
            headers = [("h", bytes([0xFF, rng.getrandbits(8)]))] if i % 7 == 0 else []
            if i % 101 == 0:  # more headers, and bigger, than a dead letter keeps
                headers = [(f"x{j}", b"v" * 20_000) for j in range(80)]
            key = b"k" * 20_000 if i % 97 == 0 else str(i).encode()
            pending.append(await client.send(topic, value, key=key, headers=headers))
            if i % 40 == 20 and good:  # a good report every 40 hostile ones
                intake = good.pop()
                pending.append(
                    await client.send(
                        t.intake_received,
                        Outgoing.of(intake_event(intake), t)
                        .event.envelope.model_dump_json()
                        .encode(),
                        key=str(intake.intake_id).encode(),
                    )
                )
                good_sends.add(len(pending) - 1)
        sent = [await f for f in pending]
        bad_positions = {
            (meta.topic, meta.partition, meta.offset)
            for i, meta in enumerate(sent)
            if i not in good_sends
        }
        huge = await client.send_and_wait(t.intake_received, b"{" + b" " * 300_000 + b"}")
        bad_positions.add((huge.topic, huge.partition, huge.offset))
    finally:
        await client.stop()
    assert len(bad_positions) >= 1000

    async def dead_letters() -> int:
        return int(await pipeline.fetchval("SELECT count(*) FROM readmodel.dead_letters"))

    # However slow the machine: a failure is the count standing still, not a clock.
    await progressing(dead_letters, target=len(bad_positions), what="dead letters")
    rows = await pipeline.fetch(
        "SELECT stage, reason, source_topic, source_partition, source_offset FROM readmodel.dead_letters"
    )
    seen = Counter((r["source_topic"], r["source_partition"], r["source_offset"]) for r in rows)
    assert set(seen) == bad_positions  # every hostile message, and nothing else
    assert max(seen.values()) == 1  # each one once
    kinds = Counter(r["reason"].split(":")[0] for r in rows)
    assert all(r["reason"].strip() for r in rows)
    assert {
        "not_json",
        "bad_envelope",
        "bad_payload",
        "unknown_type",
        "empty",
        "oversize",
        "wrong_topic",
    } <= set(kinds), kinds
    print(f"\nfuzz: {len(rows)} dead letters by kind: {dict(kinds)}")

    # good reports flowed in between: every one became an incident
    async def through() -> int:
        # every fire report reached an incident (repeat reports of one place are linked)
        return int(
            await pipeline.fetchval(
                "SELECT count(*) FROM readmodel.intakes i JOIN readmodel.incidents c"
                " USING (incident_id) WHERE c.category = 'fire'"
            )
        )

    assert not good
    assert await progressing(through, target=30, what="good reports through") == 30
    dl_events: list[Any] = []

    async def on_the_topic() -> int:
        # Read again until all are there: one read of the topic to its end once found 1,200
        # of the 1,201 the projector had already read (a CI run on the embedded broker).
        dl_events[:] = [
            e for e in await pipeline.events(t.deadletter) if isinstance(e.payload, DeadLetterV1)
        ]
        return len({e.id for e in dl_events})

    assert await progressing(
        on_the_topic, target=len(bad_positions), what="dead letters on the topic"
    ) == len(bad_positions)
    assert uuid.UUID(dl_events[0].id)
