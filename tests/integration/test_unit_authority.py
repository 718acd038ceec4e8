"""One truth about units, on the real broker and database: a unit's report is checked once,
by the dispatcher, and a refused one is a dead letter that changes nothing in any stage;
times from a broken clock are refused or corrected before they reach a timer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.commands import CancelIncidentV1
from schemas.envelope import encode_event, new_event
from schemas.events import DeadLetterV1, UnitStatusReportedV1
from schemas.vocabulary import Channel, UnitStatus
from services.clients.field_unit import status_event
from services.clients.operator import intake_event, new_intake, submit
from tests.conftest import TEST_FLEET, Pipeline, eventually, siaga_cli


def _report(
    unit: str, status: UnitStatus, incident: Any, *, at: datetime | None = None
) -> UnitStatusReportedV1:
    return UnitStatusReportedV1(
        unit_id=unit,
        status=status,
        incident_id=incident,
        reported_at=at or datetime.now(UTC),
    )


async def _send_raw(pipeline: Pipeline, topic: str, key: str, value: bytes) -> None:
    client = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap())
    await client.start()
    try:
        await client.send_and_wait(topic, value, key=key.encode())
    finally:
        await client.stop()


def _with_time(event: Any, field: str, when: str) -> bytes:
    """The event's bytes with one payload time replaced, as a client with a broken clock
    (or an attacker) would send them."""
    document = json.loads(encode_event(event))
    document["data"][field] = when
    return json.dumps(document).encode()


async def _dead_letters(pipeline: Pipeline, count: int) -> list[DeadLetterV1]:
    async def enough() -> list[DeadLetterV1] | None:
        found = [
            e.payload
            for e in await pipeline.events(pipeline.topics.deadletter)
            if isinstance(e.payload, DeadLetterV1)
        ]
        return found if len(found) >= count else None

    return await eventually(enough, timeout=30, what=f"{count} dead letters")


async def test_a_refused_unit_report_changes_nothing_anywhere(pipeline: Pipeline) -> None:
    """A made-up unit, a unit with no order on the incident, a report naming a random
    incident, one from the future and one dated 9999, and a cancel of an incident nobody
    opened: each is one dead letter with its reason, and the dispatcher, the tracker and
    the read model are as they were. A report that passes still moves the incident."""
    intake = new_intake(
        channel=Channel.PSC119, text="bapak saya pingsan tidak sadar", place_hint="Limpung"
    )
    await submit(pipeline.settings, intake)
    found = await pipeline.incident_for_intake(intake.intake_id)
    incident = found.incident_id
    sent = found.units[0].unit_id
    phantom = uuid.uuid4()
    future = datetime.now(UTC) + timedelta(hours=2)
    bad = [
        _report("AMB-TYPO-2", UnitStatus.EN_ROUTE, incident),
        _report("AMB-TYPO-2", UnitStatus.ON_SCENE, incident),
        _report("AMB-TYPO-2", UnitStatus.AVAILABLE, incident),
        _report("FIRE-BATANG", UnitStatus.ON_SCENE, incident),  # no order on it
        _report("POL-BATANG", UnitStatus.EN_ROUTE, phantom),  # an incident nobody opened
        _report("POL-LIMPUNG", UnitStatus.AVAILABLE, phantom),
        _report(sent, UnitStatus.ON_SCENE, incident, at=future),
    ]
    await pipeline.send([status_event(r) for r in bad])
    year_9999 = status_event(_report(sent, UnitStatus.AVAILABLE, incident))
    await _send_raw(
        pipeline,
        pipeline.topics.unit_status,
        sent,
        _with_time(year_9999, "reported_at", "9999-12-31T23:59:59+00:00"),
    )
    # and a supervisor's cancel of an incident nobody opened
    await pipeline.command(
        CancelIncidentV1(
            incident_id=phantom, reason="test", requested_by="spv", requested_at=datetime.now(UTC)
        )
    )
    dead = await _dead_letters(pipeline, len(bad) + 2)
    reasons = sorted(d.reason.split(":")[0] for d in dead)
    assert reasons == sorted(
        ["unknown_unit"] * 3
        + ["no_order", "no_order", "not_its_incident", "implausible_time", "bad_payload"]
        + ["unknown_incident"]
    ), [d.reason for d in dead]
    by_stage = {d.reason.split(":")[0]: d.stage for d in dead}
    assert by_stage.pop("unknown_incident") == "tracker"
    by_stage.pop("bad_payload")  # the topic's owner dead-letters what nobody can decode
    assert set(by_stage.values()) == {"dispatcher"}
    assert "2000 and 2099" in next(d.reason for d in dead if "bad_payload" in d.reason)

    # Nothing changed: the fleet, the orders, the incident, the board.
    units = {
        r["unit_id"]: (r["status"], r["incident_id"])
        for r in await pipeline.fetch("SELECT unit_id, status, incident_id FROM dispatcher.units")
    }
    assert "AMB-TYPO-2" not in units
    assert units[sent] == ("dispatched", incident)
    for free in ("FIRE-BATANG", "POL-BATANG", "POL-LIMPUNG"):
        assert units[free] == ("available", None), free
    assert (
        await pipeline.fetchval(
            "SELECT count(*) FROM tracker.incidents WHERE incident_id = $1", phantom
        )
        == 0
    )
    assert (
        await pipeline.fetchval(
            "SELECT status FROM tracker.incidents WHERE incident_id = $1", incident
        )
        == "dispatched"
    )
    board = await pipeline.fetch("SELECT unit_id FROM readmodel.units ORDER BY unit_id")
    assert sorted(r["unit_id"] for r in board) == sorted(u.unit_id for u in TEST_FLEET)
    assert (
        await pipeline.fetchval(
            "SELECT count(*) FROM readmodel.incidents WHERE incident_id = $1", phantom
        )
        == 0
    )
    on_it = await pipeline.fetch(
        "SELECT unit_id, status FROM readmodel.incident_units WHERE incident_id = $1", incident
    )
    assert [(r["unit_id"], r["status"]) for r in on_it] == [(sent, "dispatched")]

    # The crew's own report passes, and every stage acts on it.
    await pipeline.send([status_event(_report(sent, UnitStatus.EN_ROUTE, None))])

    async def en_route() -> bool:
        return bool(
            await pipeline.fetchval(
                "SELECT status = 'en_route' FROM readmodel.incidents WHERE incident_id = $1",
                incident,
            )
        )

    await eventually(en_route, what="the incident en route")
    assert (
        await pipeline.fetchval("SELECT status FROM dispatcher.units WHERE unit_id = $1", sent)
        == "en_route"
    )


async def test_the_cli_refuses_an_unknown_unit_or_an_impossible_status(
    pipeline: Pipeline,
) -> None:
    """`siaga unit status` checks a report by the dispatcher's rule on the board: a made-up
    unit, or a step of an order the unit does not have, is one line and exit code 2, and
    nothing is sent."""
    intake = new_intake(channel=Channel.CALL112, text="kebakaran rumah di Batang")
    await submit(pipeline.settings, intake)
    incident = (await pipeline.incident_for_intake(intake.intake_id)).incident_id
    for args, says in [
        (("AMB-TYPO-2", "en_route", "--incident", str(incident)), "not in the fleet"),
        (("POL-LIMPUNG", "on_scene"), "without an open order"),
    ]:
        done = await siaga_cli(pipeline.settings, "unit", "status", *args)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], done.stderr
    reports = [
        e
        for e in await pipeline.events(pipeline.topics.unit_status)
        if isinstance(e.payload, UnitStatusReportedV1)
    ]
    assert reports == []


async def test_a_senders_clock_never_reaches_a_timer(pipeline: Pipeline) -> None:
    """An intake dated 9999 is a dead letter with its reason (it would overflow the SLA's
    due time); one from a clock hours ahead is taken as received when it was read, so its
    P1 gets its SLA timer due within the minute, and the claim is kept beside it."""
    ahead = new_intake(channel=Channel.CALL112, text="ada orang tenggelam di sungai Batang")
    far = ahead.model_copy(update={"intake_id": uuid.uuid4()})
    await _send_raw(
        pipeline,
        pipeline.topics.intake_received,
        str(far.intake_id),
        _with_time(intake_event(far), "received_at", "9999-01-01T00:00:00+00:00"),
    )
    hours_ahead = datetime.now(UTC) + timedelta(hours=3)
    await pipeline.send(
        [
            new_event(
                ahead.model_copy(update={"received_at": hours_ahead}),
                id=uuid.uuid4(),
                source="/test",
            )
        ]
    )
    found = await pipeline.incident_for_intake(ahead.intake_id)
    assert found.priority == "P1"
    due = await pipeline.fetchval(
        "SELECT due_at FROM tracker.sla_timers WHERE incident_id = $1", found.incident_id
    )
    assert due is not None and due < datetime.now(UTC) + timedelta(minutes=5)
    enriched = [
        e.payload
        for e in await pipeline.events(pipeline.topics.intake_enriched)
        if e.payload.intake.intake_id == ahead.intake_id
    ]
    assert enriched[0].received_at_claimed == hours_ahead
    dead = await _dead_letters(pipeline, 1)
    assert dead[0].stage == "enricher" and "2000 and 2099" in dead[0].reason
