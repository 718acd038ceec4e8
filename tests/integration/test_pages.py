"""The pages in a real headless browser against the embedded stack: signing in and out,
who may see what."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.gateway.settings import GatewaySettings
from services.stages import PIPELINE
from tests.conftest import TEST_FLEET, Pipeline, cli_env, open_pipeline
from tests.infra import Infra

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def site(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    """The five stages and the gateway, once for the module."""
    async with open_pipeline(
        infra,
        fleet=TEST_FLEET,
        home=tmp_path_factory.mktemp("pages") / ".siaga",
        stages=(*PIPELINE, "gateway"),
        stage_settings={"gateway": {"settings": GatewaySettings(port=0)}},
    ) as pipe:
        yield pipe


def base(pipe: Pipeline) -> str:
    return str(pipe.runtimes["gateway"][0].api_url)


async def add_person(pipe: Pipeline, name: str, password: str, *args: str) -> Any:
    """`siaga user add` as an administrator runs it, the password on standard input."""
    import asyncio
    import subprocess
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        "user",
        "add",
        name,
        *args,
        "--password-stdin",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(pipe.settings),
    )
    out, err = await proc.communicate(password.encode() + b"\n")
    return proc.returncode, out.decode(), err.decode()


async def test_a_person_signs_in_and_out_in_a_browser(site: Pipeline, browser: Any) -> None:
    code, out, err = await add_person(site, "sari", "rahasia-sekali", "--role", "supervisor")
    assert code == 0 and "sari added as supervisor" in out, err
    code, _, err = await add_person(site, "sari", "lain-lagi-123", "--role", "viewer")
    assert code == 2 and "exists already" in err
    code, _, err = await add_person(site, "crew", "rahasia-sekali", "--role", "unit")
    assert code == 2 and "needs --unit" in err
    code, _, err = await add_person(site, "pendek", "short", "--role", "viewer")
    assert code == 2 and "at least 8" in err

    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(f"{base(site)}/login?next=/whoami")
        assert await page.locator("html").get_attribute("lang") == "id"
        await page.fill("input[name=username]", "sari")
        await page.fill("input[name=password]", "salah-sandi")
        await page.click("button[type=submit]")
        assert "salah" in (await page.inner_text("[role=alert]"))
        await page.fill("input[name=username]", "sari")
        await page.fill("input[name=password]", "rahasia-sekali")
        await page.click("button[type=submit]")
        await page.wait_for_url("**/whoami")
        who = json.loads(await page.inner_text("body"))
        assert who == {"name": "sari", "role": "supervisor", "unit_id": None, "agency": None}
        cookies = {c["name"]: c for c in await context.cookies()}
        assert (
            cookies["siaga_session"]["httpOnly"]
            and cookies["siaga_session"]["sameSite"] == "Strict"
        )
        # English on request, and signing out ends the session.
        await page.goto(f"{base(site)}/login?lang=en")
        assert await page.inner_text("h1") == "Sign in"
        token = cookies["siaga_session"]["value"]
        assert await site.fetchval("SELECT count(*) FROM gateway.sessions") >= 1
        csrf = await site.fetchval(
            "SELECT csrf FROM gateway.sessions s JOIN gateway.people p USING (person_id) "
            "WHERE p.name = 'sari'"
        )
        forged = await page.request.post(f"{base(site)}/logout", form={"csrf": "wrong"})
        assert forged.status == 403
        done = await page.request.post(f"{base(site)}/logout", form={"csrf": csrf})
        assert done.ok
        again = await page.request.get(f"{base(site)}/whoami")
        assert again.status == 401
        assert token  # the cookie the browser held no longer opens anything
    finally:
        await context.close()


async def test_a_call_taker_sees_triage_while_typing_and_sends_the_intake(
    site: Pipeline, browser: Any
) -> None:
    code, _, err = await add_person(site, "dewi", "rahasia-sekali", "--role", "call-taker")
    assert code == 0, err
    code, _, err = await add_person(site, "tamu", "rahasia-sekali", "--role", "viewer")
    assert code == 0, err
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    page = await context.new_page()
    try:
        await page.goto(f"{base(site)}/intake")
        await page.wait_for_url("**/login?next=/intake")  # nobody signed in yet
        await page.fill("input[name=username]", "dewi")
        await page.fill("input[name=password]", "rahasia-sekali")
        await page.click("button[type=submit]")
        await page.wait_for_url("**/intake")
        await page.select_option("select[name=channel]", "call112")
        await page.fill("input[name=phone]", "+6281234567890")
        await page.type(
            "textarea[name=text]", "rumah terbakar di desa Kandeman, ada anak masih di dalam"
        )
        await page.wait_for_function(
            "document.getElementById('p-priority').textContent === 'P1'", timeout=10_000
        )
        assert await page.inner_text("#p-category") == "fire"
        assert "Kandeman" in await page.inner_text("#p-place")
        assert await page.locator("#p-questions li").count() >= 1
        await page.click("#intake button[type=submit]")
        await page.wait_for_function(
            "document.getElementById('sent').dataset.intake !== undefined", timeout=10_000
        )
        intake_id = await page.get_attribute("#sent", "data-intake")
        assert intake_id
        import uuid

        incident = await site.incident_for_intake(uuid.UUID(intake_id), timeout=30)
        assert incident.category == "fire" and incident.priority == "P1"
        operator = await site.fetchval(
            "SELECT operator_id FROM readmodel.intakes WHERE intake_id = $1", uuid.UUID(intake_id)
        )
        assert operator == "dewi"  # attributed to the call-taker
    finally:
        await context.close()
    # A viewer may not open the form nor send through it.
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(f"{base(site)}/login?next=/intake")
        await page.fill("input[name=username]", "tamu")
        await page.fill("input[name=password]", "rahasia-sekali")
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        refused = await page.request.get(f"{base(site)}/intake")
        assert refused.status == 403
        sent = await page.request.post(f"{base(site)}/intake", data={"channel": "web", "text": "x"})
        assert sent.status == 403
    finally:
        await context.close()
