"""`siaga up` as a user runs it: report, look up, follow a unit, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil
import pytest
from aiokafka import AIOKafkaConsumer

from services.stack.embedded import EMBEDDED_PARTITIONS

pytestmark = pytest.mark.integration
T = TypeVar("T")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env["SIAGA_HOME"] = str(home)
    return env


def _ctrl_c_stops() -> None:
    """Run in each child before it starts: Ctrl-C (SIGINT) stops it, as at a terminal, even
    when the tests were started in the background, whose commands inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _siaga(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=timeout,
    )


def _until(read: Callable[[], T], good: Callable[[T], bool], timeout: float = 20) -> T:
    deadline = time.monotonic() + timeout
    while not good(value := read()):
        assert time.monotonic() < deadline, value
        time.sleep(0.3)
    return value


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


async def _partitions(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer.topics()
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        await consumer.stop()


def test_up_serves_the_readme_walkthrough_and_stops_cleanly(tmp_path: Path) -> None:
    home = tmp_path / ".siaga"
    up = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(home),
        preexec_fn=_ctrl_c_stops,
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while not (home / "stack.json").exists():
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            assert time.monotonic() < deadline, "siaga up did not write stack.json"
            time.sleep(0.2)
        stack = json.loads((home / "stack.json").read_text())
        assert {"kafka_bootstrap", "database_url"} <= set(stack)
        stack = _until(
            lambda: json.loads((home / "stack.json").read_text()), lambda s: "stages" in s, 60
        )
        # every stage answers on its own health port
        for stage, where in stack["stages"].items():
            health = _until(lambda w=where: _get(f"{w['http']}/readyz"), lambda r: r[0] == 200, 60)
            assert json.loads(health[1])["stage"] == stage
        assert len({w["http"] for w in stack["stages"].values()}) == 5
        # the embedded broker gets fewer partitions (each costs it CPU on every fetch)
        partitions = asyncio.run(_partitions(stack["kafka_bootstrap"], "siaga.intake.received"))
        assert partitions == EMBEDDED_PARTITIONS
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 7  # broker, database, five stages (and the database's own)

        reported = _siaga(
            "report",
            "--channel",
            "call112",
            "--caller",
            "+6281234567890",
            "--text",
            "ada kecelakaan motor di depan pasar Limpung, korban luka parah",
            home=home,
        )
        assert reported.returncode == 0, reported.stderr
        intake_id = reported.stdout.strip()

        shown = _siaga("incident", "show", intake_id, "--json", "--wait", "30", home=home)
        assert shown.returncode == 0, shown.stderr
        incident = _until(
            lambda: json.loads(_siaga("incident", "show", intake_id, "--json", home=home).stdout),
            lambda i: len(i["units"]) == 3,  # police and two ambulances
        )
        assert incident["category"] == "traffic_accident"
        assert incident["priority"] == "P1"
        assert incident["kecamatan"] == "Limpung"
        assert incident["intake_ids"] == [intake_id]
        ambulance = next(u for u in incident["units"] if u["unit_type"] == "ambulance")

        watch = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "unit", "watch", ambulance["unit_id"]],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_env(home),
            preexec_fn=_ctrl_c_stops,
        )
        try:
            assert watch.stdout is not None
            line = watch.stdout.readline()
            assert "ORDER P1 traffic_accident" in line and incident["incident_id"] in line
        finally:
            watch.send_signal(signal.SIGINT)
            watch.wait(10)

        for status in ("acknowledged", "en_route"):
            done = _siaga("unit", "status", ambulance["unit_id"], status, home=home)
            assert done.returncode == 0, done.stderr
            assert incident["incident_id"] in done.stdout  # found its order by itself
        now = _until(
            lambda: json.loads(_siaga("incident", "show", intake_id, "--json", home=home).stdout),
            lambda i: i["status"] == "en_route",
        )
        mine = next(u for u in now["units"] if u["unit_id"] == ambulance["unit_id"])
        assert mine["status"] == "en_route"
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert "stopped" in output
    # the whole starter fleet, from the data pack shipped in the project
    assert "49 units registered; gazetteer from the built-in Batang pack" in output
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.pid for p in alive]
    assert not (home / "stack.json").exists()
