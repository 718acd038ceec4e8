"""The gateway with the broker down: a 202 means the intake is durable (the gateway's
outbox, in PostgreSQL), and every accepted intake reaches the log, in the order accepted,
once the broker is back."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from schemas.envelope import decode_event
from services.common.admin import ensure_topics, log_ends, partitions_of, plain_consumer, read_range
from services.common.db import connect
from services.common.settings import CommonSettings
from services.gateway.keys import Scope, create_key
from services.gateway.settings import GatewaySettings
from services.stack.embedded import EmbeddedBroker, drop_database, recreate_database
from services.stack.processes import free_port
from services.stack.setup import prepare
from services.stages import start_stage
from tests.conftest import TEST_FLEET, progressing, settings_for
from tests.infra import Infra

pytestmark = pytest.mark.integration


def _intake(text: str) -> bytes:
    data = {
        "intake_id": str(uuid.uuid4()),
        "channel": "web",
        "received_at": datetime.now(UTC).isoformat(),
        "text": text,
    }
    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/test/outage",
        "type": "siaga.intake.received.v1",
        "data": data,
    }
    return json.dumps(envelope).encode()


def _port_below_ephemeral() -> int:
    """A free port below the kernel's ephemeral range, as a real broker's 9092 is. While the
    broker is down, the clients reconnect again and again; on a port in that range one of
    their own connections may be given it as its local port and connect to itself, and the
    broker cannot come back there (a run hung on it for the test's whole timeout)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


async def test_intakes_accepted_while_the_broker_is_down_arrive_after_it_returns(
    infra: Infra, tmp_path: Path
) -> None:
    port = _port_below_ephemeral()
    broker = EmbeddedBroker(log=tmp_path / "tansu.log", port=port).start()
    name = f"t{uuid.uuid4().hex[:10]}"
    await recreate_database(infra.server_url, name)
    settings = settings_for(infra, prefix=name, database=name, home=tmp_path / ".siaga")
    # One partition, so the order the log keeps is the order the gateway accepted in.
    settings = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(
                update={"bootstrap": f"127.0.0.1:{port}", "partitions": 1}
            )
        }
    )
    try:
        await prepare(settings, fleet=TEST_FLEET)
        conn = await connect(settings, schema="gateway", application="test", role="gateway")
        try:
            _, key = await create_key(
                conn, name="outage", scopes=frozenset({Scope.INTAKE}), now=datetime.now(UTC)
            )
        finally:
            await conn.close()
        texts = [f"laporan {i} saat broker mati" for i in range(5)]
        async with start_stage("gateway", settings, settings=GatewaySettings(port=0)) as gw:
            broker.stop()
            async with httpx.AsyncClient(base_url=str(gw.api_url), timeout=30) as http:
                for text in texts:
                    answer = await http.post(
                        "/events",
                        content=_intake(text),
                        headers={
                            "Content-Type": "application/cloudevents+json",
                            "Authorization": f"Bearer {key}",
                        },
                    )
                    assert answer.status_code == 202, answer.text
                    assert answer.json()["status"] == "accepted"
            await asyncio.sleep(1)
            broker = EmbeddedBroker(log=tmp_path / "tansu-2.log", port=port).start()
            await ensure_topics(settings)  # the in-memory broker came back empty

            async def on_the_log() -> int:
                return len(await _texts(settings))

            await progressing(on_the_log, target=len(texts), stall=60, what="intakes relayed")
            assert await _texts(settings) == texts
    finally:
        broker.stop()
        await drop_database(infra.server_url, name)


async def _texts(settings: CommonSettings) -> list[str]:
    async with plain_consumer(settings) as consumer:
        topic = settings.topics.intake_received
        partitions = await partitions_of(consumer, [topic])
        ends = await log_ends(consumer, partitions)
        return [
            decode_event(r.value).payload.text
            async for r in read_range(consumer, dict.fromkeys(partitions, 0), ends)
        ]
