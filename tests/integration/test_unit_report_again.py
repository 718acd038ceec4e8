"""A unit's report sent again with its time, on the real broker and database: a field
client that gives up waiting on the gateway and sends the report to the broker (as `siaga
unit status` does) has it applied once, with nothing refused as a repeat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from schemas.events import DeadLetterV1, UnitStatusChangedV1
from schemas.vocabulary import Channel, UnitStatus
from services.clients.field_unit import report_status
from services.clients.operator import new_intake, submit
from tests.conftest import Pipeline, eventually, gateway_url, new_api_key, with_gateway
from tests.infra import Infra

pytestmark = pytest.mark.integration


@pytest.fixture
async def gw(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    """The five stages and the gateway, with the whole test fleet free."""
    async with with_gateway(infra, home=tmp_path_factory.mktemp("again") / ".siaga") as pipe:
        yield pipe


async def test_a_unit_report_sent_again_with_its_time_counts_once(gw: Pipeline) -> None:
    """A field client that gives up waiting on the gateway and sends the same report to the
    broker (as `siaga unit status` does) sends it with the same time: the dispatcher applies
    it once, and refuses nothing as a repeat."""
    tablet = await new_api_key(gw, "tablets-again", "unit")
    call = new_intake(
        channel=Channel.PSC119, text="bapak saya pingsan tidak sadar", place_hint="Limpung"
    )
    await submit(gw.settings, call)
    found = await gw.incident_for_intake(call.intake_id)
    unit = found.units[0].unit_id
    dead_before = len(await gw.events(gw.topics.deadletter))

    async def status_is(status: str) -> bool | None:
        now = await gw.fetchval("SELECT status FROM dispatcher.units WHERE unit_id = $1", unit)
        return True if now == status else None

    async def tablet_reports(status: str, reported_at: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=gateway_url(gw)) as http:
            return await http.post(
                f"/units/{unit}/status",
                json={"status": status, "reported_at": reported_at},
                headers={"Authorization": f"Bearer {tablet}"},
            )

    at = datetime.now(UTC)
    taken = await tablet_reports("en_route", at.isoformat())
    assert taken.status_code == 202, taken.text
    await eventually(lambda: status_is("en_route"), timeout=30, what="en route by the gateway")

    async def on_board() -> bool | None:
        rows = await gw.fetch(
            "SELECT status, status_at FROM readmodel.units WHERE unit_id = $1", unit
        )
        return True if [tuple(r) for r in rows] == [("en_route", at)] else None

    await eventually(on_board, timeout=30, what="the report on the board")
    # The tablet sends the same report again (its first answer came too late): taken, not
    # refused as a repeat of itself.
    again = await tablet_reports("en_route", at.isoformat())
    assert again.status_code == 202, again.text
    # The same report again, the broker's way, then the next one behind it on the unit's
    # partition: once that is applied, the copy has been read.
    await report_status(
        gw.settings,
        unit_id=unit,
        status=UnitStatus.EN_ROUTE,
        incident_id=found.incident_id,
        reported_at=at,
    )
    await report_status(
        gw.settings, unit_id=unit, status=UnitStatus.ON_SCENE, incident_id=found.incident_id
    )
    await eventually(lambda: status_is("on_scene"), timeout=30, what="on scene by the broker")

    changes = [
        e.payload.status
        for e in await gw.events(gw.topics.unit_status)
        if isinstance(e.payload, UnitStatusChangedV1) and e.payload.unit_id == unit
    ]
    assert changes == [UnitStatus.EN_ROUTE, UnitStatus.ON_SCENE]
    dead = [
        e.payload.reason
        for e in (await gw.events(gw.topics.deadletter))[dead_before:]
        if isinstance(e.payload, DeadLetterV1)
    ]
    assert dead == []

    # A time the dispatcher would refuse is refused here too, before anything is sent.
    stale = await tablet_reports("available", "2026-01-01T00:00:00+00:00")
    assert stale.status_code == 409, stale.text
