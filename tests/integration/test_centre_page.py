"""The command-centre page in a real headless browser against the embedded stack: a P1
arrives on the map and in the queues without a reload, its detail shows its units and a
masked caller, a supervisor lowers it from the review queue (a command in their name); an
agency sees and answers only its own work orders; a viewer cannot act."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from schemas.commands import AnswerWorkOrderV1, ReviewTriageV1
from schemas.events import TriageReviewedV1
from schemas.vocabulary import Channel, Priority
from services.clients.operator import new_intake
from services.gateway.people import Role, add_person
from tests.conftest import Pipeline, eventually, gateway_url, siaga_cli, with_gateway
from tests.infra import Infra

pytestmark = pytest.mark.integration

PASSWORD = "rahasia-sekali"
DESK = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
async def centre(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    """The five stages and the gateway, once for the module."""
    async with with_gateway(infra, home=tmp_path_factory.mktemp("centre") / ".siaga") as pipe:
        yield pipe


def base(pipe: Pipeline) -> str:
    return gateway_url(pipe)


async def person(pipe: Pipeline, name: str, role: Role, agency: str | None = None) -> None:
    """A person as `siaga user add` stores them (the CLI is tested in test_pages)."""
    async with pipe.db.acquire() as conn:
        await conn.execute("SET search_path TO gateway")
        await add_person(
            conn, name=name, role=role, password=PASSWORD, now=datetime.now(UTC), agency=agency
        )


async def signed_in(
    browser: Any, pipe: Pipeline, name: str, *, via: str | None = None
) -> tuple[Any, Any]:
    """A desk-sized browser window with `name` signed in, on the command centre (reached
    at `via` when given)."""
    site = via or base(pipe)
    context = await browser.new_context(viewport=DESK)
    page = await context.new_page()
    await page.goto(f"{site}/login?next=/")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{site}/")
    await page.wait_for_selector("#map path.area.kecamatan", state="attached")
    await page.wait_for_selector("#link.online")
    return context, page


async def post_action(page: Any, pipe: Pipeline, action: str, body: dict[str, Any]) -> Any:
    """An action as the page's script sends it (the session's cookie and form token)."""
    csrf = await page.get_attribute("#centre", "data-csrf")
    return await page.request.post(
        f"{base(pipe)}/centre/actions/{action}",
        data=json.dumps(body),
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
    )


async def commands_of(pipe: Pipeline, kind: type, incident_id: Any) -> list[Any]:
    return [
        e
        for e in await pipe.events(pipe.topics.dispatch_commands)
        if isinstance(e.payload, kind) and e.payload.incident_id == incident_id
    ]


async def test_a_p1_arrives_live_shows_its_units_and_a_call_taker_lowers_it(
    centre: Pipeline, browser: Any
) -> None:
    await person(centre, "sari", Role.CALL_TAKER)  # a call-taker may review triage
    context, page = await signed_in(browser, centre, "sari")
    try:
        assert await page.locator("html").get_attribute("lang") == "id"
        assert await page.locator("#map path.area.desa").count() >= 240
        await page.evaluate("window.notReloaded = true")
        intake = new_intake(
            channel=Channel.PSC119,
            text="pak tolong bapak saya sesak napas di desa Sempu Limpung",
            phone="+6281355550001",
        )
        await centre.publish([intake])
        view = await centre.incident_for_intake(intake.intake_id, with_units=1)
        iid, unit = str(view.incident_id), view.units[0].unit_id
        shown_after = time.monotonic()
        dot = f'#map g.incident.P1[data-incident="{iid}"]'
        await page.wait_for_selector(dot, timeout=5000)
        await page.wait_for_selector(f'#review li[data-incident="{iid}"]', timeout=5000)
        await page.wait_for_selector(f'#active li[data-incident="{iid}"]', timeout=5000)
        # Live: there within a few seconds of the read model, and the page never reloaded.
        assert time.monotonic() - shown_after < 5
        assert await page.evaluate("window.notReloaded") is True
        assert "P1" in await page.inner_text("#c-p1-count")

        await page.click(dot)
        row = page.locator(f'#detail tr[data-unit="{unit}"]')
        await row.wait_for()
        assert "mnt" in await row.locator("td.eta").inner_text()  # an ETA in minutes
        detail = await page.inner_text("#detail")
        assert "+6281" in detail and "01" in detail and "+6281355550001" not in detail
        assert "WIB" in detail

        await page.click(f'#review li[data-incident="{iid}"] button[data-priority="P2"]')

        async def reviewed() -> list[Any] | None:
            found = [
                e.payload
                for e in await centre.events(centre.topics.incident_events)
                if isinstance(e.payload, TriageReviewedV1) and str(e.payload.incident_id) == iid
            ]
            return found or None

        (event,) = await eventually(reviewed, what="the review in the log")
        assert (event.reviewed_by, event.priority, event.decision) == (
            "sari",
            Priority.P2,
            "lowered",
        )
        (command,) = await commands_of(centre, ReviewTriageV1, view.incident_id)
        assert command.envelope.source == "/siaga/gateway/centre"
        assert command.payload.requested_by == "sari"
        # The page follows by itself: out of the queue, a P2 on the map.
        await page.wait_for_selector(f'#review li[data-incident="{iid}"]', state="detached")
        await page.wait_for_selector(f'#map g.incident.P2[data-incident="{iid}"]')
        assert await page.evaluate("window.notReloaded") is True
    finally:
        await context.close()


async def test_a_report_from_the_form_reaches_the_map_and_the_crew_moves_it_on_screen(
    centre: Pipeline, browser: Any
) -> None:
    """The whole desk at once: a call-taker's form, the supervisor's screen, a crew's phone."""
    await person(centre, "wati", Role.SUPERVISOR)
    await person(centre, "dodi", Role.CALL_TAKER)
    watch, screen = await signed_in(browser, centre, "wati")
    desk, form = await signed_in(browser, centre, "dodi")
    phone = await browser.new_context(viewport={"width": 390, "height": 844})
    try:
        await form.goto(f"{base(centre)}/intake")
        await form.type(
            "textarea[name=text]", "tolong ada orang tertabrak truk di desa Kandeman, tidak sadar"
        )
        await form.wait_for_function(
            "document.getElementById('p-priority').textContent === 'P1'", timeout=10_000
        )
        await form.click("#intake button[type=submit]")
        await form.wait_for_selector("#sent[data-intake]", timeout=10_000)
        intake_id = str(await form.get_attribute("#sent", "data-intake"))
        import uuid

        view = await centre.incident_for_intake(uuid.UUID(intake_id), with_units=1, timeout=30)
        iid, unit = str(view.incident_id), view.units[0].unit_id
        # On the supervisor's screen, live: on the map, in the list, with its unit.
        dot = f'#map g.incident.P1[data-incident="{iid}"]'
        await screen.wait_for_selector(dot, timeout=10_000)
        await screen.wait_for_selector(f'#active li[data-incident="{iid}"]', timeout=10_000)
        await screen.click(dot)
        cell = f'#detail tr[data-unit="{unit}"] td.st'
        await screen.wait_for_selector(cell, timeout=10_000)

        # The crew of that unit moves it along from the phone; the screen follows.
        async with centre.db.acquire() as conn:
            await conn.execute("SET search_path TO gateway")
            await add_person(
                conn,
                name="kru-x",
                role=Role.UNIT,
                password=PASSWORD,
                now=datetime.now(UTC),
                unit_id=unit,
            )
        crew = await phone.new_page()
        await crew.goto(f"{base(centre)}/login?next=/unit")
        await crew.fill("input[name=username]", "kru-x")
        await crew.fill("input[name=password]", PASSWORD)
        await crew.click("button[type=submit]")
        await crew.wait_for_url("**/unit")
        for step, shown in (("en_route", "busy"), ("on_scene", "scene")):
            await crew.click(f"button[data-status={step}]")
            await crew.wait_for_selector(f".unit-head[data-status={step}]", timeout=15_000)
            await screen.wait_for_selector(f"{cell}.{shown}", timeout=10_000)
        await screen.wait_for_function(
            f"document.querySelector('{cell}').textContent.includes('di lokasi')", timeout=10_000
        )
        # Done: the incident's units are free again for the tests after this one.
        done = await siaga_cli(centre.settings, "incident", "cancel", iid, "--reason", "tes")
        assert done.returncode == 0, done.stderr

        async def released() -> bool:
            board = await centre.fetch(
                "SELECT count(*) AS busy FROM readmodel.units WHERE incident_id = $1",
                view.incident_id,
            )
            return board[0]["busy"] == 0

        await eventually(released, what="the incident's units released")
    finally:
        await phone.close()
        await desk.close()
        await watch.close()


