"""What people read from the read model: numbers masked in `incident show` and the dead
letters' previews (the read model and the log keep them whole), the ETA rounded as the
monitor rounds it, and a complaint minutes old counted as pending, not late."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.envelope import new_event
from schemas.events import DeadLetterV1, IncidentOpenedV1, UnitDispatchedV1, WorkOrderIssuedV1
from schemas.vocabulary import Category, Channel, Priority, UnitType
from tests.conftest import Pipeline, eventually, siaga_cli

pytestmark = pytest.mark.integration

PHONE = "+6281234567890"


@pytest.fixture
def stages() -> tuple[str, ...]:
    """The projector alone: these tests feed it the events the other stages would."""
    return ("projector",)


def _event(payload: Any) -> Any:
    return new_event(payload, id=uuid.uuid4(), source="/test")


async def test_incident_show_masks_numbers_and_says_the_monitors_eta(pipeline: Pipeline) -> None:
    now = datetime.now(UTC)
    incident_id = uuid.uuid4()
    text = "rumah terbakar di Subah, hubungi saya di 0812-3456-7890"
    await pipeline.send(
        [
            _event(
                IncidentOpenedV1(
                    incident_id=incident_id,
                    intake_id=uuid.uuid4(),
                    channel=Channel.CALL112,
                    received_at=now,
                    opened_at=now,
                    text=text,
                    place=None,
                )
            ),
            _event(
                UnitDispatchedV1(
                    dispatch_id=uuid.uuid4(),
                    incident_id=incident_id,
                    unit_id="FIRE-BATANG",
                    unit_type=UnitType.FIRE_TRUCK,
                    category=Category.FIRE,
                    priority=Priority.P1,
                    place=None,
                    distance_km=0.5,
                    eta_seconds=45,  # the monitor and the log say "ETA 1 min"
                    dispatched_at=now,
                )
            ),
        ]
    )

    async def dispatched() -> bool:
        return bool(
            await pipeline.fetchval(
                "SELECT count(*) FROM readmodel.timeline WHERE incident_id = $1 "
                "AND summary LIKE '%dispatched%'",
                incident_id,
            )
        )

    await eventually(dispatched, what="the dispatch in the incident's timeline")
    shown = await siaga_cli(pipeline.settings, "incident", "show", str(incident_id))
    assert shown.returncode == 0, shown.stderr
    assert "08123*****90" in shown.stdout and "3456-7890" not in shown.stdout
    assert "FIRE-BATANG dispatched, ETA 1 min" in shown.stdout
    as_json = await siaga_cli(pipeline.settings, "incident", "show", str(incident_id), "--json")
    found = json.loads(as_json.stdout)
    assert found["text"] == "rumah terbakar di Subah, hubungi saya di 08123*****90"
    assert [s["summary"] for s in found["timeline"]][-1] == "FIRE-BATANG dispatched, ETA 1 min"
    # kept whole where it is needed to call back: the read model (and the log)
    stored = "SELECT text FROM readmodel.incidents WHERE incident_id = $1"
    assert await pipeline.fetchval(stored, incident_id) == text


async def test_dead_letter_previews_are_masked_in_both_forms(pipeline: Pipeline) -> None:
    original = f"bukan json, hubungi {PHONE} segera".encode()
    # what the enricher sends when it cannot read a record on the intake topic
    await pipeline.send(
        [
            _event(
                DeadLetterV1(
                    stage="enricher",
                    reason="not_json: value is not valid JSON",
                    error_type="DecodeError",
                    source_topic=pipeline.topics.intake_received,
                    source_partition=0,
                    source_offset=0,
                    original_key_b64=None,
                    original_headers=[],
                    original_value_b64=base64.b64encode(original).decode(),
                    original_size=len(original),
                    original_truncated=False,
                    dead_lettered_at=datetime.now(UTC),
                )
            )
        ]
    )

    async def listed() -> list[dict[str, Any]] | None:
        done = await siaga_cli(pipeline.settings, "dlq", "list", "--json")
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout)) or None

    letters = await eventually(listed, what="the dead letter listed")
    assert "hubungi +6281*******90 segera" in letters[0]["preview"]
    assert PHONE not in json.dumps(letters)
    text = await siaga_cli(pipeline.settings, "dlq", "list")
    assert "hubungi +6281*******90 segera" in text.stdout and PHONE not in text.stdout


async def test_a_complaint_within_its_three_days_is_pending_not_late(pipeline: Pipeline) -> None:
    from services.projector.queries import sla_statistics

    now = datetime.now(UTC)
    events = []
    for received in (now - timedelta(minutes=5), now - timedelta(days=4)):
        incident_id = uuid.uuid4()
        events += [
            _event(
                IncidentOpenedV1(
                    incident_id=incident_id,
                    intake_id=uuid.uuid4(),
                    channel=Channel.WHATSAPP,
                    received_at=received,
                    opened_at=received,
                    text="jalan berlubang di depan SD",
                    place=None,
                )
            ),
            _event(
                WorkOrderIssuedV1(
                    work_order_id=uuid.uuid4(),
                    incident_id=incident_id,
                    agency="DPUPR",
                    category=Category.INFRASTRUCTURE,
                    priority=Priority.P3,
                    summary="jalan berlubang di depan SD",
                    issued_at=received,
                    due_at=received + timedelta(days=3),
                )
            ),
        ]
    await pipeline.send(events)

    async def both_issued() -> bool:
        return await pipeline.fetchval("SELECT count(*) FROM readmodel.work_orders") == 2

    await eventually(both_issued, what="both work orders in the read model")
    async with pipeline.db.acquire() as conn:
        await conn.execute("SET search_path TO readmodel")
        rows = await sla_statistics(conn, days=7)
    by_day = {r.day: r for r in rows if r.dimension == "channel" and r.value == "whatsapp"}
    assert len(by_day) == 2
    recent, old = (by_day[d] for d in sorted(by_day, reverse=True))
    # minutes old: pending, and no share yet; four days unanswered: late
    assert (recent.complaints, recent.complaints_pending) == (1, 1)
    assert recent.answered_in_3_days_share is None
    assert (old.complaints, old.complaints_pending) == (1, 0)
    assert old.answered_in_3_days_share == 0
    table = await siaga_cli(pipeline.settings, "stats", "sla")
    assert table.returncode == 0, table.stderr
    assert "pending" in table.stdout.splitlines()[0]
