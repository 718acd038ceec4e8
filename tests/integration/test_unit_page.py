"""The field unit's page on a phone-sized headless browser against the embedded stack: a
crew sees its order, presses only the legal steps, and the incident moves along; nobody
acts for another unit, and only a unit's person sees the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from schemas.events import UnitStatusReportedV1
from schemas.vocabulary import Channel, Priority
from services.clients.operator import new_intake
from services.gateway.settings import GatewaySettings
from services.projector.queries import IncidentView, find_incident
from services.stages import PIPELINE
from tests.conftest import TEST_FLEET, Pipeline, eventually, open_pipeline
from tests.infra import Infra
from tests.integration.test_pages import add_person, base

pytestmark = pytest.mark.integration

PASSWORD = "sandi-kru-119"
ENABLED = "bs => bs.filter(b => !b.disabled).map(b => b.dataset.status)"
# Where the crew's phone says it is (near Limpung).
PHONE_AT = {"latitude": -7.03, "longitude": 109.92, "accuracy": 12}


@pytest.fixture(scope="module")
async def site(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    """The five stages and the gateway, once for the module."""
    async with open_pipeline(
        infra,
        fleet=TEST_FLEET,
        home=tmp_path_factory.mktemp("unit-page") / ".siaga",
        stages=(*PIPELINE, "gateway"),
        stage_settings={"gateway": {"settings": GatewaySettings(port=0, burst=1000)}},
    ) as pipe:
        yield pipe


async def incident_now(site: Pipeline, incident: IncidentView) -> IncidentView:
    async with site.db.acquire() as conn:
        await conn.execute("SET search_path TO readmodel")
        found = await find_incident(conn, str(incident.incident_id))
    assert found is not None
    return found


async def reports(site: Pipeline) -> list[UnitStatusReportedV1]:
    return [
        e.payload
        for e in await site.events(site.topics.unit_status)
        if isinstance(e.payload, UnitStatusReportedV1)
    ]


async def press(page: Any, site: Pipeline, incident: IncidentView, step: str) -> list[str]:
    """Press a step; once the page shows it (the dispatcher accepted it and the projector
    has it) and the incident moved along with it, the buttons enabled now."""
    await page.click(f"button[data-status={step}]")
    await page.wait_for_selector(f".unit-head[data-status={step}]", timeout=15_000)

    async def moved() -> bool:
        return (await incident_now(site, incident)).status == step

    await eventually(moved, what=f"the incident {step}")
    enabled: list[str] = await page.eval_on_selector_all("button[data-status]", ENABLED)
    return enabled


async def test_a_crew_follows_its_order_on_a_phone(site: Pipeline, browser: Any) -> None:
    intake = new_intake(
        channel=Channel.PSC119,
        text="bapak saya pingsan tidak sadar, telepon saya 081234567890",
        place_hint="Limpung",
    )
    await site.publish([intake])
    incident = await site.incident_for_intake(intake.intake_id)
    assert incident.priority == Priority.P1.value
    unit = incident.units[0].unit_id
    other = next(u.unit_id for u in TEST_FLEET if u.unit_id != unit)
    for name, unit_id in (("kru-1", unit), ("kru-lain", other)):
        code, _, err = await add_person(site, name, PASSWORD, "--role", "unit", "--unit", unit_id)
        assert code == 0, err

    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        geolocation=PHONE_AT,
        permissions=["geolocation"],
    )
    page = await context.new_page()
    try:
        await page.goto(f"{base(site)}/unit")
        assert page.url.endswith("/login?next=/unit")
        await page.fill("input[name=username]", "kru-1")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/unit")
        order = page.locator("article.order")
        said = await order.inner_text()
        assert str(incident.incident_id)[:8] in said and "Limpung" in said
        assert "Medis" in said and "garis lurus" in said and "menit" in said
        assert "081234567890" not in await page.content()  # the caller's number is masked
        assert "P1" in (await order.get_attribute("class") or "")
        # Nothing sticks out of a 390 px screen.
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await page.wait_for_function(
            "document.getElementById('checked').textContent.includes('WIB')"
        )

        enabled = await page.eval_on_selector_all("button[data-status]", ENABLED)
        assert enabled[0] == "acknowledged" and "available" in enabled

        assert await press(page, site, incident, "acknowledged") == [
            "en_route",
            "on_scene",
            "transporting",
            "at_hospital",
            "available",
        ]
        assert await press(page, site, incident, "en_route") == [
            "on_scene",
            "transporting",
            "at_hospital",
            "available",
        ]
        assert await press(page, site, incident, "on_scene") == [
            "transporting",
            "at_hospital",
            "available",
        ]

        # The server refuses what the page does not offer, and another unit's report.
        csrf = await page.get_attribute('meta[name="csrf-token"]', "content")
        post = page.request.post
        headers = {"X-CSRF-Token": csrf or ""}
        back = await post(
            f"{base(site)}/unit/status",
            data={"unit_id": unit, "status": "acknowledged"},
            headers=headers,
        )
        assert back.status == 409 and "acknowledged after on_scene" in (await back.json())["error"]
        foreign = await post(
            f"{base(site)}/unit/status",
            data={"unit_id": other, "status": "en_route"},
            headers=headers,
        )
        assert foreign.status == 403 and unit in (await foreign.json())["error"]
        forged = await post(
            f"{base(site)}/unit/status", data={"unit_id": unit, "status": "available"}
        )
        assert forged.status == 403  # no form token

        # A dropped connection is said, and the page comes back by itself.
        await context.set_offline(True)
        await page.wait_for_selector("#offline", state="visible", timeout=10_000)
        await context.set_offline(False)
        await page.wait_for_selector("#offline", state="hidden", timeout=10_000)

        await page.click("button[data-status=available]")
        await page.wait_for_selector(".no-order", timeout=15_000)
        assert await page.eval_on_selector_all("button[data-status]", ENABLED) == []

        async def resolved() -> IncidentView | None:
            found = await incident_now(site, incident)
            return found if found.status == "resolved" else None

        await eventually(resolved, what="the incident resolved by its only unit")
        await page.goto(f"{base(site)}/unit?lang=en")
        assert "No order right now." in await page.inner_text("#unit")
    finally:
        await context.close()

    sent = [r for r in await reports(site) if r.unit_id in (unit, other)]
    assert [r.status.value for r in sent] == ["acknowledged", "en_route", "on_scene", "available"]
    assert all(r.unit_id == unit and r.note and "kru-1" in r.note for r in sent)
    assert all(r.incident_id == incident.incident_id for r in sent)
    located = [r.location for r in sent if r.location is not None]
    assert located and abs(located[-1].lat - PHONE_AT["latitude"]) < 1e-6


async def test_only_a_units_person_signed_in_sees_the_page(site: Pipeline) -> None:
    code, _, err = await add_person(site, "pengamat", PASSWORD, "--role", "viewer")
    assert code == 0, err
    async with httpx.AsyncClient(base_url=base(site)) as client:
        nobody = await client.get("/unit")
        assert nobody.status_code == 303 and nobody.headers["location"] == "/login?next=/unit"
        assert (await client.get("/unit/state")).status_code == 401
        signed = await client.post("/login", data={"username": "pengamat", "password": PASSWORD})
        assert signed.status_code == 303
        assert (await client.get("/unit")).status_code == 403
        csrf = await site.fetchval(
            "SELECT csrf FROM gateway.sessions s JOIN gateway.people p USING (person_id) "
            "WHERE p.name = 'pengamat'"
        )
        refused = await client.post(
            "/unit/status",
            json={"unit_id": "POL-BATANG", "status": "en_route"},
            headers={"X-CSRF-Token": csrf},
        )
        assert refused.status_code == 403
