"""Open311 GeoReport v2 over real HTTP, on the real broker and database: the services, a
complaint reported, triaged, answered and closed by its agency with the real CLI, and
searched; every refusal in the spec's format, publishing nothing."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.gateway.settings import GatewaySettings
from services.stages import PIPELINE
from tests.conftest import Pipeline, eventually, open_pipeline, siaga_cli
from tests.infra import Infra

pytestmark = pytest.mark.integration

V2 = "/open311/v2"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@pytest.fixture(scope="module")
async def gw(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    """The five stages and the gateway, once for the module."""
    from tests.conftest import TEST_FLEET

    async with open_pipeline(
        infra,
        fleet=TEST_FLEET,
        home=tmp_path_factory.mktemp("open311") / ".siaga",
        stages=(*PIPELINE, "gateway"),
        stage_settings={
            "gateway": {"settings": GatewaySettings(port=0, key_cache_s=0, burst=1000)}
        },
    ) as pipe:
        yield pipe


@pytest.fixture(scope="module")
async def http(gw: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    base = gw.runtimes["gateway"][0].api_url
    assert base
    async with httpx.AsyncClient(base_url=f"{base}{V2}") as client:
        yield client


async def new_key(pipe: Pipeline, name: str, *scopes: str) -> str:
    args = ["apikey", "create", name]
    for scope in scopes:
        args += ["--scope", scope]
    done = await siaga_cli(pipe.settings, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def xml(answer: httpx.Response) -> ET.Element:
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    assert answer.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(answer.content)


def as_json(answer: httpx.Response) -> Any:
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    return answer.json()


def fields_of(element: ET.Element) -> dict[str, str | None]:
    return {child.tag: child.text for child in element}


async def published(pipe: Pipeline) -> int:
    return int(await pipe.fetchval("SELECT count(*) FROM gateway.intakes"))


async def one(http: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    answer = await http.get(f"/requests/{request_id}.json")
    assert answer.status_code == 200, answer.text
    (found,) = as_json(answer)
    return dict(found)


async def test_services_in_json_and_xml(http: httpx.AsyncClient) -> None:
    listed = as_json(await http.get("/services.json", params={"jurisdiction_id": "batang"}))
    by_code = {s["service_code"]: s for s in listed}
    assert by_code["infrastructure"]["group"] == "DPUPR"
    assert by_code["infrastructure"]["metadata"] is False
    assert {s["type"] for s in listed} == {"realtime"}
    root = xml(await http.get("/services.xml"))
    assert root.tag == "services"
    assert [fields_of(s)["service_code"] for s in root.findall("service")] == list(by_code)
    assert fields_of(root[0])["metadata"] == "false"
    definition = as_json(await http.get("/services/utilities.json"))
    assert definition == {"service_code": "utilities", "attributes": []}
    root = xml(await http.get("/services/utilities.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "utilities"
    missing = await http.get("/services/fire.json")
    assert missing.status_code == 404
    assert as_json(missing) == [
        {"code": 404, "description": "service_code 'fire': no such service"}
    ]
    missing = await http.get("/services/fire.xml")
    assert missing.status_code == 404 and xml(missing).find("error/code").text == "404"  # type: ignore[union-attr]
    for path in ("/services.yaml", "/services"):  # no format: the spec's required XML
        answer = await http.get(path)
        assert answer.status_code == 404 and xml(answer).tag == "errors", path
    tokens = await http.get("/tokens/1.json")  # no batch services here, so no tokens
    assert tokens.status_code == 404 and "no such resource" in as_json(tokens)[0]["description"]


async def test_a_complaint_from_report_to_closing(gw: Pipeline, http: httpx.AsyncClient) -> None:
    key = await new_key(gw, "citizen-app", "open311")
    form = {
        "api_key": key,
        "jurisdiction_id": "batangkab.go.id",
        "service_code": "infrastructure",
        "address_string": "depan balai desa Kandeman, Kecamatan Kandeman",
        "description": "Lampu jalan mati sudah seminggu, gelap sekali kalau malam",
        "first_name": "Siti",
        "last_name": "Aminah",
        "phone": "0812-3456-7890",
        "email": "siti@example.id",
        "account_id": "acc-42",
        "media_url": "https://example.id/foto/lampu.jpg",
    }
    created = await http.post("/requests.xml", data=form)
    assert created.status_code == 200, created.text
    root = xml(created)
    assert root.tag == "service_requests"
    answer = fields_of(root.find("request"))  # type: ignore[arg-type]
    request_id = answer["service_request_id"]
    assert request_id and uuid.UUID(request_id)
    assert answer["account_id"] == "acc-42" and answer["service_notice"]

    # On the log: an intake like any other, the citizen's own words.
    intakes = [
        e.payload
        for e in await gw.events(gw.topics.intake_received)
        if str(e.payload.intake_id) == request_id
    ]
    assert len(intakes) == 1
    intake = intakes[0]
    assert intake.channel.value == "web" and intake.text == form["description"]
    assert intake.place_hint == form["address_string"]
    assert (intake.caller.phone, intake.caller.name) == ("+6281234567890", "Siti Aminah")

    async def queued() -> dict[str, Any] | None:
        found = await one(http, request_id)
        return found if found["expected_datetime"] else None

    shown = await eventually(queued, timeout=30, what="the request in DPUPR's queue")
    assert (shown["status"], shown["agency_responsible"]) == ("open", "DPUPR")
    assert shown["service_code"] == "infrastructure" and shown["service_name"]
    assert shown["description"] == form["description"]
    assert shown["media_url"] == form["media_url"]
    assert shown["address"] == form["address_string"]
    assert "DPUPR" in shown["service_notice"]
    requested = datetime.fromisoformat(shown["requested_datetime"])
    expected = datetime.fromisoformat(shown["expected_datetime"])
    assert timedelta(days=3) - timedelta(minutes=1) <= expected - requested <= timedelta(days=3)
    assert "email" not in shown and "phone" not in shown

    # The agency answers, then closes, with the real command line.
    done = await siaga_cli(
        gw.settings, "workorder", "answer", request_id, "--text", "Petugas datang besok pagi"
    )
    assert done.returncode == 0, done.stderr

    async def answered() -> dict[str, Any] | None:
        found = await one(http, request_id)
        return found if found["status_notes"] else None

    shown = await eventually(answered, timeout=30, what="the agency's answer")
    assert (shown["status"], shown["status_notes"]) == ("open", "Petugas datang besok pagi")
    done = await siaga_cli(
        gw.settings, "workorder", "close", request_id, "--text", "Lampu sudah diganti"
    )
    assert done.returncode == 0, done.stderr

    async def closed() -> dict[str, Any] | None:
        found = await one(http, request_id)
        return found if found["status"] == "closed" else None

    shown = await eventually(closed, timeout=30, what="the request closed")
    assert shown["status_notes"] == "Lampu sudah diganti"
    assert shown["updated_datetime"] >= shown["requested_datetime"]
    root = xml(await http.get(f"/requests/{request_id}.xml"))
    assert root.tag == "service_requests"
    assert fields_of(root.find("request"))["status"] == "closed"  # type: ignore[arg-type]

    await searches(gw, http, key, request_id)


async def searches(gw: Pipeline, http: httpx.AsyncClient, key: str, closed_id: str) -> None:
    """GET requests with the spec's filters, around one closed request and a new one."""
    created = await http.post(
        "/requests.json",
        data={"api_key": key, "service_code": "environment", "lat": "-6.925", "long": "109.765"},
    )
    assert created.status_code == 200, created.text
    (answer,) = as_json(created)
    open_id = answer["service_request_id"]
    assert answer["account_id"] is None
    # Not triaged yet, or triaged: open either way, the notice saying where it is.
    assert (await one(http, open_id))["status"] == "open"

    async def ids(**params: str) -> list[str]:
        found = await http.get("/requests.json", params=params)
        assert found.status_code == 200, found.text
        return [r["service_request_id"] for r in as_json(found)]

    assert await ids() == [open_id, closed_id]  # the newest first
    assert await ids(status="closed") == [closed_id]
    assert await ids(status="open") == [open_id]
    assert await ids(service_code="environment,utilities") == [open_id]
    now = datetime.now(UTC)
    assert await ids(start_date=(now + timedelta(hours=1)).isoformat()) == []
    assert await ids(end_date=(now - timedelta(hours=1)).isoformat()) == []
    assert await ids(service_request_id=f"{closed_id},{uuid.uuid4()}", status="open") == [closed_id]
    root = xml(await http.get("/requests.xml", params={"status": "open,closed"}))
    assert [r.findtext("service_request_id") for r in root.findall("request")] == [
        open_id,
        closed_id,
    ]
    too_long = await http.get(
        "/requests.json",
        params={"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-06-01T00:00:00Z"},
    )
    assert too_long.status_code == 400 and "90 days" in as_json(too_long)[0]["description"]


