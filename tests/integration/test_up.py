"""`siaga up` as a user runs it: report, look up, follow a unit, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.events import IntakeReceivedV1
from schemas.topics import Topics
from schemas.vocabulary import Channel
from services.clients.operator import intake_event, new_intake
from services.common.kafka import send_events
from services.common.outbox import Outgoing
from services.stack.embedded import (
    EMBEDDED_PARTITIONS,
    EmbeddedPostgres,
    drop_database,
    recreate_database,
)
from services.stages import STAGES
from tests.conftest import eventually
from tests.infra import Infra

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


def _reading(http: str) -> dict[str, Any]:
    """What a stage process's consumer reads (its /readyz), once the process answers."""
    _, body = _until(lambda: _get(f"{http}/readyz"), lambda got: got[0] in (200, 503), 30)
    found: dict[str, Any] = json.loads(body)["consumer"]
    return found


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
        assert len({w["http"] for w in stack["stages"].values()}) == len(STAGES)
        # the gateway serves its HTTP API where stack.json says
        assert _get(f"{stack['gateway_url']}/healthz")[0] == 200
        # the embedded broker gets fewer partitions (each costs it CPU on every fetch)
        partitions = asyncio.run(_partitions(stack["kafka_bootstrap"], "siaga.intake.received"))
        assert partitions == EMBEDDED_PARTITIONS
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 8  # broker, database, six stages (and the database's own)

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
        # --wait returns once the dispatcher has answered: the README's next line reads a unit
        assert json.loads(shown.stdout)["units"], shown.stdout
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
    # the database of a log that is gone goes with it, password and all (as root its folder
    # was under /tmp, and was left there)
    postgres = EmbeddedPostgres(home=home)
    assert not postgres.data_dir.exists() and not postgres.password_file.exists()


