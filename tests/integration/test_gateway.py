"""The gateway over real HTTP, on the real broker and database: keys, CloudEvents intake
in both modes, and every refusal publishing nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.events import Caller, IncidentOpenedV1, IntakeReceivedV1
from schemas.vocabulary import Channel
from services.ops.lag import stage_lag
from tests.conftest import (
    Pipeline,
    cli_env,
    eventually,
    gateway_url,
    new_api_key,
    siaga_cli,
    with_gateway,
)
from tests.infra import Infra

pytestmark = pytest.mark.integration

CE = "application/cloudevents+json"
CAP_XSD = Path(__file__).resolve().parents[3] / "shared" / "specs" / "cap12" / "CAP-v1.2.xsd"


@pytest.fixture(scope="module")
async def gw(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    """The five stages and the gateway, once for the module."""
    async with with_gateway(infra, home=tmp_path_factory.mktemp("gw") / ".siaga") as pipe:
        yield pipe


url = gateway_url
new_key = new_api_key


def intake(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "intake_id": str(uuid.uuid4()),
        "channel": "web",
        "received_at": datetime.now(UTC).isoformat(),
        "caller": {"phone": "+6281234567890", "name": None},
        "text": text,
        "place_hint": "Kandeman",
        **extra,
    }


def structured(data: dict[str, Any], **attributes: Any) -> bytes:
    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/test/curl",
        "type": "siaga.intake.received.v1",
        "datacontenttype": "application/json",
        "data": data,
        **attributes,
    }
    return json.dumps(envelope).encode()


async def accepted_count(pipe: Pipeline) -> int:
    return int(await pipe.fetchval("SELECT count(*) FROM gateway.intakes"))


async def test_structured_intake_is_triaged_and_a_resend_is_one_intake(gw: Pipeline) -> None:
    key = await new_key(gw, "curl-test", "intake")
    data = intake("rumah terbakar, api besar, ada anak di dalam")
    body = structured(data)
    async with httpx.AsyncClient(base_url=url(gw)) as http:
        first = await http.post(
            "/events", content=body, headers={"Content-Type": CE, "Authorization": f"Bearer {key}"}
        )
        # The same intake again, under another CloudEvent id: still one intake.
        again = await http.post(
            "/events",
            content=structured(data),
            headers={"Content-Type": CE, "Authorization": f"Bearer {key}"},
        )
    assert first.status_code == 202, first.text
    assert first.json() == {"intake_id": data["intake_id"], "status": "accepted"}
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    incident = await gw.incident_for_intake(uuid.UUID(data["intake_id"]), timeout=30)
    assert incident.category == "fire" and incident.priority == "P1"
    received = [
        e
        for e in await gw.events(gw.topics.intake_received)
        if str(e.payload.intake_id) == data["intake_id"]
    ]
    assert len(received) == 1 and received[0].envelope.source == "/test/curl"
    # The gateway's consumer learnt which incident its intake joined.
    joined = await gw.fetchval(
        "SELECT incident_id FROM gateway.intakes WHERE intake_id = $1", uuid.UUID(data["intake_id"])
    )
    for _ in range(100):
        if joined is not None:
            break
        import asyncio

        await asyncio.sleep(0.1)
        joined = await gw.fetchval(
            "SELECT incident_id FROM gateway.intakes WHERE intake_id = $1",
            uuid.UUID(data["intake_id"]),
        )
    assert joined == incident.incident_id
    # An intake that came another way (a Kafka client) concerns the gateway not at all: its
    # incident's opening leaves no row in the gateway's inbox, its own intake's does.
    elsewhere = IntakeReceivedV1(
        intake_id=uuid.uuid4(),
        channel=Channel.CALL112,
        received_at=datetime.now(UTC),
        caller=Caller(phone="+6281298765432"),
        text="pohon tumbang menutup jalan di Kandeman",
    )
    await gw.publish([elsewhere])
    other = await gw.incident_for_intake(elsewhere.intake_id, with_units=0, timeout=30)
    opened = {
        e.payload.intake_id: e.id
        for e in await gw.events(gw.topics.incident_events)
        if isinstance(e.payload, IncidentOpenedV1)
    }

    async def in_inbox(event_id: str) -> bool:
        return bool(
            await gw.fetchval(
                "SELECT count(*) FROM gateway.inbox WHERE message_key = $1", f"event:{event_id}"
            )
        )

    assert other.incident_id != incident.incident_id
    assert await in_inbox(opened[uuid.UUID(data["intake_id"])])

    async def gateway_through() -> bool:
        rows = await stage_lag(gw.settings, ["gateway"])
        return all(r.lag == 0 for r in rows if r.topic == gw.topics.incident_events)

    await eventually(gateway_through, timeout=30, what="the gateway past every incident event")
    assert not await in_inbox(opened[elsewhere.intake_id])


async def test_binary_mode_intake(gw: Pipeline) -> None:
    key = await new_key(gw, "binary-test", "intake")
    data = intake("lampu jalan mati di depan balai desa")
    async with httpx.AsyncClient(base_url=url(gw)) as http:
        answer = await http.post(
            "/events",
            content=json.dumps(data).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {key}",
                "ce-specversion": "1.0",
                "ce-id": "abc-1",
                "ce-source": "/test/binary",
                "ce-type": "siaga.intake.received.v1",
            },
        )
    assert answer.status_code == 202, answer.text
    incident = await gw.incident_for_intake(uuid.UUID(data["intake_id"]), with_units=0)
    assert incident.category == "infrastructure"


async def test_refusals_publish_nothing(gw: Pipeline) -> None:
    key = await new_key(gw, "refusal-test", "intake")
    eido_only = await new_key(gw, "eido-only", "eido")
    revoked = await new_key(gw, "revoked-test", "intake")
    done = await siaga_cli(gw.settings, "apikey", "revoke", "revoked-test")
    assert done.returncode == 0, done.stderr
    before = await accepted_count(gw)
    good = structured(intake("ada orang pingsan"))
    auth = {"Content-Type": CE, "Authorization": f"Bearer {key}"}
    cases = [
        ({"Content-Type": CE}, good, 401),  # no key
        ({"Content-Type": CE, "Authorization": "Bearer sgk_made-up"}, good, 401),
        ({"Content-Type": CE, "Authorization": f"Bearer {revoked}"}, good, 401),
        ({"Content-Type": CE, "Authorization": f"Bearer {eido_only}"}, good, 403),
        (auth, b'{"specversion": "1.0", "id": ', 400),  # not JSON
        (auth, structured(intake("x"), type="siaga.unit.status.reported.v1"), 400),
        (auth, structured({**intake("x"), "channel": "telegram"}), 400),
        (auth, structured(intake("x"), specversion="0.3"), 400),
        (auth, b"x" * (2 * 1024 * 1024), 413),  # 2 MB
        ({**auth, "Content-Type": "text/plain"}, good, 400),
        ({**auth, "Content-Type": "application/xml"}, b"<intake><text>x</intake>", 400),
    ]
    async with httpx.AsyncClient(base_url=url(gw)) as http:
        for headers, body, status in cases:
            answer = await http.post("/events", content=body, headers=headers)
            assert answer.status_code == status, (headers, body[:60], answer.text)
            assert "error" in answer.json()
    assert await accepted_count(gw) == before


async def test_health_and_docs(gw: Pipeline) -> None:
    async with httpx.AsyncClient(base_url=url(gw)) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json() == {"status": "ready"}
        spec = (await http.get("/openapi.json")).json()
        assert "/events" in spec["paths"]
        assert (await http.get("/docs")).status_code == 200


async def test_eido_of_a_real_incident_validates(gw: Pipeline) -> None:
    from tests.eido import SPEC, check, check_references

    key = await new_key(gw, "eido-reader", "eido")
    intake_only = await new_key(gw, "eido-intake-only", "intake")
    data = intake("tabrakan motor dan truk, satu orang tidak bergerak, berdarah")
    await gw.publish([_as_intake(data)])
    incident = await gw.incident_for_intake(uuid.UUID(data["intake_id"]), timeout=30)
    async with httpx.AsyncClient(base_url=url(gw)) as http:
        answer = await http.get(
            f"/EIDO/{incident.incident_id}", headers={"Authorization": f"Bearer {key}"}
        )
        refused = await http.get(
            f"/EIDO/{incident.incident_id}", headers={"Authorization": f"Bearer {intake_only}"}
        )
        missing = await http.get(
            f"/EIDO/{uuid.uuid4()}", headers={"Authorization": f"Bearer {key}"}
        )
    assert answer.status_code == 200, answer.text
    assert refused.status_code == 403 and missing.status_code == 404
    document = answer.json()
    check_references(document)
    if SPEC.exists():
        check(document)
    text = json.dumps(document)
    assert incident.incident_id.hex in text
    assert "+6281234567890" not in text  # the caller's number is masked
    assert all(u.unit_id in text for u in incident.units)


def _as_intake(data: dict[str, Any]) -> Any:
    from schemas.events import IntakeReceivedV1

    return IntakeReceivedV1.model_validate(data)


async def test_many_at_once_are_committed_together_each_told_its_own(gw: Pipeline) -> None:
    """Requests that arrive together share commits; a resend among them is still one
    intake, and every answer is right for its own request."""
    import asyncio

    key = await new_key(gw, "burst-test", "intake")
    before = await accepted_count(gw)
    unique = [intake(f"laporan serentak {i}: lampu jalan mati") for i in range(40)]
    bodies = [structured(d) for d in unique] + [structured(d) for d in unique[:10]]
    headers = {"Content-Type": CE, "Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=url(gw), limits=limits, timeout=60) as http:
        answers = await asyncio.gather(
            *(http.post("/events", content=b, headers=headers) for b in bodies)
        )
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    statuses = [a.json()["status"] for a in answers]
    assert statuses.count("accepted") == 40 and statuses.count("duplicate") == 10
    per_intake: dict[str, list[str]] = {}
    for a in answers:
        per_intake.setdefault(a.json()["intake_id"], []).append(a.json()["status"])
    assert all(sorted(s) in (["accepted"], ["accepted", "duplicate"]) for s in per_intake.values())
    assert await accepted_count(gw) == before + 40
    ids = {d["intake_id"] for d in unique}

    async def all_on_the_log() -> bool:
        seen = {
            str(e.payload.intake_id)
            for e in await gw.events(gw.topics.intake_received)
            if str(e.payload.intake_id) in ids
        }
        return seen == ids

    from tests.conftest import eventually

    await eventually(all_on_the_log, timeout=30, what="the 40 intakes on the log")


async def test_cap_alerts_are_served_as_a_feed_and_valid_documents(gw: Pipeline) -> None:
    import asyncio
    import xml.etree.ElementTree as ET

    key = await new_key(gw, "cap-reader", "cap")
    other = await new_key(gw, "cap-not", "eido")
    flood = intake("banjir di desa Kalisalak Limpung, air masuk rumah warga")
    await gw.publish([_as_intake(flood)])
    incident = await gw.incident_for_intake(uuid.UUID(flood["intake_id"]), with_units=0)
    assert incident.category == "disaster"
    atom = "{http://www.w3.org/2005/Atom}"
    async with httpx.AsyncClient(base_url=url(gw)) as http:
        auth = {"Authorization": f"Bearer {key}"}
        entries: list[ET.Element] = []
        for _ in range(150):
            answer = await http.get("/cap/alerts", headers=auth)
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("application/atom+xml")
            entries = ET.fromstring(answer.content).findall(f"{atom}entry")
            if entries:
                break
            await asyncio.sleep(0.1)
        assert entries, "no alert in the feed"
        link = entries[0].find(f"{atom}link[@type='application/cap+xml']")
        assert link is not None
        href = str(link.get("href"))
        document = await http.get(href.removeprefix(url(gw)), headers=auth)
        refused = await http.get("/cap/alerts", headers={"Authorization": f"Bearer {other}"})
        missing = await http.get("/cap/alerts/nope.xml", headers=auth)
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/cap+xml")
    assert refused.status_code == 403 and missing.status_code == 404
    cap = "{urn:oasis:names:tc:emergency:cap:1.2}"
    root = ET.fromstring(document.content)
    assert root.findtext(f"{cap}msgType") == "Alert"
    assert root.findtext(f"{cap}sent", "").endswith("+07:00")
    if CAP_XSD.is_file():
        import xmlschema

        xmlschema.XMLSchema(str(CAP_XSD)).validate(document.content.decode())


async def test_siaga_report_hands_the_report_to_the_stacks_gateway(gw: Pipeline) -> None:
    """With a stack running in its home, `siaga report` goes through the gateway with the
    desk key `siaga up` makes, loads no heavy library, and falls back to the broker when
    the gateway cannot be asked."""
    from services.stack.setup import desk_key

    stack_file = gw.settings.home.stack_file
    stack = {
        "gateway_url": url(gw),
        "desk_key": await desk_key(gw.settings),
        "kafka_bootstrap": gw.settings.kafka_bootstrap(),
    }
    stack_file.parent.mkdir(parents=True, exist_ok=True)
    stack_file.write_text(json.dumps(stack))
    try:
        probe = (
            "import json, sys\nfrom services.cli.main import main\n"
            "code = main(sys.argv[1:])\n"
            "heavy = {'pydantic', 'pydantic_core', 'aiokafka', 'asyncpg', 'asyncio'}\n"
            "print(json.dumps([code, sorted({m.split('.')[0] for m in sys.modules} & heavy)]))"
        )
        done = await python_with_cli_env(
            gw,
            probe,
            "report",
            "--channel",
            "call112",
            "--caller",
            "+6281234567890",
            "--text",
            "rumah terbakar di Kandeman, ada anak di dalam",
        )
        intake_id, verdict = done.stdout.strip().splitlines()
        assert json.loads(verdict) == [0, []], done.stderr
        incident = await gw.incident_for_intake(uuid.UUID(intake_id), timeout=30)
        assert incident.category == "fire" and incident.priority == "P1"
        assert (
            await gw.fetchval(
                "SELECT key_name FROM gateway.intakes WHERE intake_id = $1", uuid.UUID(intake_id)
            )
            == "siaga-desk"
        )

        # The crew's status the same way: checked by the dispatcher's rule at the gateway.
        unit = incident.units[0].unit_id
        done = await python_with_cli_env(gw, probe, "unit", "status", unit, "acknowledged")
        said, verdict = done.stdout.strip().splitlines()
        assert json.loads(verdict) == [0, []], done.stderr
        assert said == f"{unit} acknowledged on incident {incident.incident_id}"

        async def acknowledged() -> bool:
            status = await gw.fetchval(
                "SELECT status FROM readmodel.units WHERE unit_id = $1", unit
            )
            return status == "acknowledged"

        await eventually(acknowledged, timeout=30, what=f"{unit} acknowledged on the board")
        done = await siaga_cli(gw.settings, "unit", "status", "AMB-TYPO-2", "en_route")
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.strip() == "siaga: refused: unit AMB-TYPO-2 is not in the fleet"

        # A value the gateway will never take: one line, exit 2, nothing kept or spooled.
        before = await accepted_count(gw)
        done = await siaga_cli(
            gw.settings, "report", "--channel", "sms", "--text", "x", "--lat", "200", "--lon", "1"
        )
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.strip() == (
            "siaga: invalid location.lat: Input should be less than or equal to 90"
        )
        assert await accepted_count(gw) == before
        assert not list(gw.settings.home.spool_dir.glob("*.json"))

        # No gateway where stack.json says: the report goes the spooled way to the broker.
        stack_file.write_text(json.dumps({**stack, "gateway_url": "http://127.0.0.1:1"}))
        done = await siaga_cli(
            gw.settings, "report", "--channel", "call112", "--text", "ada orang pingsan di pasar"
        )
        assert done.returncode == 0, done.stderr
        fallback = uuid.UUID(done.stdout.strip())
        await gw.incident_for_intake(fallback, with_units=0, timeout=30)
        assert (
            await gw.fetchval("SELECT count(*) FROM gateway.intakes WHERE intake_id = $1", fallback)
            == 0
        )
    finally:
        stack_file.unlink(missing_ok=True)


async def python_with_cli_env(
    pipe: Pipeline, code: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`python -c CODE ARGS` in the environment `siaga` gets against this pipeline."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(pipe.settings),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())


async def test_a_unit_status_needs_the_unit_scope_and_the_fleets_rules(gw: Pipeline) -> None:
    intake_only = await new_key(gw, "no-unit-scope", "intake")
    tablet = await new_key(gw, "tablets", "unit")
    body = {"status": "en_route"}
    async with httpx.AsyncClient(base_url=url(gw)) as http:

        async def post(unit: str, key: str, payload: Any) -> httpx.Response:
            return await http.post(
                f"/units/{unit}/status", json=payload, headers={"Authorization": f"Bearer {key}"}
            )

        assert (await post("AMB-1", intake_only, body)).status_code == 403
        made_up = await post("AMB-NOPE", tablet, body)
        assert made_up.status_code == 409
        assert made_up.json() == {"error": "unit AMB-NOPE is not in the fleet"}
        bad = await post("AMB-1", tablet, {"status": "flying"})
        assert bad.status_code == 400 and bad.json()["error"].startswith("invalid status:")
        extra = await post("AMB-1", tablet, {"status": "en_route", "speed": 80})
        assert extra.status_code == 400
