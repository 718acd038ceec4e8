"""The operator client with the broker unreachable: reports wait in the durable spool,
survive the client being killed, and a new client process delivers them when the broker
returns."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schemas.envelope import decode_event
from services.common.kafka import ensure_topics, log_ends, partitions_of, plain_consumer, read_range
from services.common.settings import CommonSettings, HomeSettings, KafkaSettings, TopicSettings
from services.stack.embedded import EmbeddedBroker
from services.stack.processes import free_port

pytestmark = pytest.mark.integration


def _env(home: Path, bootstrap: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env.update(
        SIAGA_HOME=str(home), SIAGA_KAFKA_BOOTSTRAP=bootstrap, SIAGA_TOPIC_PREFIX="spooltest"
    )
    return env


def _report(home: Path, bootstrap: str, text: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "report", "--channel", "call112", "--text", text, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home, bootstrap),
    )


@pytest.mark.timeout(240)
async def test_spooled_reports_survive_a_killed_client_and_go_out_when_the_broker_returns(
    tmp_path: Path,
) -> None:
    home = tmp_path / ".siaga"
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    spool = home / "spool"

    # 1. Nothing listens: the report is kept and the client says so.
    first = _report(home, bootstrap, "banjir di Blado, warga terjebak")
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0 and "kept in the spool" in err
    intake_a = out.strip()

    # 2. A broker that accepts connections and never answers: the client hangs; kill it.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    try:
        hung = _report(home, f"127.0.0.1:{silent.getsockname()[1]}", "pohon tumbang di Bawang")
        deadline = time.monotonic() + 30
        while len(list(spool.glob("*.json"))) < 2:
            assert time.monotonic() < deadline and hung.poll() is None
            await asyncio.sleep(0.05)
        hung.send_signal(signal.SIGKILL)
        hung.wait(10)
    finally:
        silent.close()
    assert len(list(spool.glob("*.json"))) == 2

    # 3. A new client process waits for the broker; the broker comes back on its address.
    waiting = _report(home, bootstrap, "", "--flush", "--wait", "120")
    await asyncio.sleep(2)
    assert waiting.poll() is None  # still trying
    broker = EmbeddedBroker(log=tmp_path / "tansu.log", port=port).start()
    try:
        settings = CommonSettings(
            home=HomeSettings(home=home),
            kafka=KafkaSettings(bootstrap=bootstrap, partitions=1),
            topic=TopicSettings(prefix="spooltest"),
        )
        await ensure_topics(settings)
        loop = asyncio.get_running_loop()
        out, err = await loop.run_in_executor(None, lambda: waiting.communicate(timeout=150))
        assert waiting.returncode == 0, err
        assert "2 spooled report(s) sent" in out
        assert list(spool.glob("*.json")) == []
        async with plain_consumer(settings) as consumer:
            partitions = await partitions_of(consumer, [settings.topics.intake_received])
            ends = await log_ends(consumer, partitions)
            texts = [
                decode_event(r.value).payload
                async for r in read_range(consumer, dict.fromkeys(partitions, 0), ends)
            ]
        assert sorted(str(p.intake_id) == intake_a for p in texts) == [False, True]
        assert {p.text for p in texts} == {
            "banjir di Blado, warga terjebak",
            "pohon tumbang di Bawang",
        }
    finally:
        broker.stop()
