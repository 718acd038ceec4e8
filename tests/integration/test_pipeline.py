"""The whole pipeline on a real broker and PostgreSQL: report in, incident and dispatch out."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from schemas.events import DeadLetterV1, IncidentOpenedV1, UnitDispatchedV1
from schemas.vocabulary import Channel, UnitStatus
from services.clients.field_unit import report_status
from services.clients.operator import intake_event, new_intake, submit
from services.common.kafka import send_events
from services.common.outbox import Outgoing
from tests.conftest import Pipeline, eventually

pytestmark = pytest.mark.integration


def _dispatches(events: list, incident_id: uuid.UUID | None = None) -> list[UnitDispatchedV1]:
    return [
        e.payload
        for e in events
        if isinstance(e.payload, UnitDispatchedV1)
        and (incident_id is None or e.payload.incident_id == incident_id)
    ]


async def test_report_becomes_one_incident_one_dispatch_and_read_model_rows(
    pipeline: Pipeline,
) -> None:
    intake = new_intake(
        channel=Channel.PSC119,
        text="Tolong, bapak saya pingsan tidak sadar di rumah, mohon ambulan",
        phone="+6281234567890",
        place_hint="Limpung",
    )
    delivery = await submit(pipeline.settings, intake)
    assert delivery.sent == 1 and delivery.waiting == 0

    incident = await pipeline.incident_for_intake(intake.intake_id)
    assert incident.category == "medical"
    assert incident.priority == "P1"
    assert incident.kecamatan == "Limpung"
    assert [u.unit_id for u in incident.units] == ["AMB-LIMPUNG"]  # the nearest ambulance
    assert incident.units[0].unit_type == "ambulance"
    assert list(incident.intake_ids) == [intake.intake_id]

    opened = [
        e
        for e in await pipeline.events(pipeline.topics.incident_events)
        if isinstance(e.payload, IncidentOpenedV1)
    ]
    assert len(opened) == 1
    orders = _dispatches(await pipeline.events(pipeline.topics.dispatch_orders))
    assert len(orders) == 1 and orders[0].unit_type.value == "ambulance"
    # Batches reach the stages' handlers on the event loop, with no worker-thread hop
    # (FastStream's dependency injection ran one per batch to hand over the message).
    assert not [t.name for t in threading.enumerate() if "AnyIO worker" in t.name]
    assert orders[0].incident_id == incident.incident_id
    # the envelope links every event back to the intake that started the chain
    assert (
        await pipeline.fetchval(
            "SELECT count(*) FROM readmodel.timeline WHERE incident_id = $1",
            incident.incident_id,
        )
        >= 4
    )
    assert await pipeline.fetchval("SELECT caller_phone FROM readmodel.intakes") == "+6281*******90"


async def test_same_intake_delivered_twice_gives_one_incident_one_dispatch(
    pipeline: Pipeline,
) -> None:
    intake = new_intake(
        channel=Channel.PSC119, text="ibu saya pingsan di rumah, Batang", phone="+6281300000001"
    )
    await submit(pipeline.settings, intake)
    await submit(pipeline.settings, intake)  # the operator client resends it
    # another client resends the same intake id under an envelope id of its own
    from schemas.envelope import new_event

    again = new_event(intake, id=uuid.uuid4(), source="/other-client")
    client = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap())
    await client.start()
    try:
        await send_events(client, [Outgoing.of(again, pipeline.topics)])
    finally:
        await client.stop()

    incident = await pipeline.incident_for_intake(intake.intake_id)
    await asyncio.sleep(2)  # give a duplicate every chance to show up
    assert await pipeline.fetchval("SELECT count(*) FROM readmodel.incidents") == 1
    assert await pipeline.fetchval("SELECT count(*) FROM triage.incidents") == 1
    orders = _dispatches(await pipeline.events(pipeline.topics.dispatch_orders))
    assert len(orders) == 1
    assert orders[0].incident_id == incident.incident_id
    assert len(await pipeline.events(pipeline.topics.intake_enriched)) == 1


async def test_malformed_messages_go_to_the_dead_letter_topic_and_the_next_is_processed(
    pipeline: Pipeline,
) -> None:
    good = new_intake(channel=Channel.CALL112, text="kecelakaan truk di Limpung, korban luka parah")
    bad_schema = json.loads(intake_event(good).envelope.model_dump_json())
    bad_schema["id"] = str(uuid.uuid4())
    bad_schema["data"]["channel"] = "carrier_pigeon"
    client = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap())
    await client.start()
    try:
        topic = pipeline.topics.intake_received
        await client.send_and_wait(topic, b"this is {not json", key=b"k1")
        await client.send_and_wait(topic, json.dumps(bad_schema).encode(), key=b"k2")
    finally:
        await client.stop()
    await submit(pipeline.settings, good)

    incident = await pipeline.incident_for_intake(good.intake_id)
    assert incident.category == "traffic_accident"

    async def two_dead_letters() -> list[DeadLetterV1] | None:
        found = [
            e.payload
            for e in await pipeline.events(pipeline.topics.deadletter)
            if isinstance(e.payload, DeadLetterV1)
        ]
        return found if len(found) >= 2 else None

    dead = await eventually(two_dead_letters, what="two dead letters")
    await asyncio.sleep(1)  # a second stage reading the topic must not dead-letter them again
    dead = await two_dead_letters() or []
    assert len(dead) == 2
    reasons = sorted(d.reason for d in dead)
    assert reasons[0].startswith("bad_payload") and "channel" in reasons[0]
    assert reasons[1].startswith("not_json")
    assert {d.stage for d in dead} == {"enricher"}
    assert {d.source_topic for d in dead} == {pipeline.topics.intake_received}
    import base64

    assert base64.b64decode(
        next(d for d in dead if d.reason.startswith("not_json")).original_value_b64
    ) == (b"this is {not json")
    # the read model lists them for the ops team
    await eventually(
        lambda: pipeline.fetchval("SELECT count(*) = 2 FROM readmodel.dead_letters"),
        what="dead letters in the read model",
    )


async def test_intake_from_any_kafka_client_is_handled_like_one_from_the_cli(
    pipeline: Pipeline,
) -> None:
    intake_id = str(uuid.uuid4())
    cloud_event = {
        "specversion": "1.0",
        "id": f"kcat-{intake_id}",
        "source": "kcat://command-centre",
        "type": "siaga.intake.received.v1",
        "time": "2026-11-23T10:00:00+07:00",
        "datacontenttype": "application/json",
        "data": {
            "intake_id": intake_id,
            "channel": "call112",
            "received_at": "2026-11-23T10:00:00+07:00",
            "caller": {"phone": "+6281234567890", "name": None},
            "text": "ada kecelakaan motor di depan pasar Limpung, korban luka parah",
            "place_hint": None,
            "location": None,
            "operator_id": None,
        },
    }
    client = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap())
    await client.start()
    try:
        await client.send_and_wait(
            pipeline.topics.intake_received,
            json.dumps(cloud_event).encode(),
            key=intake_id.encode(),
        )
    finally:
        await client.stop()
    incident = await pipeline.incident_for_intake(uuid.UUID(intake_id), with_units=3)
    assert incident.category == "traffic_accident"
    assert incident.priority == "P1"
    assert incident.kecamatan == "Limpung"
    # the P1 crash run card: police and two ambulances, the ALS one first
    assert sorted(u.unit_type for u in incident.units) == ["ambulance", "ambulance", "police"]


async def test_unit_reports_move_the_incident_to_resolved_and_a_late_report_is_refused(
    pipeline: Pipeline,
) -> None:
    intake = new_intake(
        channel=Channel.PSC119, text="ibu hamil mau melahirkan, pendarahan", place_hint="Gringsing"
    )
    await submit(pipeline.settings, intake)
    incident = await pipeline.incident_for_intake(intake.intake_id)
    unit = incident.units[0].unit_id
    assert unit == "AMB-LIMPUNG"  # a P1 gets an ALS ambulance before a nearer BLS one
    incident_id = incident.incident_id
    for status in (
        "acknowledged",
        "en_route",
        "on_scene",
        "transporting",
        "at_hospital",
        "available",
    ):
        await report_status(
            pipeline.settings, unit_id=unit, status=UnitStatus(status), incident_id=incident_id
        )

    async def resolved() -> bool:
        return bool(
            await pipeline.fetchval(
                "SELECT status = 'resolved' FROM readmodel.incidents WHERE incident_id = $1",
                incident_id,
            )
        )

    await eventually(resolved, what="incident resolved")
    times = (
        await pipeline.fetch("SELECT * FROM tracker.incidents WHERE incident_id = $1", incident_id)
    )[0]
    for column in (
        "call_received_at",
        "unit_notified_at",
        "acknowledged_at",
        "en_route_at",
        "on_scene_at",
        "left_scene_at",
        "at_destination_at",
        "back_in_service_at",
    ):
        assert times[column] is not None, column
    board = await pipeline.fetch(
        "SELECT status, incident_id FROM readmodel.units WHERE unit_id = $1", unit
    )
    assert board[0]["status"] == "available" and board[0]["incident_id"] is None

    # A unit claiming to be en route to a resolved incident has no order on it: the
    # dispatcher, the one check of unit reports, refuses it and no stage acts on it.
    await report_status(
        pipeline.settings, unit_id=unit, status=UnitStatus.EN_ROUTE, incident_id=incident_id
    )

    async def refused() -> list | None:
        found = [
            e.payload
            for e in await pipeline.events(pipeline.topics.deadletter)
            if isinstance(e.payload, DeadLetterV1) and e.payload.stage == "dispatcher"
        ]
        return found or None

    dead = await eventually(refused, what="the dispatcher's dead letter")
    assert dead[0].reason.startswith("no_order") and unit in dead[0].reason
    assert not [
        e
        for e in await pipeline.events(pipeline.topics.deadletter)
        if isinstance(e.payload, DeadLetterV1) and e.payload.stage != "dispatcher"
    ]
    board = await pipeline.fetch(
        "SELECT status, incident_id FROM readmodel.units WHERE unit_id = $1", unit
    )
    assert board[0]["status"] == "available" and board[0]["incident_id"] is None
    assert (
        await pipeline.fetchval(
            "SELECT status FROM readmodel.incidents WHERE incident_id = $1", incident_id
        )
        == "resolved"
    )


async def test_simultaneous_incidents_never_share_a_unit_even_with_two_dispatchers(
    pipeline: Pipeline,
) -> None:
    await pipeline.start("dispatcher")  # a second instance in the same consumer group
    intakes = [
        new_intake(
            channel=Channel.PSC119,
            text=f"pasien {i} sesak napas berat",
            place_hint="Limpung",
            phone=f"+62812000001{i:02d}",
        )
        for i in range(8)
    ]
    await pipeline.publish(intakes)

    async def all_classified() -> bool:
        return (
            await pipeline.fetchval(
                "SELECT count(*) FROM readmodel.incidents WHERE category IS NOT NULL"
            )
            == 8
        )

    await eventually(all_classified, what="eight classified incidents")
    await asyncio.sleep(2)
    orders = _dispatches(await pipeline.events(pipeline.topics.dispatch_orders))
    units = [o.unit_id for o in orders]
    assert len(units) == 3, units  # three ambulances in the fleet, five incidents wait
    assert len(set(units)) == 3
    assert len({o.incident_id for o in orders}) == 3
    assert await pipeline.fetchval("SELECT count(*) FROM dispatcher.pending") == 5
    busy = await pipeline.fetch(
        "SELECT unit_id, incident_id FROM dispatcher.units WHERE unit_type = 'ambulance'"
    )
    assert len({r["incident_id"] for r in busy}) == 3


async def test_operator_report_waits_in_the_spool_while_the_broker_is_unreachable(
    pipeline: Pipeline, tmp_path
) -> None:
    from services.clients.operator import Spool, flush
    from services.common.settings import CommonSettings, KafkaSettings

    offline = CommonSettings(
        home=pipeline.settings.home,
        kafka=KafkaSettings(bootstrap="127.0.0.1:1"),
        topic=pipeline.settings.topic,
        database=pipeline.settings.database,
    )
    intake = new_intake(channel=Channel.CALL112, text="banjir bandang di Blado, warga terjebak")
    delivery = await submit(offline, intake, timeout_s=2)
    assert delivery.sent == 0 and delivery.waiting == 1
    spool = Spool(pipeline.settings.home.home / "spool")
    assert len(spool.pending()) == 1

    delivery = await flush(pipeline.settings, spool)  # the broker is back
    assert delivery.sent == 1 and spool.pending() == []
    incident = await pipeline.incident_for_intake(intake.intake_id, with_units=0)
    assert incident.category == "disaster" and incident.priority == "P1"
    assert datetime.now(UTC) > incident.received_at
