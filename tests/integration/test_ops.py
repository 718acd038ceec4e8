"""Ops tools on the real broker and database: rebuild and verify, swap, incident log,
replay, lag, health and metrics."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from schemas.commands import CancelIncidentV1
from schemas.common import Location
from schemas.events import _ALERT_EXAMPLE, AlertIssuedV1
from schemas.vocabulary import Channel, UnitStatus
from services.clients.field_unit import report_status
from services.clients.operator import new_intake, submit
from services.common.admin import committed_offsets, partitions_of, plain_consumer
from services.ops import rebuild as rb
from services.stages import STAGES, subscriptions
from tests.conftest import Pipeline, eventually, gateway_on_a_free_port, siaga_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def stages() -> tuple[str, ...]:
    """Every stage, the gateway too: `siaga lag` and the probes cover them all."""
    return STAGES


@pytest.fixture
def stage_settings() -> dict[str, dict[str, Any]]:
    """The gateway on a free port."""
    return gateway_on_a_free_port()


async def _scenario(pipeline: Pipeline) -> dict[str, Any]:
    """Calls, a duplicate, a complaint, a crew through to resolved, a unit freed for a
    waiting incident, bad input and a late report: every kind of read-model row."""
    s = pipeline.settings
    medical = new_intake(
        channel=Channel.PSC119,
        text="bapak saya pingsan tidak sadar, mohon ambulan",
        phone="+6281234500001",
        place_hint="Limpung",
    )
    fire = new_intake(
        channel=Channel.CALL112, text="kebakaran gudang di Batang", phone="+6281300000011"
    )
    waiting_fire = new_intake(channel=Channel.CALL112, text="rumah terbakar di Subah")
    complaint = new_intake(
        channel=Channel.WHATSAPP, text="lampu jalan di alun-alun Batang mati sudah seminggu"
    )
    await submit(s, medical)
    await submit(s, medical)  # resent
    await submit(s, fire)
    await submit(s, complaint)
    first = await pipeline.incident_for_intake(medical.intake_id)
    burning = await pipeline.incident_for_intake(fire.intake_id)
    await submit(s, waiting_fire)
    await pipeline.incident_for_intake(waiting_fire.intake_id, with_units=0)
    for i, status in enumerate(
        ("acknowledged", "en_route", "on_scene", "transporting", "at_hospital", "available")
    ):
        await report_status(
            s,
            unit_id="AMB-LIMPUNG",
            status=UnitStatus(status),
            incident_id=first.incident_id,
            location=Location(lat=-7.02 + i / 1000, lon=109.92),  # the crew's tablet moves
        )
    await report_status(
        s, unit_id="FIRE-BATANG", status=UnitStatus.AVAILABLE, incident_id=burning.incident_id
    )
    client = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap())
    await client.start()
    try:
        await client.send_and_wait(s.topics.intake_received, b"not json at all", key=b"x")
    finally:
        await client.stop()

    async def settled() -> bool:
        resolved = await pipeline.fetchval(
            "SELECT status = 'resolved' FROM readmodel.incidents WHERE incident_id = $1",
            first.incident_id,
        )
        served = await pipeline.fetchval(
            "SELECT count(*) FROM readmodel.incident_units u JOIN readmodel.intakes i "
            "ON i.incident_id = u.incident_id WHERE i.intake_id = $1",
            waiting_fire.intake_id,
        )
        dead = await pipeline.fetchval("SELECT count(*) FROM readmodel.dead_letters")
        orders = await pipeline.fetchval("SELECT count(*) FROM readmodel.work_orders")
        return bool(resolved) and served == 1 and dead == 1 and orders == 1

    await eventually(settled, timeout=30, what="the scenario to settle")
    # a late report on the resolved incident: refused by the tracker, dead-lettered
    await report_status(
        s, unit_id="AMB-LIMPUNG", status=UnitStatus.EN_ROUTE, incident_id=first.incident_id
    )
    await eventually(
        lambda: pipeline.fetchval("SELECT count(*) = 2 FROM readmodel.dead_letters"),
        what="the late report's dead letter",
    )
    return {"medical": medical, "incident": first, "fire": burning}


async def _public_alerts(pipeline: Pipeline) -> None:
    """A flood report's alert, withdrawn with its incident, and an officer's alert."""
    flood = new_intake(channel=Channel.CALL112, text="banjir di desa Kalisalak Limpung")
    await submit(pipeline.settings, flood)
    flooded = await pipeline.incident_for_intake(flood.intake_id, with_units=0)
    await pipeline.command(
        AlertIssuedV1.model_validate(_ALERT_EXAMPLE),
        CancelIncidentV1(
            incident_id=flooded.incident_id,
            reason="warga salah lapor",
            requested_by="supervisor",
            requested_at=datetime.now(UTC),
        ),
    )
    await eventually(
        lambda: pipeline.fetchval("SELECT count(*) = 3 FROM readmodel.cap_alerts"),
        what="the alert, its cancel and the officer's alert",
    )


async def test_rebuild_gives_the_live_read_model_and_swap_makes_it_live(
    pipeline: Pipeline,
) -> None:
    facts = await _scenario(pipeline)
    await _public_alerts(pipeline)
    done = await siaga_cli(
        pipeline.settings, "rebuild", "--verify", "--json", "--schema", "rm_check"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["equal"] is True and summary["differences"] == []
    assert summary["records"] > 30
    shown = ("incidents", "intakes", "incident_units", "units", "timeline", "work_orders")
    for table in (*shown, "cap_alerts"):
        assert await pipeline.fetchval(f"SELECT count(*) FROM rm_check.{table}") > 0, table

    # The comparison can fail: a live row that the log does not explain is found.
    # (a work order's summary: no later event rewrites it, unlike a busy unit's board row)
    await pipeline.fetch("UPDATE readmodel.work_orders SET summary = 'tampered'")
    rebuilt = await rb.rebuild(pipeline.settings, schema="rm_second", timeout_s=120)
    diffs = await rb.verify(pipeline.settings, rebuilt=rebuilt, attempts=1)
    assert [d.table for d in diffs] == ["work_orders"]
    assert diffs[0].only_live == 1 and diffs[0].only_rebuilt == 1
    assert "tampered" in diffs[0].sample_live[0]
    failed = await siaga_cli(pipeline.settings, "rebuild", "--verify", "--schema", "rm_third")
    assert failed.returncode == 1 and "DIFFER" in failed.stdout and "work_orders" in failed.stdout

    # Swap: the rebuilt schema goes live; the live projector keeps writing into it.
    retired = await rb.swap(pipeline.settings, rebuilt=rebuilt)
    assert await pipeline.fetchval("SELECT summary FROM readmodel.work_orders") != "tampered"
    assert await pipeline.fetchval(f"SELECT count(*) FROM {retired}.incidents") > 0
    later = new_intake(channel=Channel.CALL112, text="kecelakaan truk di Limpung, korban luka")
    await submit(pipeline.settings, later)
    await pipeline.incident_for_intake(later.intake_id, with_units=0)
    assert (await rb.compare(pipeline.settings, live="readmodel", rebuilt="rm_third")) != []
    shown = await siaga_cli(
        pipeline.settings, "incident", "show", str(facts["medical"].intake_id), "--json"
    )
    assert json.loads(shown.stdout)["status"] == "resolved"


async def test_the_lists_show_what_the_read_model_holds(pipeline: Pipeline) -> None:
    """`incident list` and `unit list` (typed look-ups, printed as JSON) agree with the
    read model's rows."""
    facts = await _scenario(pipeline)
    incidents = await siaga_cli(pipeline.settings, "incident", "list", "--json", "--limit", "50")
    assert incidents.returncode == 0, incidents.stderr
    listed = {row["incident_id"]: row for row in json.loads(incidents.stdout)}
    medical = listed[str(facts["incident"].incident_id)]
    assert (medical["status"], medical["category"], medical["units"]) == (
        "resolved",
        "medical",
        "AMB-LIMPUNG",
    )
    assert list(medical) == [
        "incident_id", "status", "category", "priority", "agency", "kecamatan",
        "needs_review", "needs_confirmation", "received_at", "units",
    ]  # fmt: skip
    units = await siaga_cli(pipeline.settings, "unit", "list", "--json")
    assert units.returncode == 0, units.stderr
    board = {
        r["unit_id"]: (r["status"], r["incident_id"])
        for r in await pipeline.fetch("SELECT unit_id, status, incident_id FROM readmodel.units")
    }
    shown = json.loads(units.stdout)
    assert {r["unit_id"]: (r["status"], r["incident_id"]) for r in shown} == {
        unit: (status, None if incident is None else str(incident))
        for unit, (status, incident) in board.items()
    }
    assert [(r["unit_type"], r["unit_id"]) for r in shown] == sorted(
        (r["unit_type"], r["unit_id"]) for r in shown
    )