class _Up:
    """A `siaga up` in its own process, its output gathered line by line as it comes."""

    def __init__(self, home: Path, *args: str, env: dict[str, str]) -> None:
        self.home = home
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "up", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**_env(home), **env},
            preexec_fn=_ctrl_c_stops,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line that holds `text`, waiting for it."""
        return _until(
            lambda: next((line for line in self.lines if text in line), None),
            lambda line: line is not None or not self.reader.is_alive(),
            timeout,
        ) or pytest.fail(f"no {text!r} in:\n{self.output()}")

    def stack(self) -> dict[str, Any]:
        return dict(json.loads((self.home / "stack.json").read_text()))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(60)


# Complaints (a work order each, no unit to share), from many callers, with no numbers in
# them ("gang 119" would rightly be a call for an ambulance).
_COMPLAINTS = (
    "jalan berlubang besar di depan pasar {}",
    "lampu jalan mati di dekat masjid {}",
    "sampah menumpuk di pinggir sungai {}",
    "saluran air tersumbat di gang {}",
)
_SIDES = ("utara", "selatan", "timur", "barat", "tengah")


def _complaints(n: int, *, offset: int) -> list[IntakeReceivedV1]:
    return [
        new_intake(
            channel=Channel.WHATSAPP,
            text=_COMPLAINTS[i % len(_COMPLAINTS)].format(_SIDES[i % len(_SIDES)]),
            phone=f"+62813{i % 97:07d}",
        )
        for i in range(offset, offset + n)
    ]


async def _through(db: asyncpg.Pool, ids: list[uuid.UUID]) -> bool:
    """Every intake is an incident in the read model, with its work order when it gets one."""
    done = await db.fetchval(
        "SELECT count(*) FROM readmodel.intakes WHERE intake_id = ANY($1::uuid[]) "
        "AND enriched_at IS NOT NULL AND incident_id IS NOT NULL",
        ids,
    )
    orders = await db.fetchval("SELECT count(*) FROM readmodel.work_orders")
    return bool(done == len(ids) and orders == await _orders_expected(db))


async def _orders_expected(db: asyncpg.Pool) -> int:
    """Incidents that get a work order: classified with confidence, not a prank."""
    return int(
        await db.fetchval(
            "SELECT count(*) FROM readmodel.incidents WHERE category IS NOT NULL "
            "AND NOT needs_review AND category NOT IN ('prank', 'ghost')"
        )
    )


async def _exactly_once(db: asyncpg.Pool, n: int) -> None:
    """Each intake is one incident in the read model, and was handled once by every stage."""
    assert await db.fetchval("SELECT count(*) FROM readmodel.intakes") == n
    assert await db.fetchval("SELECT count(DISTINCT incident_id) FROM readmodel.intakes") == n
    assert await db.fetchval("SELECT count(*) FROM readmodel.incidents") == n
    opened = "SELECT count(*) FROM readmodel.timeline WHERE event_type = 'siaga.incident.opened.v1'"
    assert await db.fetchval(opened) == n
    assert await db.fetchval("SELECT sum(reports) FROM enricher.callers") == n
    assert await db.fetchval("SELECT count(*) FROM triage.incidents") == n
    orders = await _orders_expected(db)
    assert orders > n * 0.9
    assert await db.fetchval("SELECT count(*) FROM dispatcher.work_orders") == orders
    assert await db.fetchval("SELECT count(*) FROM readmodel.work_orders") == orders
    assert await db.fetchval("SELECT count(*) FROM readmodel.dead_letters") == 0


async def _stream_around_kills(up: _Up, victims: dict[str, int]) -> int:
    """A report just after "ready" goes through at once; then 100 more in 10 s, and the
    `victims` (stage: pid) are killed with SIGKILL 2 s in. Every report becomes one
    incident. Returns how many were sent."""
    stack = up.stack()
    topics = Topics(prefix=stack["topic_prefix"])
    client = AIOKafkaProducer(bootstrap_servers=stack["kafka_bootstrap"])
    await client.start()
    db = await asyncpg.create_pool(stack["database_url"], min_size=1, max_size=2)
    try:
        sent: list[IntakeReceivedV1] = []

        async def send(intakes: list[IntakeReceivedV1]) -> None:
            await send_events(client, [Outgoing.of(intake_event(i), topics) for i in intakes])
            sent.extend(intakes)

        begun = time.monotonic()
        await send(_complaints(1, offset=0))
        await eventually(lambda: _through(db, [sent[0].intake_id]), timeout=30)
        first = time.monotonic() - begun

        async def feed() -> None:
            for _ in range(20):
                await send(_complaints(5, offset=len(sent)))
                await asyncio.sleep(0.5)

        feeding = asyncio.create_task(feed())
        await asyncio.sleep(2)
        killed = time.monotonic()
        for pid in victims.values():
            os.kill(pid, signal.SIGKILL)
        await feeding
        ids = [i.intake_id for i in sent]
        await eventually(lambda: _through(db, ids), timeout=120)
        waits = await db.fetchrow(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS median, max(s) AS longest "
            "FROM (SELECT extract(epoch FROM w.issued_at - i.received_at) AS s "
            "FROM readmodel.incidents i JOIN readmodel.work_orders w USING (incident_id)) t"
        )
        print(
            f"\n{len(victims)} stage process(es) killed; first report after ready through in "
            f"{first:.1f}s; all {len(ids)} through {time.monotonic() - killed:.1f}s after the "
            f"kill (the stream went on for 8 s after it); report to work order: median "
            f"{waits['median']:.1f}s, longest {waits['longest']:.1f}s"
        )
        await _exactly_once(db, len(ids))
        # "ready" means consuming: the first report did not wait for a group to form
        assert first < 5, first
        return len(ids)
    finally:
        await db.close()
        await client.stop()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("replicas", [1, 2])
def test_stages_killed_under_up_come_back_and_every_report_is_one_incident(
    tmp_path: Path, replicas: int
) -> None:
    home = tmp_path / ".siaga"
    up = _Up(
        home,
        "--replicas",
        str(replicas),
        env={
            "SIAGA_TRIAGE_DUPLICATE_CATEGORIES": "",  # one incident per complaint, to count
            "SIAGA_STACK_MAX_FAILURES": "3",
            "SIAGA_STACK_FAILURE_WINDOW_S": "300",
        },
    )
    children: list[psutil.Process] = []
    try:
        up.wait_for("ready  ", 120)
        assert "the embedded broker keeps its log in memory only" in up.output()
        stack = up.stack()
        assert stat.S_IMODE((home / "stack.json").stat().st_mode) == 0o600  # passwords
        assert len(stack["stages"]["enricher"]["pids"]) == replicas
        # one process of every stage, the last replica's when there are two
        victims = {s: where["replicas"][-1] for s, where in stack["stages"].items()}
        n = asyncio.run(_stream_around_kills(up, {s: v["pid"] for s, v in victims.items()}))
        for stage, victim in victims.items():
            up.wait_for(f"restarted   {victim['name']} (exit -9, SIGKILL), attempt 1", 30)
            up.wait_for(f"consuming   {stage} again", 30)
            now = up.stack()["stages"][stage]
            assert now["restarts"] == 1 and victim["pid"] not in now["pids"], now
            if replicas == 2:
                # The live replica took the dead one's partitions when it died, and the
                # processes say so themselves: it reads every partition of its topics, and
                # the restarted one, answering, reads none (it stands by).
                assert f"handed      {victim['name']}'s partitions to {stage}-1" in up.output()
                first, second = (_reading(r["http"]) for r in now["replicas"])
                assert first.get("assigned") == first.get("subscribed") > 0, first
                assert not second.get("assigned"), second
        print("\n".join(line for line in up.lines if "consuming   " in line))
        children = psutil.Process(up.proc.pid).children(recursive=True)
        if replicas == 1:
            _enricher_keeps_dying(up, n)
    finally:
        code = up.stop()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.pid for p in alive]
    if replicas == 2:
        assert code == 0, up.output()
        assert not (home / "assignments").exists()  # the shares went with the processes


@pytest.mark.timeout(240)
def test_a_stage_killed_under_up_on_a_configured_broker_and_database_comes_back(
    infra: Infra, tmp_path: Path
) -> None:
    database = f"siaga_up_{uuid.uuid4().hex[:8]}"
    asyncio.run(recreate_database(infra.server_url, database))
    up = _Up(
        tmp_path / ".siaga",
        env={
            "SIAGA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "SIAGA_DATABASE_URL": infra.database_url(database),
            # the stage roles are the server's, shared with the other tests' pipelines
            "SIAGA_DATABASE_ROLE_PASSWORD": "siaga-test",
            "SIAGA_TOPIC_PREFIX": f"up-{database}",
            "SIAGA_KAFKA_PARTITIONS": "2",  # light on the session's broker
            "SIAGA_TRIAGE_DUPLICATE_CATEGORIES": "",
        },
    )
    try:
        up.wait_for("ready  ", 120)
        stack = up.stack()
        assert not stack["embedded_broker"] and not stack["embedded_database"]
        assert "in memory only" not in up.output()
        enricher = stack["stages"]["enricher"]
        asyncio.run(_stream_around_kills(up, {"enricher": enricher["pid"]}))
        up.wait_for("restarted   enricher (exit -9, SIGKILL), attempt 1", 30)
        up.wait_for("consuming   enricher again", 30)
        assert up.stack()["stages"]["enricher"]["restarts"] == 1
    finally:
        code = up.stop()
        asyncio.run(drop_database(infra.server_url, database))
    assert code == 0, up.output()


def _enricher_keeps_dying(up: _Up, n: int) -> None:
    """Killed twice more (three times within the window): the stack stops, exit code 1, and
    keeps its database, with all `n` incidents in it, where it says."""
    os.kill(up.stack()["stages"]["enricher"]["pid"], signal.SIGKILL)
    up.wait_for("restarted   enricher (exit -9, SIGKILL), attempt 2", 30)
    os.kill(up.stack()["stages"]["enricher"]["pid"], signal.SIGKILL)
    assert up.proc.wait(60) == 1, up.output()
    assert "GAVE UP     enricher: died 3 times" in up.output()
    kept = Path(
        up.wait_for("kept        the database and its password in ", 5).split(" in ")[1].split()[0]
    )
    try:
        assert stat.S_IMODE((kept / "postgres.password").stat().st_mode) == 0o600
        postgres = EmbeddedPostgres(home=kept, data=kept / "pgdata").start()
        try:
            incidents = asyncio.run(_count_incidents(postgres.url("siaga")))
        finally:
            postgres.stop()
        assert incidents == n
    finally:
        shutil.rmtree(kept)
        with contextlib.suppress(OSError):
            kept.parent.rmdir()  # /tmp/siaga-pg-..., when running as root


async def _count_incidents(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM readmodel.incidents"))
    finally:
        await conn.close()
