"""The channels' webhooks over real HTTP, on the real broker and database: signed WhatsApp
and SMS posts become triaged intakes, a resend is one intake, a forged post publishes
nothing, and the citizen hears back (receipt, the agency's answer and closure) through a
local send API that records what it is sent, even when it was down for a while."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from schemas.vocabulary import Channel
from services.gateway.conversations import (
    Conversation,
    Notice,
    record_notice,
    start_conversation,
    take_due,
)
from services.gateway.entrypoint import note_incident
from services.gateway.inbound import intake_id_for
from services.gateway.replies import Kind, report_number
from services.gateway.settings import (
    GatewaySettings,
    RepliesSettings,
    SmsSettings,
    WhatsAppSettings,
)
from services.gateway.signatures import sms_signature, whatsapp_signature
from services.stages import PIPELINE
from tests.conftest import TEST_FLEET, Pipeline, eventually, open_pipeline, siaga_cli
from tests.infra import Infra

pytestmark = pytest.mark.integration

VERIFY_TOKEN = "verify-me"
APP_SECRET = "meta-app-secret"
SMS_TOKEN = "sms-auth-token"
PHONE_NUMBER_ID = "PN1055"
REFUSED_WA_ID = "6280000000001"  # the local send API refuses this recipient (400)


@dataclass
class SendApi:
    """A local stand-in for the channels' send APIs: it records each message it takes, and
    answers 500 while `down`."""

    url: str = ""
    down: bool = False
    failures: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        """Take one message (WhatsApp JSON or an SMS form) and remember it."""
        if self.down:
            self.failures += 1
            return web.json_response({"error": {"message": "service unavailable"}}, status=500)
        raw = await request.read()
        is_json = request.content_type == "application/json"
        body = json.loads(raw) if is_json else dict(parse_qsl(raw.decode()))
        if body.get("to") == REFUSED_WA_ID:
            return web.json_response({"error": {"message": "recipient not allowed"}}, status=400)
        self.sent.append(
            {"path": request.path, "auth": request.headers.get("Authorization"), "body": body}
        )
        return web.json_response({"messages": [{"id": f"out.{len(self.sent)}"}]}, status=201)

    def to(self, address: str) -> list[dict[str, Any]]:
        """What was sent to one WhatsApp user or phone number."""
        return [s for s in self.sent if address in (s["body"].get("to"), s["body"].get("To"))]

    async def arrived(self, address: str, count: int) -> list[dict[str, Any]]:
        """`count` messages to `address`, once they have arrived (for `eventually`)."""
        return await eventually(
            lambda: self._at_least(address, count), what=f"{count} message(s) sent to {address}"
        )

    async def _at_least(self, address: str, count: int) -> list[dict[str, Any]] | None:
        found = self.to(address)
        return found if len(found) >= count else None


@pytest.fixture(scope="module")
async def send_api() -> AsyncIterator[SendApi]:
    """The local send API, on a free port of this machine."""
    api = SendApi()
    app = web.Application()
    app.router.add_post("/{tail:.*}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    api.url = f"http://{host}:{port}"
    try:
        yield api
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def gw(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory, send_api: SendApi
) -> AsyncIterator[Pipeline]:
    """The five stages and the gateway with both channels configured, sending to the local
    API, retrying fast."""
    gateway = {
        "settings": GatewaySettings(port=0, key_cache_s=0, burst=1000),
        "whatsapp": WhatsAppSettings(
            verify_token=SecretStr(VERIFY_TOKEN),
            app_secret=SecretStr(APP_SECRET),
            api_base_url=f"{send_api.url}/v21.0",
            access_token=SecretStr("EAAtest"),
            phone_number_id=PHONE_NUMBER_ID,
        ),
        "sms": SmsSettings(
            auth_token=SecretStr(SMS_TOKEN),
            api_base_url=f"{send_api.url}/2010-04-01",
            account_sid="ACtest",
            from_number="+6285100000000",
        ),
        "replies": RepliesSettings(poll_s=0.1, backoff_s=0.2, backoff_max_s=0.4, max_attempts=50),
    }
    async with open_pipeline(
        infra,
        fleet=TEST_FLEET,
        home=tmp_path_factory.mktemp("webhooks") / ".siaga",
        stages=(*PIPELINE, "gateway"),
        stage_settings={"gateway": gateway},
    ) as pipe:
        yield pipe


def url(pipe: Pipeline) -> str:
    found = pipe.runtimes["gateway"][0].api_url
    assert found
    return str(found)


def wa_text(wa_id: str, mid: str, text: str, name: str = "Siti") -> dict[str, Any]:
    """A WhatsApp post of one text message, as Meta sends it."""
    return wa_post(wa_id, name, [{"id": mid, "type": "text", "text": {"body": text}}])


def wa_post(wa_id: str, name: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    stamp = str(int(time.time()))
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6285100000000", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "timestamp": stamp, **m} for m in messages],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}],
    }


async def post_whatsapp(
    http: httpx.AsyncClient, payload: dict[str, Any], *, secret: str | None = APP_SECRET
) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = whatsapp_signature(body, app_secret=secret)
    return await http.post("/webhooks/whatsapp", content=body, headers=headers)


async def intakes(pipe: Pipeline) -> int:
    return int(await pipe.fetchval("SELECT count(*) FROM gateway.intakes"))


async def received(pipe: Pipeline, intake_id: uuid.UUID) -> int:
    events = await pipe.events(pipe.topics.intake_received)
    return sum(1 for e in events if e.payload.intake_id == intake_id)


async def test_whatsapp_handshake(gw: Pipeline) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8214"}
    async with httpx.AsyncClient(base_url=url(gw)) as http:
        good = await http.get("/webhooks/whatsapp", params=query)
        wrong = await http.get("/webhooks/whatsapp", params={**query, "hub.verify_token": "x"})
        bare = await http.get("/webhooks/whatsapp")
    assert good.status_code == 200 and good.text == "8214"
    assert good.headers["content-type"].startswith("text/plain")
    assert wrong.status_code == 403 and bare.status_code == 403


async def test_whatsapp_report_is_triaged_answered_once_and_forgeries_change_nothing(
    gw: Pipeline, send_api: SendApi
) -> None:
    wa_id = "6281234567001"
    payload = wa_post(
        wa_id,
        "Siti",
        [
            {
                "id": "wamid.fire1",
                "type": "text",
                "text": {"body": "rumah terbakar, api besar, di Kandeman"},
            },
            {
                "id": "wamid.photo1",
                "type": "image",
                "image": {"id": "media-1", "mime_type": "image/jpeg"},
            },
        ],
    )
    fire, photo = (
        intake_id_for(Channel.WHATSAPP, "wamid.fire1"),
        intake_id_for(Channel.WHATSAPP, "wamid.photo1"),
    )
    async with httpx.AsyncClient(base_url=url(gw)) as http:
        first = await post_whatsapp(http, payload)
        again = await post_whatsapp(http, payload)  # Meta's retry of the same post
        assert first.status_code == 200 and again.status_code == 200
        incident = await gw.incident_for_intake(fire, with_units=0, timeout=30)
        assert incident.category == "fire"

        sent = await send_api.arrived(wa_id, 2)
        fire_receipt, photo_receipt = sorted(
            sent, key=lambda s: report_number(fire) not in s["body"]["text"]["body"]
        )
        assert fire_receipt["path"] == f"/v21.0/{PHONE_NUMBER_ID}/messages"
        assert fire_receipt["auth"] == "Bearer EAAtest"
        assert fire_receipt["body"]["type"] == "text" and fire_receipt["body"]["to"] == wa_id
        assert report_number(fire) in fire_receipt["body"]["text"]["body"]
        assert report_number(photo) in photo_receipt["body"]["text"]["body"]
        assert "belum dapat kami baca" in photo_receipt["body"]["text"]["body"]
        assert await received(gw, fire) == 1 and await received(gw, photo) == 1

        # Forgeries and posts without a report: nothing is taken.
        before = await intakes(gw)
        forged = wa_text(wa_id, "wamid.forged", "ada bom di pasar")
        missing = await post_whatsapp(http, forged, secret=None)
        wrong = await post_whatsapp(http, forged, secret="not-the-app-secret")
        statuses = {
            "statuses": [{"id": "wamid.out1", "status": "delivered", "recipient_id": wa_id}]
        }
        only_statuses = wa_post(wa_id, "Siti", [])
        only_statuses["entry"][0]["changes"][0]["value"].update(statuses)
        receipt = await post_whatsapp(http, only_statuses)
    assert missing.status_code == 401 and wrong.status_code == 403
    assert receipt.status_code == 200
    assert await intakes(gw) == before
    assert await received(gw, intake_id_for(Channel.WHATSAPP, "wamid.forged")) == 0
    assert len(send_api.to(wa_id)) == 2  # one receipt per report, none for the retry


def sms_form(sender: str, sid: str, text: str) -> list[tuple[str, str]]:
    return [
        ("AccountSid", "ACtest"),
        ("Body", text),
        ("From", sender),
        ("MessageSid", sid),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("To", "+6285100000000"),
    ]


async def test_sms_report_gets_its_receipt_then_the_agencys_answer_and_closure(
    gw: Pipeline, send_api: SendApi
) -> None:
    sender = "+6281298765002"
    form = sms_form(sender, "SM0001", "lampu jalan mati di depan balai desa Kandeman")
    target = f"{url(gw)}/webhooks/sms"
    signature = sms_signature(target, form, auth_token=SMS_TOKEN)
    async with httpx.AsyncClient(base_url=url(gw)) as http:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        answer = await http.post("/webhooks/sms", content=urlencode(form), headers=headers)
        forged = await http.post(
            "/webhooks/sms",
            content=urlencode(sms_form(sender, "SM0002", "palsu")),
            headers=headers,
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    assert answer.text.endswith("<Response/>")
    assert forged.status_code == 403
    intake_id = intake_id_for(Channel.SMS, "SM0001")
    incident = await gw.incident_for_intake(intake_id, with_units=0, timeout=30)
    assert incident.category == "infrastructure"
    (receipt,) = await send_api.arrived(sender, 1)
    assert receipt["path"] == "/2010-04-01/Accounts/ACtest/Messages.json"
    assert receipt["auth"] == "Basic " + base64.b64encode(f"ACtest:{SMS_TOKEN}".encode()).decode()
    assert receipt["body"]["From"] == "+6285100000000"
    assert report_number(intake_id) in receipt["body"]["Body"]

    await eventually(
        lambda: gw.fetchval(
            "SELECT true FROM readmodel.work_orders WHERE incident_id = $1", incident.incident_id
        ),
        what="the work order",
    )
    for verb, text in (
        ("answer", "Besok petugas DPUPR memperbaiki"),
        ("close", "Lampu sudah diganti"),
    ):
        done = await siaga_cli(gw.settings, "workorder", verb, str(intake_id), "--text", text)
        assert done.returncode == 0, done.stderr
    sent = await send_api.arrived(sender, 3)
    bodies = [s["body"]["Body"] for s in sent]
    assert "Besok petugas DPUPR memperbaiki" in bodies[1] and report_number(intake_id) in bodies[1]
    assert "Lampu sudah diganti" in bodies[2] and "diselesaikan" in bodies[2]


async def test_a_send_api_that_is_down_holds_nothing_up(gw: Pipeline, send_api: SendApi) -> None:
    wa_id = "6281234567003"
    intake_id = intake_id_for(Channel.WHATSAPP, "wamid.flood1")
    send_api.down = True
    try:
        async with httpx.AsyncClient(base_url=url(gw)) as http:
            answer = await post_whatsapp(http, wa_text(wa_id, "wamid.flood1", "banjir di Tulis"))
            refused = await post_whatsapp(http, wa_text(REFUSED_WA_ID, "wamid.x1", "jalan rusak"))
        assert answer.status_code == 200 and refused.status_code == 200
        # Accepted at once: durable before the answer, whatever the send API does.
        assert await gw.fetchval("SELECT true FROM gateway.intakes WHERE intake_id = $1", intake_id)
        await eventually(
            lambda: gw.fetchval(
                "SELECT attempts >= 2 AND sent_at IS NULL AND last_error LIKE '500%' "
                "FROM gateway.replies WHERE intake_id = $1",
                intake_id,
            ),
            what="the receipt tried while the API is down",
        )
    finally:
        send_api.down = False
    (receipt,) = await send_api.arrived(wa_id, 1)
    assert report_number(intake_id) in receipt["body"]["text"]["body"]
    assert await gw.fetchval(
        "SELECT sent_at IS NOT NULL FROM gateway.replies WHERE intake_id = $1", intake_id
    )
    # A recipient the API refuses is given up, and stays visible with its error.
    refused_id = intake_id_for(Channel.WHATSAPP, "wamid.x1")
    await eventually(
        lambda: gw.fetchval(
            "SELECT failed_at IS NOT NULL AND last_error LIKE '400%' FROM gateway.replies "
            "WHERE intake_id = $1",
            refused_id,
        ),
        what="the refused reply given up",
    )
    assert gw.runtimes["gateway"][0].metrics.errors("reply_failed") >= 1


async def test_a_notice_read_before_the_link_still_reaches_the_citizen(
    gw: Pipeline, send_api: SendApi
) -> None:
    """The consumer may read an agency's answer before the link of a late intake to its
    incident (two topics): the answer is kept and queued when the link comes, once, and
    sent after the receipt."""
    sender, intake_id, incident_id = "+6281298765009", uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    notice = Notice(uuid.uuid4(), incident_id, Kind.ANSWER, "DPUPR", "Sudah dijadwalkan", now)
    conversation = Conversation(Channel.SMS, sender, report_number(intake_id), "Diterima.")
    async with gw.db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL search_path TO gateway")
        await conn.execute(
            "INSERT INTO intakes (intake_id, channel, accepted_at) VALUES ($1, 'sms', $2)",
            intake_id,
            now,
        )
        await start_conversation(conn, intake_id=intake_id, conversation=conversation, now=now)
        await record_notice(conn, notice, now=now)
        queued = "SELECT count(*) FROM replies WHERE intake_id = $1"
        assert await conn.fetchval(queued, intake_id) == 1  # the receipt alone
        for _ in range(2):  # the link, and its redelivery
            await note_incident(conn, intake_id=intake_id, incident_id=incident_id, now=now)
        await record_notice(conn, notice, now=now)  # the notice's redelivery
        assert await conn.fetchval(queued, intake_id) == 2
        # What a sender would take now (undone): the receipt, and not the answer before it.
        savepoint = conn.transaction()
        await savepoint.start()
        taken = await take_due(conn, now=now, lease_until=now, limit=100)
        await savepoint.rollback()
        assert [r.kind for r in taken if r.intake_id == intake_id] == [Kind.RECEIPT]
    receipt, answer = await send_api.arrived(sender, 2)
    assert receipt["body"]["Body"] == "Diterima."
    assert answer["body"]["Body"].startswith(
        f"Tanggapan DPUPR atas laporan {report_number(intake_id)}"
    )
