"""Dispatch and incident lifecycle on a busy night, on a real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas.commands import CancelIncidentV1, ReassignDispatchV1
from schemas.envelope import DecodeError, decode_event
from schemas.events import (
    DeadLetterV1,
    DispatchCancelledV1,
    IncidentEscalatedV1,
    SlaBreachedV1,
    UnitDispatchedV1,
    WorkOrderEscalatedV1,
    WorkOrderReminderSentV1,
)
from schemas.vocabulary import Channel, UnitStatus, UnitType
from services.clients.field_unit import report_status
from services.clients.operator import intake_event, new_intake, submit
from services.common.admin import records_since
from services.common.kafka import send_events
from services.common.outbox import Outgoing
from services.dispatcher.bootstrap import DispatcherSettings
from services.dispatcher.fleet import UnitSpec
from services.tracker.bootstrap import TrackerSettings
from services.triage.bootstrap import TriageSettings
from tests.conftest import Pipeline, eventually

pytestmark = pytest.mark.integration

FAST_TIMERS = {"timer_interval_s": 0.3}


def _settings(**stages: dict[str, Any]) -> dict[str, dict[str, Any]]:
    built: dict[str, dict[str, Any]] = {}
    kinds = {"dispatcher": DispatcherSettings, "tracker": TrackerSettings, "triage": TriageSettings}
    for stage, values in stages.items():
        built[stage] = {"settings": kinds[stage](**values)}
    return built


async def _of_type(pipeline: Pipeline, topic: str, kind: type, n: int = 1) -> list[Any]:
    async def found() -> list[Any] | None:
        hits = [e.payload for e in await pipeline.events(topic) if isinstance(e.payload, kind)]
        return hits if len(hits) >= n else None

    return await eventually(found, timeout=30, what=f"{n} x {kind.__name__}")


@pytest.mark.parametrize(
    "stage_settings", [_settings(dispatcher={"ack_timeout_p1_s": 2, **FAST_TIMERS})], indirect=True
)
async def test_a_missed_acknowledgement_sends_the_next_unit(pipeline: Pipeline) -> None:
    intake = new_intake(
        channel=Channel.PSC119, text="kakek saya sesak napas, tidak sadar", place_hint="Limpung"
    )
    await submit(pipeline.settings, intake)
    first = await pipeline.incident_for_intake(intake.intake_id)
    assert [u.unit_id for u in first.units] == ["AMB-LIMPUNG"]
    # nobody in AMB-LIMPUNG answers
    cancelled = await _of_type(pipeline, pipeline.topics.dispatch_orders, DispatchCancelledV1)
    assert cancelled[0].unit_id == "AMB-LIMPUNG"
    assert cancelled[0].unit_status_after is UnitStatus.OUT_OF_SERVICE
    again = await pipeline.incident_for_intake(intake.intake_id, with_units=2)
    units = {u.unit_id: u.status for u in again.units}
    assert units["AMB-LIMPUNG"] == "cancelled"
    nxt = next(u for u in units if u != "AMB-LIMPUNG")
    assert units[nxt] == "dispatched" and nxt.startswith("AMB-")
    board = await pipeline.fetch(
        "SELECT unit_id, status FROM readmodel.units WHERE unit_id = 'AMB-LIMPUNG'"
    )
    assert board[0]["status"] == "out_of_service"
    # the next unit answers in time: no second cancellation
    await report_status(
        pipeline.settings,
        unit_id=nxt,
        status=UnitStatus.ACKNOWLEDGED,
        incident_id=first.incident_id,
    )
    await asyncio.sleep(3)
    cancellations = [
        e
        for e in await pipeline.events(pipeline.topics.dispatch_orders)
        if isinstance(e.payload, DispatchCancelledV1)
    ]
    assert len(cancellations) == 1


@pytest.mark.parametrize(
    "stage_settings",
    [_settings(dispatcher={"run_cards": '{"fire/P1": ["fire_truck"]}'})],
    indirect=True,
)
async def test_no_free_unit_escalates_then_the_first_unit_to_clear_goes(pipeline: Pipeline) -> None:
    fire_one = new_intake(
        channel=Channel.CALL112, text="kebakaran gudang di Batang", phone="+6281300000011"
    )
    fire_two = new_intake(
        channel=Channel.CALL112, text="rumah terbakar di Subah", phone="+6281300000012"
    )
    await submit(pipeline.settings, fire_one)
    first = await pipeline.incident_for_intake(fire_one.intake_id)
    await submit(pipeline.settings, fire_two)
    escalated = await _of_type(pipeline, pipeline.topics.incident_events, IncidentEscalatedV1)
    assert escalated[0].unit_type is UnitType.FIRE_TRUCK
    second = await pipeline.incident_for_intake(fire_two.intake_id, with_units=0)
    assert list(second.units) == []  # the only fire truck is busy
    assert second.incident_id == escalated[0].incident_id
    # The read model follows the log: the escalation may reach it just after the incident.
    await eventually(
        lambda: pipeline.fetchval(
            "SELECT escalated_at IS NOT NULL FROM readmodel.incidents WHERE incident_id = $1",
            second.incident_id,
        ),
        what="the escalation in the read model",
    )
    # A report not naming the truck's incident (sent before the crew saw the order, say)
    # does not free it.
    await report_status(pipeline.settings, unit_id="FIRE-BATANG", status=UnitStatus.AVAILABLE)
    await asyncio.sleep(2)
    assert await pipeline.fetchval("SELECT count(*) FROM dispatcher.pending") == 1
    await report_status(
        pipeline.settings,
        unit_id="FIRE-BATANG",
        status=UnitStatus.AVAILABLE,
        incident_id=first.incident_id,
    )
    second = await pipeline.incident_for_intake(fire_two.intake_id, with_units=1)
    assert second.units[0].unit_id == "FIRE-BATANG"
    assert await pipeline.fetchval("SELECT count(*) FROM dispatcher.pending") == 0


AMBULANCE_FLEET = [
    UnitSpec(f"AMB-{i:02d}", UnitType.AMBULANCE, "PSC 119", "PSC 119", k, ("ALS",) if i % 2 else ())
    for i, k in enumerate(["Batang", "Limpung", "Gringsing", "Subah", "Tulis"] * 4)
]


@pytest.mark.parametrize("fleet", [AMBULANCE_FLEET], indirect=False)
async def test_two_dispatchers_on_200_simultaneous_incidents_never_double_assign_and_serve_all(
    pipeline: Pipeline,
) -> None:
    await pipeline.start("dispatcher")  # a second instance in the same consumer group
    intakes = [
        new_intake(
            channel=Channel.PSC119,
            text=f"pasien {i} pingsan, sesak napas",
            place_hint=["Batang", "Limpung", "Gringsing", "Subah", "Tulis", "Bandar"][i % 6],
        )
        for i in range(200)
    ]
    busy: dict[str, uuid.UUID] = {}
    crew_work: set[asyncio.Task[None]] = set()
    violations: list[str] = []
    served: dict[uuid.UUID, list[str]] = {}

    async def crews() -> None:
        """Every crew answers at once, works the call and clears, naming its incident."""
        since_ms = int(datetime.now(UTC).timestamp() * 1000) - 60_000
        async for record in records_since(
            pipeline.settings, [pipeline.topics.dispatch_orders], since_ms=since_ms
        ):
            try:
                order = decode_event(record.value).payload
            except DecodeError:
                continue
            if not isinstance(order, UnitDispatchedV1):
                continue
            if order.unit_id in busy:
                violations.append(
                    f"{order.unit_id} sent to {order.incident_id} while on {busy[order.unit_id]}"
                )
            busy[order.unit_id] = order.incident_id
            served.setdefault(order.incident_id, []).append(order.unit_id)
            crew_work.add(asyncio.create_task(work(order)))

    async def work(order: UnitDispatchedV1) -> None:
        for status in (UnitStatus.ACKNOWLEDGED, UnitStatus.ON_SCENE):
            await report_status(
                pipeline.settings,
                unit_id=order.unit_id,
                status=status,
                incident_id=order.incident_id,
            )
        busy.pop(order.unit_id, None)  # free in our books before the dispatcher can know
        await report_status(
            pipeline.settings,
            unit_id=order.unit_id,
            status=UnitStatus.AVAILABLE,
            incident_id=order.incident_id,
        )

    crew_task = asyncio.create_task(crews())
    try:
        client = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap())
        await client.start()
        try:
            await send_events(
                client, [Outgoing.of(intake_event(i), pipeline.topics) for i in intakes]
            )
        finally:
            await client.stop()

        async def all_served() -> bool:
            return len(served) >= 200 and not await pipeline.fetchval(
                "SELECT count(*) FROM dispatcher.pending"
            )

        await eventually(all_served, timeout=150, what="all 200 incidents served")
    finally:
        crew_task.cancel()
    assert violations == []
    assert len(served) == 200
    assert all(
        len(units) == 1 for units in served.values()
    )  # one ambulance each, no double dispatch
    overlaps = await pipeline.fetchval(
        """
        SELECT count(*) FROM dispatcher.dispatches a JOIN dispatcher.dispatches b
          ON a.unit_id = b.unit_id AND a.dispatch_id < b.dispatch_id
         WHERE tstzrange(a.dispatched_at, COALESCE(a.ended_at, 'infinity'))
            && tstzrange(b.dispatched_at, COALESCE(b.ended_at, 'infinity'))
        """
    )
    assert overlaps == 0


@pytest.mark.parametrize(
    "stage_settings",
    [
        _settings(
            triage={"sla_p1_s": 3},
            tracker=FAST_TIMERS,
            dispatcher={"run_cards": '{"fire/P1": ["bpbd_team"]}'},  # nothing in the fleet
        )
    ],
    indirect=True,
)
async def test_a_tracker_restarted_in_an_sla_window_raises_the_breach_once(
    pipeline: Pipeline,
) -> None:
    intake = new_intake(channel=Channel.CALL112, text="kebakaran pabrik di Kandeman, api besar")
    await submit(pipeline.settings, intake)

    async def timer_running() -> bool:
        return bool(
            await pipeline.fetchval(
                "SELECT count(*) FROM tracker.sla_timers WHERE breached_at IS NULL"
            )
        )

    await eventually(timer_running, what="the SLA timer")
    await pipeline.stop_stage("tracker")  # in the middle of the 3 s window
    await asyncio.sleep(1)
    await pipeline.start("tracker")
    await pipeline.start("tracker")  # and a second instance, for good measure
    breaches = await _of_type(pipeline, pipeline.topics.incident_events, SlaBreachedV1)
    await asyncio.sleep(3)
    breaches = [
        e.payload
        for e in await pipeline.events(pipeline.topics.incident_events)
        if isinstance(e.payload, SlaBreachedV1)
    ]
    assert len(breaches) == 1
    assert breaches[0].target == "dispatch" and breaches[0].priority.value == "P1"
    await eventually(
        lambda: pipeline.fetchval("SELECT count(*) = 1 FROM readmodel.sla_breaches"),
        what="the breach in the read model",
    )


@pytest.mark.parametrize(
    "stage_settings",
    [_settings(dispatcher={"work_order_due_s": 4, "work_order_reminder_s": 2, **FAST_TIMERS})],
    indirect=True,
)
async def test_a_complaint_past_its_due_time_is_flagged_overdue(pipeline: Pipeline) -> None:
    from schemas.commands import AnswerWorkOrderV1, CloseWorkOrderV1
    from services.projector.queries import agency_queue

    intake = new_intake(
        channel=Channel.WHATSAPP,
        text="jalan berlubang besar di depan SD, sudah sebulan",
        place_hint="Tulis",
    )
    await submit(pipeline.settings, intake)
    incident = await pipeline.incident_for_intake(intake.intake_id, with_units=0)
    reminded = await _of_type(pipeline, pipeline.topics.dispatch_orders, WorkOrderReminderSentV1)
    escalated = await _of_type(pipeline, pipeline.topics.dispatch_orders, WorkOrderEscalatedV1)
    assert reminded[0].agency == escalated[0].agency == "DPUPR"

    async def overdue() -> list | None:
        async with pipeline.db.acquire() as conn:
            await conn.execute("SET search_path TO readmodel")
            rows = await agency_queue(conn, agency="DPUPR", overdue_only=True)
        return rows or None

    rows = await eventually(overdue, what="the overdue flag")
    assert rows[0].incident_id == incident.incident_id and rows[0].state == "open"
    now = datetime.now(UTC)
    await pipeline.command(
        AnswerWorkOrderV1(
            incident_id=incident.incident_id,
            response="Sudah dijadwalkan perbaikan",
            requested_by="dpupr-1",
            requested_at=now,
        ),
        CloseWorkOrderV1(
            incident_id=incident.incident_id,
            resolution="Lubang ditambal",
            requested_by="dpupr-1",
            requested_at=now,
        ),
    )

    async def resolved() -> bool:
        return await pipeline.fetchval(
            "SELECT status = 'resolved' FROM readmodel.incidents WHERE incident_id = $1",
            incident.incident_id,
        )

    await eventually(resolved, what="the complaint resolved")
    async with pipeline.db.acquire() as conn:
        await conn.execute("SET search_path TO readmodel")
        (row,) = await agency_queue(conn, agency="DPUPR")
    assert row.state == "closed" and row.response == "Sudah dijadwalkan perbaikan"


async def test_a_supervisor_reassigns_a_unit_and_cancels_an_incident(pipeline: Pipeline) -> None:
    intake = new_intake(channel=Channel.PSC119, text="anak kejang di rumah", place_hint="Limpung")
    await submit(pipeline.settings, intake)
    incident = await pipeline.incident_for_intake(intake.intake_id)
    incident_id = incident.incident_id
    assert incident.units[0].unit_id == "AMB-LIMPUNG"
    now = datetime.now(UTC)
    await pipeline.command(
        ReassignDispatchV1(
            incident_id=incident_id,
            unit_id="AMB-LIMPUNG",
            to_unit_id="AMB-GRINGSING",
            reason="AMB-LIMPUNG has a flat tyre",
            requested_by="spv-1",
            requested_at=now,
        ),
    )
    after = await pipeline.incident_for_intake(intake.intake_id, with_units=2)
    units = {u.unit_id: u.status for u in after.units}
    assert units == {"AMB-LIMPUNG": "cancelled", "AMB-GRINGSING": "dispatched"}
    # a reassignment to an unknown unit is refused with a reason, and changes nothing
    await pipeline.command(
        ReassignDispatchV1(
            incident_id=incident_id,
            unit_id="AMB-GRINGSING",
            to_unit_id="AMB-NOWHERE",
            reason="typo",
            requested_by="spv-1",
            requested_at=now,
        ),
    )
    dead = await _of_type(pipeline, pipeline.topics.deadletter, DeadLetterV1)
    assert dead[0].stage == "dispatcher" and dead[0].reason.startswith("unknown_unit")
    still = await pipeline.incident_for_intake(intake.intake_id, with_units=2)
    assert {u.unit_id: u.status for u in still.units} == units
    await pipeline.command(
        CancelIncidentV1(
            incident_id=incident_id, reason="false alarm", requested_by="spv-1", requested_at=now
        ),
    )

    async def cancelled() -> bool:
        return await pipeline.fetchval(
            "SELECT status = 'cancelled' FROM readmodel.incidents WHERE incident_id = $1",
            incident_id,
        )

    await eventually(cancelled, what="the incident cancelled")

    async def both_available() -> dict[str, str] | None:
        rows = await pipeline.fetch(
            "SELECT unit_id, status FROM readmodel.units"
            " WHERE unit_id IN ('AMB-LIMPUNG', 'AMB-GRINGSING') AND status = 'available'"
        )
        return {r["unit_id"]: r["status"] for r in rows} if len(rows) == 2 else None

    board = await eventually(both_available, what="both ambulances available")
    assert board == {"AMB-LIMPUNG": "available", "AMB-GRINGSING": "available"}


async def test_units_added_and_moved_at_run_time_take_part_and_sla_figures_add_up(
    pipeline: Pipeline,
) -> None:
    from schemas.common import Location
    from schemas.events import UnitMovedV1, UnitRegisteredV1
    from services.projector.queries import sla_statistics

    now = datetime.now(UTC)
    # a new ALS ambulance at Puskesmas Subah, and the Batang police car moved to Subah
    subah = (-6.96, 109.874)
    await pipeline.command(
        UnitRegisteredV1(
            unit_id="AMB-SUBAH",
            unit_type=UnitType.AMBULANCE,
            agency="Puskesmas Subah",
            base="Puskesmas Subah",
            location=Location(lat=subah[0], lon=subah[1]),
            capabilities=["ALS"],
            registered_at=now,
        ),
        UnitMovedV1(
            unit_id="POL-BATANG", location=Location(lat=subah[0], lon=subah[1]), moved_at=now
        ),
    )

    async def registered() -> bool:
        return bool(
            await pipeline.fetchval(
                "SELECT count(*) FROM dispatcher.units WHERE unit_id = 'AMB-SUBAH'"
            )
        )

    await eventually(registered, what="the new unit in the dispatcher's fleet")
    crash = new_intake(
        channel=Channel.CALL112,
        text="tabrakan truk dan motor di Subah, korban luka parah",
        place_hint="Subah",
    )
    await submit(pipeline.settings, crash)
    incident = await pipeline.incident_for_intake(crash.intake_id, with_units=3)
    units = [u.unit_id for u in incident.units]
    assert "AMB-SUBAH" in units  # the new ALS ambulance is nearest
    assert "POL-BATANG" in units  # moved next to the crash, it beats the Limpung car

    async with pipeline.db.acquire() as conn:
        await conn.execute("SET search_path TO readmodel")
        rows = await sla_statistics(conn, days=2)
    by_channel = [r for r in rows if r.dimension == "channel" and r.value == "call112"]
    assert by_channel and by_channel[0].p1 == 1
    assert by_channel[0].p1_dispatch_p50_s is not None and by_channel[0].p1_dispatch_p50_s >= 0
    assert {r.dimension for r in rows} == {"channel", "category", "kecamatan"}
