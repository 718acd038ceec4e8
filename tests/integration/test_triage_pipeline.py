"""Triage on the real broker and PostgreSQL: duplicate calls, prank numbers, the review queue."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from schemas.events import (
    CallLinkedV1,
    IncidentClassifiedV1,
    IncidentOpenedV1,
    IntakeEnrichedV1,
    UnitDispatchedV1,
)
from schemas.vocabulary import Channel, UnitType
from services.clients.operator import new_intake, submit
from services.dispatcher.fleet import UnitSpec
from tests.conftest import TEST_FLEET, Pipeline, eventually, siaga_cli

pytestmark = pytest.mark.integration

PRANKSTER = "+6281399990001"


@pytest.fixture
def fleet() -> list[UnitSpec]:
    """Two fire trucks, so a second incident about one fire would really get a second one."""
    return [
        *TEST_FLEET,
        UnitSpec("FIRE-LIMPUNG", UnitType.FIRE_TRUCK, "Damkar", "Pos Damkar Limpung", "Limpung"),
    ]


async def test_three_calls_about_one_fire_give_one_incident_and_one_dispatch(
    pipeline: Pipeline,
) -> None:
    await pipeline.start("triage")  # a second instance: the calls may land on either
    calls = [
        new_intake(
            channel=Channel.CALL112,
            text="omah kobong ning Tumbrep, geni gedhe, tulung damkar",
            phone="+6281311110001",
        ),
        new_intake(
            channel=Channel.CALL112,
            text="kebakaran rumah di desa Tumbrep kecamatan Bandar, asap hitam tinggi",
            phone="+6281311110002",
        ),
        new_intake(
            channel=Channel.WHATSAPP,
            text="min ada rumah terbakar di Tumbrep Bandar, apinya besar",
            phone="+6281311110003",
        ),
    ]
    await pipeline.publish(calls)

    async def all_triaged() -> bool:
        return bool(await pipeline.fetchval("SELECT count(*) = 3 FROM triage.intakes"))

    await eventually(all_triaged, timeout=30, what="three calls triaged")
    incident = await pipeline.incident_for_intake(calls[0].intake_id, with_units=1)
    await asyncio.sleep(2)  # give a second incident or dispatch every chance to show up

    events = await pipeline.events(pipeline.topics.incident_events)
    opened = [e.payload for e in events if isinstance(e.payload, IncidentOpenedV1)]
    linked = [e.payload for e in events if isinstance(e.payload, CallLinkedV1)]
    assert len(opened) == 1
    assert len(linked) == 2
    assert {link.incident_id for link in linked} == {opened[0].incident_id}
    assert all("same fire" in link.reason for link in linked)
    orders = [
        e.payload
        for e in await pipeline.events(pipeline.topics.dispatch_orders)
        if isinstance(e.payload, UnitDispatchedV1)
    ]
    # One run card's worth, sent once: a P1 fire gets two trucks and an ambulance, and the
    # fleet has exactly two trucks, so the linked calls could not have been sent a third.
    assert {o.incident_id for o in orders} == {opened[0].incident_id}
    assert sorted(o.unit_type.value for o in orders) == ["ambulance", "fire_truck", "fire_truck"]
    assert len({o.unit_id for o in orders}) == len(orders)
    assert await pipeline.fetchval("SELECT count(*) FROM dispatcher.pending") == 0

    # Every call shows the same incident in the read model.
    for call in calls:
        shown = await pipeline.incident_for_intake(call.intake_id, with_units=1)
        assert shown.incident_id == incident.incident_id
    shown = await pipeline.incident_for_intake(calls[0].intake_id, with_units=1)
    assert sorted(shown.intake_ids) == sorted(c.intake_id for c in calls)
    assert await pipeline.fetchval("SELECT count(*) FROM readmodel.incidents") == 1


async def test_a_known_prank_number_reporting_people_trapped_in_a_fire_is_still_p1(
    pipeline: Pipeline,
) -> None:
    pranks = [
        new_intake(
            channel=Channel.CALL112,
            text=text,
            phone=PRANKSTER,
        )
        for text in (
            "halo pak polisi, hati saya dicuri mantan wkwkwk",
            "ada kebakaran di hatiku pak, cuma bercanda",
            "mau pesan pizza dua ya mas hahaha",
        )
    ]
    for call in pranks:
        await submit(pipeline.settings, call)
        await pipeline.incident_for_intake(call.intake_id, with_units=0)

    async def flagged() -> bool:
        return bool(
            await pipeline.fetchval(
                "SELECT pranks >= 3 FROM enricher.callers WHERE phone = $1", PRANKSTER
            )
        )

    await eventually(flagged, what="three pranks counted against the number")
    assert (
        await pipeline.fetchval("SELECT count(*) FROM readmodel.incidents WHERE category = 'prank'")
        == 3
    )  # pranks are incidents too, never dropped

    # The same number, calm: an incident still, at a lower priority, no truck.
    calm = new_intake(channel=Channel.CALL112, text="ada kebakaran di Subah", phone=PRANKSTER)
    await submit(pipeline.settings, calm)
    lowered = await pipeline.incident_for_intake(calm.intake_id, with_units=0)
    assert (lowered.category, lowered.priority) == ("fire", "P3")
    assert "flagged" in lowered.explanation

    # The same number with a life at risk: P1, and a fire truck goes.
    risky = new_intake(
        channel=Channel.CALL112,
        text="ada kebakaran, orang terjebak",
        phone=PRANKSTER,
        place_hint="Limpung",
    )
    await submit(pipeline.settings, risky)
    incident = await pipeline.incident_for_intake(risky.intake_id, with_units=1)
    assert (incident.category, incident.priority) == ("fire", "P1")
    assert incident.units[0].unit_type == "fire_truck"
    enriched = [
        e.payload
        for e in await pipeline.events(pipeline.topics.intake_enriched)
        if isinstance(e.payload, IntakeEnrichedV1) and e.payload.intake.intake_id == risky.intake_id
    ]
    assert enriched[0].signals.prank_flagged and enriched[0].signals.prior_pranks >= 3


async def test_an_unclear_report_waits_in_the_review_queue_and_nothing_is_dispatched(
    pipeline: Pipeline,
) -> None:
    unclear = new_intake(
        channel=Channel.CALL112, text="pak ada itu di sana", phone="+6281322220001"
    )
    await submit(pipeline.settings, unclear)
    incident = await pipeline.incident_for_intake(unclear.intake_id, with_units=0)
    assert incident.needs_review is True

    async def queued() -> list | None:
        rows = await pipeline.fetch("SELECT incident_id FROM readmodel.review_queue")
        return rows or None

    rows = await eventually(queued, what="the review queue")
    assert [r["incident_id"] for r in rows] == [incident.incident_id]
    classified = [
        e.payload
        for e in await pipeline.events(pipeline.topics.incident_events)
        if isinstance(e.payload, IncidentClassifiedV1)
    ]
    assert classified[0].needs_review and classified[0].explanation
    await asyncio.sleep(2)  # give a dispatch order every chance to show up
    assert await pipeline.events(pipeline.topics.dispatch_orders) == []
    assert await pipeline.fetchval("SELECT count(*) FROM dispatcher.pending") == 0

    # The call-taker's view of the queue.
    shown = await _siaga(pipeline, "incident", "list", "--review", "--json")
    assert [row["incident_id"] for row in shown] == [str(incident.incident_id)]
    assert shown[0]["explanation"] and shown[0]["text"] == "pak ada itu di sana"


async def _siaga(pipeline: Pipeline, *args: str) -> Any:
    """Run the `siaga` command against this pipeline (its database, roles and passwords);
    its JSON output."""
    done = await siaga_cli(pipeline.settings, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
