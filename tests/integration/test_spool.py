"""The operator client with the broker unreachable: reports wait in the durable spool,
survive the client being killed, and go out by themselves when the broker returns: with
the next `siaga` command, or sent by a running `siaga up`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from schemas.envelope import decode_event
from services.common.admin import ensure_topics, log_ends, partitions_of, plain_consumer, read_range
from services.common.settings import CommonSettings, HomeSettings, KafkaSettings, TopicSettings
from services.stack.embedded import EmbeddedBroker
from services.stack.processes import free_port
from tests.conftest import settings_for
from tests.infra import Infra

pytestmark = pytest.mark.integration


def _env(home: Path, bootstrap: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env.update(
        SIAGA_HOME=str(home), SIAGA_KAFKA_BOOTSTRAP=bootstrap, SIAGA_TOPIC_PREFIX="spooltest"
    )
    return env


def _report(home: Path, bootstrap: str, text: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli.main",
            "report",
            "--channel",
            "call112",
            "--text",
            text,
            *extra,
        ],
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
    assert first.returncode == 3 and "safe in the spool" in err
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


def _spooled_while_down(home: Path, text: str) -> str:
    """Report with nothing listening on the broker's address: the intake id (exit code 3)."""
    down = _report(home, f"127.0.0.1:{free_port()}", text)
    out, err = down.communicate(timeout=60)
    assert down.returncode == 3, err
    assert len(list((home / "spool").glob("*.json"))) == 1
    return out.strip()


async def _intake_ids_on(settings: CommonSettings) -> list[str]:
    async with plain_consumer(settings) as consumer:
        partitions = await partitions_of(consumer, [settings.topics.intake_received])
        ends = await log_ends(consumer, partitions)
        return [
            str(decode_event(r.value).payload.intake_id)
            async for r in read_range(consumer, dict.fromkeys(partitions, 0), ends)
        ]


@pytest.mark.timeout(180)
async def test_the_next_command_sends_what_waits_in_the_spool(infra: Infra, tmp_path: Path) -> None:
    home = tmp_path / ".siaga"
    intake_id = _spooled_while_down(home, "pohon tumbang di jalan raya Subah")
    settings = settings_for(infra, prefix=f"t{uuid.uuid4().hex[:10]}", database="-", home=home)
    await ensure_topics(settings)

    # The broker is back; the call-taker's next command is not a report.
    env = _env(home, settings.kafka_bootstrap())
    env["SIAGA_TOPIC_PREFIX"] = settings.topics.prefix
    loop = asyncio.get_running_loop()
    done = await loop.run_in_executor(
        None,
        lambda: subprocess.run(
            [sys.executable, "-m", "services.cli.main", "lag"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        ),
    )
    assert "1 spooled report(s) sent" in done.stderr, done.stderr
    assert list((home / "spool").glob("*.json")) == []
    assert await _intake_ids_on(settings) == [intake_id]


def _ctrl_c_stops() -> None:
    """In the child: Ctrl-C (SIGINT) stops it even when the tests run in the background."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.timeout(300)
def test_a_running_stack_sends_what_waits_in_the_spool_by_itself(tmp_path: Path) -> None:
    home = tmp_path / ".siaga"
    intake_id = _spooled_while_down(home, "jalan longsor di Blado, rumah warga tertimbun")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env["SIAGA_HOME"] = str(home)
    up = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=_ctrl_c_stops,
    )
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(up.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not any("spool       1 report(s) sent" in line for line in said):
            assert up.poll() is None and time.monotonic() < deadline, "".join(said)
            time.sleep(0.3)
        assert list((home / "spool").glob("*.json")) == []
        # nobody ran --flush, and the report became an incident of the running stack
        show = ["incident", "show", intake_id, "--wait", "60", "--json"]
        shown = subprocess.run(
            [sys.executable, "-m", "services.cli.main", *show],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["intake_ids"] == [intake_id]
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(90)