async def test_refusals_in_the_specs_format_publish_nothing(
    gw: Pipeline, http: httpx.AsyncClient
) -> None:
    key = await new_key(gw, "app-refused", "open311")
    intake_only = await new_key(gw, "intake-only", "intake")
    good = {"service_code": "utilities", "address_string": "Tegalsari, Kandeman"}
    before = await published(gw)
    cases: list[tuple[str, dict[str, str] | bytes, dict[str, str], int, str]] = [
        ("/requests.json", good, {}, 403, "api_key refused: an API key is needed"),
        ("/requests.json", {**good, "api_key": "sgk_made-up"}, {}, 403, "unknown or revoked"),
        ("/requests.json", {**good, "api_key": intake_only}, {}, 403, "no open311 scope"),
        ("/requests.json", {**good, "api_key": key, "service_code": "fire"}, {}, 404, "fire"),
        ("/requests.json", {"api_key": key, "service_code": "utilities"}, {}, 400, "location"),
        ("/requests.json", {**good, "api_key": key, "lat": "x"}, {}, 400, "lat:"),
        ("/requests.json", {**good, "api_key": key, "colour": "red"}, {}, 400, "colour"),
        ("/requests.json", b"api_key=" + key.encode() + b"&%zz", FORM, 400, "well-formed"),
        (
            "/requests.json",
            b'{"service_code": "x"}',
            {"Content-Type": "application/json"},
            400,
            "x-www",
        ),
        ("/requests.yaml", {**good, "api_key": key}, {}, 404, "json and xml"),
    ]
    for path, body, headers, status, message in cases:
        if isinstance(body, bytes):
            answer = await http.post(path, content=body, headers=headers)
        else:
            answer = await http.post(path, data=body)
        assert answer.status_code == status, (path, body, answer.text)
        if path.endswith(".json"):
            errors = [(e["code"], e["description"]) for e in as_json(answer)]
        else:
            found = xml(answer).findall("error")
            errors = [(int(e.findtext("code") or 0), e.findtext("description")) for e in found]
        assert {code for code, _ in errors} == {status}, errors
        assert any(message in str(description) for _, description in errors), errors
    refused = await http.post("/requests.xml", data=good)
    assert refused.status_code == 403 and xml(refused).findtext("error/code") == "403"
    unknown = await http.get(f"/requests/{uuid.uuid4()}.json")
    assert unknown.status_code == 404 and "no such request" in as_json(unknown)[0]["description"]
    assert (await http.get("/requests/638344.xml")).status_code == 404
    assert await published(gw) == before