async def test_incident_log_replay_and_lag(pipeline: Pipeline, tmp_path) -> None:
    facts = await _scenario(pipeline)
    incident_id = str(facts["incident"].incident_id)
    logged = await siaga_cli(pipeline.settings, "incident", "log", incident_id, "--json")
    assert logged.returncode == 0, logged.stderr
    events = [json.loads(line) for line in logged.stdout.splitlines()]
    types = [e["event"]["type"] for e in events]
    topics = {e["topic"] for e in events}
    t = pipeline.topics
    assert {
        t.intake_received,
        t.intake_enriched,
        t.incident_events,
        t.dispatch_orders,
        t.unit_status,
        t.deadletter,
    } <= topics
    assert types[0] == "siaga.intake.received.v1"
    assert types.count("siaga.incident.opened.v1") == 1
    assert "siaga.incident.resolved.v1" in types and "siaga.deadletter.v1" in types
    times = [e["event"]["time"] for e in events]
    assert times == sorted(times, key=lambda x: x)  # ISO times in one zone sort as text
    fire = str(facts["fire"].incident_id)
    assert not any(fire in json.dumps(e["event"]["data"]) for e in events)
    recent = await siaga_cli(
        pipeline.settings, "incident", "log", incident_id, "--json", "--since", "1h"
    )
    assert recent.stdout == logged.stdout  # from offsets_for_times: the same events
    # by intake id too, in the readable form
    text = await siaga_cli(pipeline.settings, "incident", "log", str(facts["medical"].intake_id))
    assert text.returncode == 0 and "opened" in text.stdout and "resolved" in text.stdout

    # replay into a file: every record of the topic, with positions
    out = tmp_path / "orders.jsonl"
    replayed = await siaga_cli(
        pipeline.settings, "replay", "dispatch.orders", "--from-offset", "0", "--to-file", str(out)
    )
    assert replayed.returncode == 0, replayed.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    orders = [json.loads(r["value"])["type"] for r in lines]
    dispatched = await pipeline.fetchval("SELECT count(*) FROM dispatcher.dispatches")
    assert orders.count("siaga.dispatch.unit_dispatched.v1") == dispatched >= 3
    assert "siaga.dispatch.work_order_issued.v1" in orders

    # replay into a new consumer group: it starts where it was told
    group = f"{t.prefix}.replay-{uuid.uuid4().hex[:6]}"
    moved = await siaga_cli(
        pipeline.settings, "replay", t.unit_status, "--since", "1h", "--to-group", group
    )
    assert moved.returncode == 0, moved.stderr
    async with plain_consumer(pipeline.settings, group_id=group) as consumer:
        tps = await partitions_of(consumer, [t.unit_status])
        committed = await committed_offsets(consumer, tps)
    assert all(v is not None for v in committed.values())
    again = await siaga_cli(
        pipeline.settings, "replay", t.unit_status, "--from-offset", "0", "--to-group", group
    )
    assert again.returncode == 1 and "already has committed offsets" in again.stderr

    # lag: every stage and partition, caught up once the pipeline is quiet
    async def caught_up() -> list[dict[str, Any]] | None:
        shown = await siaga_cli(pipeline.settings, "lag", "--json")
        rows = json.loads(shown.stdout)
        return rows if rows and all(r["lag"] == 0 for r in rows) else None

    rows = await eventually(caught_up, timeout=30, what="zero lag")
    for stage in STAGES:
        mine = {(r["topic"], r["partition"]) for r in rows if r["stage"] == stage}
        assert {topic for topic, _ in mine} == set(subscriptions(stage, t)), stage
        assert len(mine) == 3 * len(subscriptions(stage, t))
    assert (
        sum(r["end"] for r in rows if r["topic"] == t.intake_received and r["stage"] == "enricher")
        == 6  # five reports (one resent) and one that is not JSON
    )