async def test_an_agency_sees_and_answers_only_its_own_work_orders_and_a_viewer_cannot_act(
    centre: Pipeline, browser: Any
) -> None:
    await person(centre, "dpupr-1", Role.AGENCY, agency="DPUPR")
    await person(centre, "vina", Role.VIEWER)
    road = new_intake(
        channel=Channel.WHATSAPP,
        text="jalan berlubang besar di depan SD, sudah sebulan",
        place_hint="Tulis",
    )
    rubbish = new_intake(
        channel=Channel.WHATSAPP, text="sampah menumpuk di pinggir sungai, bau sekali",
        place_hint="Batang",
    )  # fmt: skip
    await centre.publish([road, rubbish])
    ours = (await centre.incident_for_intake(road.intake_id, with_units=0)).incident_id
    theirs = (await centre.incident_for_intake(rubbish.intake_id, with_units=0)).incident_id

    async def both_orders() -> bool:
        return bool(await centre.fetchval("SELECT count(*) = 2 FROM readmodel.work_orders"))

    await eventually(both_orders, what="both work orders in the read model")

    context, page = await signed_in(browser, centre, "dpupr-1")
    try:
        await page.wait_for_selector(f'#orders li[data-incident="{ours}"]')
        assert await page.locator(f'#orders li[data-incident="{theirs}"]').count() == 0
        assert await page.locator("#review").count() == 0  # no triage queue for an agency
        gone = await page.request.get(f"{base(centre)}/centre/incidents/{theirs}")
        assert gone.status == 403
        refused = await post_action(
            page,
            centre,
            "answer-work-order",
            {"incident_id": str(theirs), "response": "bukan kami"},
        )
        assert refused.status == 403
        review = await post_action(page, centre, "review", {"incident_id": str(ours)})
        assert review.status == 403

        await page.click(f'#orders li[data-incident="{ours}"]')
        await page.fill("#detail textarea[name=response]", "Sudah dijadwalkan perbaikan")
        await page.click("#detail button.answer-work-order")

        async def answered() -> list[Any] | None:
            return await commands_of(centre, AnswerWorkOrderV1, ours) or None

        (command,) = await eventually(answered, what="the answer in the log")
        assert command.payload.requested_by == "dpupr-1"
        assert command.payload.response == "Sudah dijadwalkan perbaikan"
        assert await commands_of(centre, AnswerWorkOrderV1, theirs) == []
    finally:
        await context.close()

    context, page = await signed_in(browser, centre, "vina")
    try:
        assert await page.get_attribute("#centre", "data-actions") == ""
        await page.wait_for_selector(f'#orders li[data-incident="{theirs}"]')
        forbidden = await post_action(
            page, centre, "close-incident", {"incident_id": str(theirs), "note": "x"}
        )
        assert forbidden.status == 403
        assert (await page.request.get(f"{base(centre)}/centre/board")).ok
    finally:
        await context.close()
    # Nobody signed in: to the sign-in form, and no data nor stream.
    async with httpx.AsyncClient(base_url=base(centre)) as http:
        home = await http.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/login?next=/"
        assert (await http.get("/centre/board")).status_code == 401
        assert (await http.get("/centre/events")).status_code == 401
        assert (await http.get(f"/centre/incidents/{ours}")).status_code == 401
        outlines = await http.get("/centre/outlines.json")  # public boundaries, cached
        assert outlines.status_code == 200 and len(outlines.json()["areas"]) == 264
        again = await http.get(
            "/centre/outlines.json", headers={"If-None-Match": outlines.headers["etag"]}
        )
        assert again.status_code == 304


