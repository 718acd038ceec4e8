"""Dead letters: listed for the ops team, redriven after a fix and processed once; a
still-bad message goes back to the dead-letter topic, not round and round."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas import registry
from schemas.vocabulary import Channel
from services.clients.operator import intake_event, new_intake
from tests.conftest import Pipeline, eventually, siaga_cli

pytestmark = pytest.mark.integration


def _upcast_v2(data: dict[str, Any]) -> dict[str, Any]:
    """The fix deployed later: v2 called the text `message`."""
    data = dict(data)
    data["text"] = data.pop("message", "")
    return data


async def _dead_letters(pipeline: Pipeline) -> list[dict[str, Any]]:
    listed = await siaga_cli(pipeline.settings, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


async def test_a_redriven_event_is_processed_once_and_a_still_bad_one_returns(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    intake = new_intake(
        channel=Channel.CALL112, text="kebakaran rumah di Gringsing", phone="+6281300000042"
    )
    envelope = json.loads(intake_event(intake).envelope.model_dump_json())
    envelope["type"] = "siaga.intake.received.v2"  # a newer client than the stages know
    envelope["data"]["message"] = envelope["data"].pop("text")
    topic = pipeline.topics.intake_received
    client = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap())
    await client.start()
    try:
        await client.send_and_wait(topic, json.dumps(envelope).encode(), key=b"v2")
        await client.send_and_wait(topic, b"\xff\xfe garbage", key=b"bad", headers=[("h", b"\xff")])
    finally:
        await client.stop()

    async def listed(n: int) -> list[dict[str, Any]] | None:
        found = await _dead_letters(pipeline)
        return found if len(found) == n else None

    dead = await eventually(lambda: listed(2), what="two dead letters listed")
    by_kind = {d["reason"].split(":")[0]: d for d in dead}
    assert set(by_kind) == {"unknown_type", "not_json"}
    unknown = by_kind["unknown_type"]
    assert unknown["stage"] == "enricher" and unknown["redriven_at"] is None
    assert "siaga.intake.received.v2" in unknown["reason"] and "received.v2" in unknown["preview"]
    text = await siaga_cli(pipeline.settings, "dlq", "list")
    assert "unknown_type" in text.stdout and "open" in text.stdout

    # The fix: an upcaster for v2. Then the dead letter goes back and is processed, once.
    monkeypatch.setitem(
        registry.UPCASTERS, "siaga.intake.received.v2", ("siaga.intake.received.v1", _upcast_v2)
    )
    sent = await siaga_cli(pipeline.settings, "dlq", "redrive", "--id", unknown["event_id"])
    assert sent.returncode == 0, sent.stderr
    incident = await pipeline.incident_for_intake(intake.intake_id)
    assert incident.category == "fire" and incident.text == "kebakaran rumah di Gringsing"
    again = await siaga_cli(pipeline.settings, "dlq", "redrive", "--id", unknown["event_id"])
    assert again.returncode == 0, again.stderr
    await asyncio.sleep(2)  # give a second processing every chance to show up

    enriched = [
        e
        for e in await pipeline.events(pipeline.topics.intake_enriched)
        if e.envelope.subject == str(intake.intake_id)
    ]
    assert len(enriched) == 1
    assert await pipeline.fetchval("SELECT count(*) FROM enricher.callers") == 1
    assert await pipeline.fetchval("SELECT reports FROM enricher.callers") == 1
    assert await pipeline.fetchval("SELECT count(*) FROM readmodel.incidents") == 1

    # A still-bad message goes back to the dead-letter topic once, linked to the first.
    bad = by_kind["not_json"]
    back = await siaga_cli(pipeline.settings, "dlq", "redrive", "--id", bad["event_id"], "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["redriven"][0]["topic"] == topic
    dead = await eventually(lambda: listed(3), what="the still-bad message dead again")
    await asyncio.sleep(2)
    dead = await _dead_letters(pipeline)
    assert len(dead) == 3  # no loop
    newest = next(d for d in dead if d["event_id"] not in (bad["event_id"], unknown["event_id"]))
    assert newest["redrive_of"] == bad["event_id"] and newest["reason"].startswith("not_json")
    assert all(d["redriven_at"] is not None for d in dead if d is not newest)
    # its header bytes travelled whole through two dead letters and a redrive
    letters = [e.payload for e in await pipeline.events(pipeline.topics.deadletter)]
    assert any(("h", "/w==") in getattr(p, "original_headers", []) for p in letters)

    # --all takes only what is still open; a truncated original is refused
    everything = await siaga_cli(pipeline.settings, "dlq", "redrive", "--all", "--json")
    assert [r["dead_letter_id"] for r in json.loads(everything.stdout)["redriven"]] == [
        newest["event_id"]
    ]
    missing = await siaga_cli(pipeline.settings, "dlq", "redrive", "--id", "nope")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
