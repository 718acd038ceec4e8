"""`siaga up`: the whole backend on one machine, embedded broker and database by default."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from services.common.files import write_private
from services.common.settings import CommonSettings
from services.stack.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    recreate_database,
    use_embedded_partitions,
)
from services.stack.monitor import describe, follow
from services.stack.processes import free_port, pid_alive
from services.stack.setup import check_data_files, desk_key, prepare
from services.stack.supervisor import GaveUp, Supervisor
from services.stages import STAGES

DATABASE = "siaga"

IN_MEMORY = (
    "notice      the embedded broker keeps its log in memory only: when this siaga up "
    "stops, every event is gone, and the next siaga up starts a new log and an empty read "
    "model (SIAGA_KAFKA_BOOTSTRAP names a durable Kafka instead)"
)


def _say(line: str) -> None:
    print(f"{datetime.now():%H:%M:%S}  {line}", flush=True)


class Stack:
    """The processes of a running `siaga up`, stopped in reverse order of start."""

    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self.home = settings.home.home
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.supervisor: Supervisor | None = None
        # Until it stops as asked (Ctrl-C, SIGTERM): a stack that fails keeps its data.
        self.failed = True

    def start_infrastructure(self) -> tuple[str, str]:
        """Start what is not configured; returns (kafka bootstrap, database url)."""
        logs = self.home / "logs"
        bootstrap = self.settings.kafka.bootstrap
        url = self.settings.database.url
        if bootstrap is None:
            self.broker = EmbeddedBroker(log=logs / "tansu.log").start()
            bootstrap = self.broker.bootstrap
            _say(f"broker      Tansu (in-memory) on {bootstrap}")
            _say(IN_MEMORY)
        if url is None:
            self.postgres = EmbeddedPostgres(home=self.home)
            if self.broker is not None:
                # A cluster still here belongs to a stack that did not stop cleanly (killed,
                # or a version that kept it): its data goes aside, not into the new stack.
                kept = self.postgres.set_aside()
                if kept is not None:
                    _say(
                        f"kept        the last stack here did not stop cleanly: its database is "
                        f"in {kept} (rm -rf it, or make clean, to remove it)"
                    )
            self.postgres.start()
            if self.broker is not None:
                # The in-memory log starts empty, so must the read model built from it.
                asyncio.run(recreate_database(self.postgres.url(), DATABASE))
            else:
                asyncio.run(_ensure_database(self.postgres.url(), DATABASE))
            url = self.postgres.url(DATABASE)
            _say(f"database    PostgreSQL on 127.0.0.1:{self.postgres.port}/{DATABASE}")
        return bootstrap, url

    def start_stages(
        self, settings: CommonSettings, env: dict[str, str], on_change: Callable[[], None]
    ) -> None:
        """Start `settings.stack.replicas` processes of every stage, as in production
        (`siaga run STAGE`), supervised, each with its own health/metrics port
        (`SIAGA_HTTP_PORT` + 0..4, + 5..9 for second replicas... when set, else free ones)."""
        self.supervisor = Supervisor(settings, env=env, say=_say, on_change=on_change)
        asyncio.run(self.supervisor.plan())
        self.supervisor.start()
        replicas = settings.stack.replicas
        each = f"{replicas} processes of each" if replicas > 1 else "one process each"
        _say(f"stages      {', '.join(STAGES)}, {each} (logs in {self.home / 'logs'})")
        _say(
            "health      "
            + ", ".join(f"{r.name} {r.port}" for r in self.supervisor.all())
            + " (/healthz /readyz /metrics)"
        )

    def stop(self) -> None:
        """Stop stages, then the database, then the broker; then remove the database of an
        in-memory log that is gone, unless the stack failed: that one is kept."""
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self.broker is not None:
            self.broker.stop()
        with contextlib.suppress(FileNotFoundError):
            self.settings.home.stack_file.unlink()
        if self.postgres is None:
            return
        if self.broker is None:
            if self.failed:  # its log lives on in the broker: the next siaga up goes on
                _say(f"kept        the database in {self.postgres.data_dir}")
            return
        if not self.failed:
            self.postgres.remove()
            return
        try:
            kept = self.postgres.set_aside()
        except RuntimeError as exc:
            _say(f"kept        the database where it is: {exc}")
            return
        if kept is not None:
            _say(
                f"kept        the database and its password in {kept} "
                f"(rm -rf {kept}, or make clean, removes them)"
            )


async def _ensure_database(server_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _write_stack_file(path: Path, info: dict[str, object]) -> None:
    # Readable by its owner only, from its creation on: it holds the database's passwords.
    write_private(path, (json.dumps(info, indent=2) + "\n").encode())


def _running_here(settings: CommonSettings) -> int | None:
    """The pid of another `siaga up` running with this home, if any."""
    pid = settings.home.read_stack().get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or not pid_alive(pid):
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid
    # A pid from a killed stack's stale file may now be some other process's.
    return (
        pid
        if b"up" in command and any(b"siaga" in a or b"cli.main" in a for a in command)
        else None
    )


async def _run(
    stack: Stack,
    settings: CommonSettings,
    *,
    demo: bool,
    stop_event: asyncio.Event,
    started: float,
) -> None:
    tasks = [asyncio.create_task(_show(settings))]
    from services.clients.operator import keep_spool_drained  # reports spooled while down

    tasks.append(asyncio.create_task(keep_spool_drained(settings, say=_say)))
    supervisor = stack.supervisor
    assert supervisor is not None
    watching = asyncio.create_task(supervisor.watch(stop_event))
    deadline = time.monotonic() + settings.stack.ready_timeout_s
    announced = False
    try:
        while not stop_event.is_set() and not watching.done():
            if not announced and supervisor.ready.is_set():
                announced = True
                # Said when every stage consumes, so a report sent now is handled at once.
                _say(
                    f"ready       in {time.monotonic() - started:.1f}s, every stage consuming; "
                    'try: siaga report --channel call112 --text "..."   (Ctrl-C stops everything)'
                )
                if demo:
                    from services.stack.demo import play

                    _say(
                        "demo        Batang scenario starting: 112/119 calls and WhatsApp complaints"
                    )
                    tasks.append(asyncio.create_task(play(settings)))
            elif not announced and time.monotonic() > deadline:
                deadline = float("inf")
                waiting = [s for s in STAGES if not supervisor.consuming(s)]
                _say(
                    f"not ready   after {settings.stack.ready_timeout_s:g} s: {', '.join(waiting)} not consuming yet (see their logs)"
                )
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception():
                    _say(f"monitor/demo failed: {task.exception()}")
                    tasks.remove(task)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=0.1)
        if watching.done():
            watching.result()  # GaveUp: the stack stops
    finally:
        for task in [*tasks, watching]:
            task.cancel()
        await asyncio.gather(*tasks, watching, return_exceptions=True)


async def _show(settings: CommonSettings) -> None:
    async for event in follow(settings):
        line = describe(event)
        if line:
            _say(line)


def up(settings: CommonSettings, *, demo: bool, replicas: int | None = None) -> int:
    """Run every stage (`replicas` processes of each) until Ctrl-C or SIGTERM, restarting
    any that dies; returns the exit code (1 when a stage kept dying)."""
    other = _running_here(settings)
    if other is not None:
        print(
            f"siaga up: a stack already runs with {settings.home.home} (pid {other}); "
            "stop it first, or set SIAGA_HOME to another folder",
            file=sys.stderr,
        )
        return 1
    check_data_files(settings.home.pack())
    stack = Stack(settings)
    started = time.monotonic()
    try:
        live, info = _start_infrastructure(stack, settings, replicas=replicas)
        env = dict(os.environ)
        # Tables and topics exist before any stage starts, so none races the migrations.
        fleet = asyncio.run(prepare(live))
        info["desk_key"] = asyncio.run(desk_key(live))
        _write_stack_file(settings.home.stack_file, info)
        _say(f"fleet       {len(fleet)} units registered; gazetteer from {live.home.pack().source}")

        def record() -> None:
            assert stack.supervisor is not None
            info["stages"] = stack.supervisor.describe()
            _write_stack_file(settings.home.stack_file, info)

        stack.start_stages(live, env, on_change=record)
        record()
        _say(
            f"gateway     {info['gateway_url']} (HTTP API, docs at /docs; a client's key: "
            "siaga apikey create NAME --scope intake)"
        )

        async def main() -> None:
            stop_event = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop_event.set)
            await _run(stack, live, demo=demo, stop_event=stop_event, started=started)

        try:
            asyncio.run(main())
        except GaveUp:
            return 1
        stack.failed = False
        return 0
    except KeyboardInterrupt:  # Ctrl-C while starting: a stop asked for, not a failure
        stack.failed = False
        return 130
    finally:
        _say("stopping    stages, database, broker")
        stack.stop()
        _say("stopped")


def _gateway_address() -> tuple[str, int]:
    """Where the gateway will listen: SIAGA_GATEWAY_HOST/PORT when set, else 127.0.0.1 and
    8080, or a free port when 8080 is taken (another stack, another program)."""
    host = os.environ.get("SIAGA_GATEWAY_HOST", "127.0.0.1")
    wanted = os.environ.get("SIAGA_GATEWAY_PORT")
    if wanted and wanted.isdigit() and int(wanted) > 0:
        return host, int(wanted)
    with socket.socket() as probe:
        try:
            probe.bind((host, 8080))
            return host, 8080
        except OSError:
            return host, free_port(host)


def _start_infrastructure(
    stack: Stack, settings: CommonSettings, *, replicas: int | None
) -> tuple[CommonSettings, dict[str, object]]:
    """Start (or find) the broker and the database, put where they are in the environment
    the stages inherit, and write `stack.json`; the settings the stages will read, and
    what `stack.json` says."""
    bootstrap, url = stack.start_infrastructure()
    if stack.broker is not None:
        use_embedded_partitions()
    secrets_env = {"SIAGA_KAFKA_BOOTSTRAP": bootstrap, "SIAGA_DATABASE_URL": url}
    if stack.postgres is not None:
        # The embedded server asks every role for a password: the stage roles get one of
        # this run's, set by the migrations and found by other commands in stack.json.
        secrets_env["SIAGA_DATABASE_ROLE_PASSWORD"] = os.environ.get(
            "SIAGA_DATABASE_ROLE_PASSWORD"
        ) or secrets.token_urlsafe(24)
    if replicas is not None:
        secrets_env["SIAGA_STACK_REPLICAS"] = str(replicas)
    gateway_host, gateway_port = _gateway_address()
    secrets_env["SIAGA_GATEWAY_PORT"] = str(gateway_port)
    os.environ.update(secrets_env)
    live = CommonSettings()
    info: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "database_url": url,
        "topic_prefix": live.topics.prefix,
        "embedded_broker": stack.broker is not None,
        "embedded_database": stack.postgres is not None,
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(),
        "replicas": live.stack.replicas,
        "gateway_url": f"http://{gateway_host}:{gateway_port}",
    }
    if stack.postgres is not None:
        info["database_role_password"] = secrets_env["SIAGA_DATABASE_ROLE_PASSWORD"]
        info["database_password_file"] = str(stack.postgres.password_file)
    _write_stack_file(settings.home.stack_file, info)
    return live, info