async def test_stages_serve_health_readiness_and_metrics(pipeline: Pipeline) -> None:
    intake = new_intake(
        channel=Channel.CALL112, text="kebakaran rumah di Batang", phone="+6281300000099"
    )
    await submit(pipeline.settings, intake)
    await pipeline.incident_for_intake(intake.intake_id)
    ports = set()
    async with aiohttp.ClientSession() as http:
        for stage in STAGES:
            runtime = pipeline.runtimes[stage][0]
            # the stage's own subscription is what `siaga lag` assumes
            assert {getattr(t, "name", t) for t in runtime.subscriber.topics} == set(
                subscriptions(stage, pipeline.topics)
            )
            base = f"http://127.0.0.1:{runtime.http_port}"
            ports.add(runtime.http_port)
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200 and (await r.json())["stage"] == stage
            async with http.get(f"{base}/readyz") as r:
                body = await r.json()
                assert r.status == 200, body
                assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"

            async def metrics(base: str = base) -> str:
                async with http.get(f"{base}/metrics") as r:
                    assert r.status == 200
                    return await r.text()

            async def counted(stage: str = stage) -> str | None:
                text = await metrics()
                return text if f'siaga_events_in_total{{stage="{stage}"}} 0.0' not in text else None

            text = await eventually(counted, what=f"{stage} counting events")
            assert f'siaga_consumer_lag{{partition="0",stage="{stage}"' in text

            async def caught_up(stage: str = stage) -> bool:
                lags = [
                    float(line.rsplit(" ", 1)[1])
                    for line in (await metrics()).splitlines()
                    if line.startswith("siaga_consumer_lag{")
                ]
                return bool(lags) and all(lag == 0 for lag in lags)

            await eventually(caught_up, what=f"{stage} lag 0 in its metrics")
            assert "siaga_batch_processing_seconds_bucket" in text
            assert "siaga_dead_letters_total" in text and "siaga_events_out_total" in text
    assert len(ports) == len(STAGES)


async def test_readiness_says_what_is_wrong(pipeline: Pipeline) -> None:
    runtime = pipeline.runtimes["triage"][0]
    await runtime.pool.close()  # the stage's database is gone
    assert runtime.health is not None
    checks = await runtime.health.readiness()
    assert checks["database"] != "ok" and checks["broker"] == "ok"