class Cable:
    """A TCP relay between the browser and the gateway that the test cuts and mends, as a
    network drop would (established connections die, new ones are refused)."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.host, self.target_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.port = 0
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def mend(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.links):
            writer.transport.abort()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.links |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self.links -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


async def test_the_page_says_offline_while_cut_off_catches_up_by_itself_and_the_gateway_stops(
    centre: Pipeline, browser: Any
) -> None:
    await person(centre, "dedi", Role.SUPERVISOR)
    cable = Cable(base(centre))
    await cable.mend()
    context, page = await signed_in(browser, centre, "dedi", via=cable.url)
    try:
        await page.evaluate("window.notReloaded = true")
        cable.cut()
        await page.wait_for_selector("#link.offline", timeout=5000)
        intake = new_intake(
            channel=Channel.PSC119, text="anak kejang di rumah", place_hint="Limpung"
        )
        await centre.publish([intake])
        view = await centre.incident_for_intake(intake.intake_id, with_units=1)
        await cable.mend()
        # Back by itself, with what happened meanwhile, and never reloaded.
        await page.wait_for_selector("#link.online", timeout=10_000)
        await page.wait_for_selector(f'#map g.incident[data-incident="{view.incident_id}"]')
        assert await page.evaluate("window.notReloaded") is True
        # The gateway stops at once though the page's event stream is open (this module's
        # last use of it), and the page says so.
        stopping = time.monotonic()
        await asyncio.wait_for(centre.stop_stage("gateway"), timeout=10)
        assert time.monotonic() - stopping < 5
        await page.wait_for_selector("#link.offline", timeout=5000)
    finally:
        await context.close()
        cable.cut()
