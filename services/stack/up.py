"""`siaga up`: the whole backend on one machine, embedded broker and database by default."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from services.common.settings import CommonSettings
from services.stack.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    recreate_database,
    use_embedded_partitions,
)
from services.stack.monitor import describe, follow
from services.stack.processes import free_port, spawn, stop, tail
from services.stack.setup import prepare
from services.stages import STAGES

DATABASE = "siaga"


def _say(line: str) -> None:
    print(f"{datetime.now():%H:%M:%S}  {line}", flush=True)


class Stack:
    """The processes of a running `siaga up`, stopped in reverse order of start."""

    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self.home = settings.home.home
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.stages: dict[str, subprocess.Popen[bytes]] = {}

    def start_infrastructure(self) -> tuple[str, str]:
        """Start what is not configured; returns (kafka bootstrap, database url)."""
        logs = self.home / "logs"
        bootstrap = self.settings.kafka.bootstrap
        url = self.settings.database.url
        if bootstrap is None:
            self.broker = EmbeddedBroker(log=logs / "tansu.log").start()
            bootstrap = self.broker.bootstrap
            _say(f"broker      Tansu (in-memory) on {bootstrap}")
        if url is None:
            self.postgres = EmbeddedPostgres(home=self.home).start()
            if self.broker is not None:
                # The in-memory log starts empty, so must the read model built from it.
                asyncio.run(recreate_database(self.postgres.url(), DATABASE))
            else:
                asyncio.run(_ensure_database(self.postgres.url(), DATABASE))
            url = self.postgres.url(DATABASE)
            _say(f"database    PostgreSQL on 127.0.0.1:{self.postgres.port}/{DATABASE}")
        return bootstrap, url

    def start_stages(self, env: dict[str, str]) -> dict[str, dict[str, object]]:
        """One process per stage, as in production (`siaga run STAGE`), each with its own
        health/metrics port (`SIAGA_HTTP_PORT` + i when set, else free ones); returns
        where each stage runs, for `stack.json`."""
        http = self.settings.http
        base = http.port
        found: dict[str, dict[str, object]] = {}
        for i, stage in enumerate(STAGES):
            port = base + i if base else free_port()
            self.stages[stage] = spawn(
                [sys.executable, "-m", "services.cli.main", "run", stage],
                log=self.home / "logs" / f"{stage}.log",
                env={**env, "SIAGA_HTTP_PORT": str(port)},
            )
            found[stage] = {"pid": self.stages[stage].pid, "http": f"http://{http.host}:{port}"}
        _say(f"stages      {', '.join(STAGES)} (logs in {self.home / 'logs'})")
        _say(
            "health      "
            + ", ".join(f"{s} {str(f['http']).rsplit(':', 1)[1]}" for s, f in found.items())
            + " (/healthz /readyz /metrics)"
        )
        return found

    def check_stages(self) -> str | None:
        """Name and log tail of a stage that died, if any."""
        for stage, proc in self.stages.items():
            if proc.poll() is not None:
                return f"stage {stage} exited ({proc.returncode}):\n{tail(self.home / 'logs' / f'{stage}.log')}"
        return None

    def stop(self) -> None:
        """Stop stages, then the database, then the broker."""
        for proc in self.stages.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in self.stages.values():
            stop(proc, timeout=15)
        if self.postgres is not None:
            self.postgres.stop()
        if self.broker is not None:
            self.broker.stop()
        with contextlib.suppress(FileNotFoundError):
            self.settings.home.stack_file.unlink()


async def _ensure_database(server_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _write_stack_file(path: Path, info: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, path)


async def _run(
    stack: Stack, settings: CommonSettings, *, demo: bool, stop_event: asyncio.Event
) -> None:
    tasks = [asyncio.create_task(_show(settings))]
    from services.clients.operator import keep_spool_drained  # reports spooled while down

    tasks.append(asyncio.create_task(keep_spool_drained(settings, say=_say)))
    if demo:
        from services.stack.demo import play

        _say("demo        Batang scenario starting: 112/119 calls and WhatsApp complaints")
        tasks.append(asyncio.create_task(play(settings)))
    _say('ready       try: siaga report --channel call112 --text "..."   (Ctrl-C stops everything)')
    try:
        while not stop_event.is_set():
            dead = stack.check_stages()
            if dead:
                _say(dead)
                break
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception():
                    _say(f"monitor/demo failed: {task.exception()}")
                    tasks.remove(task)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=0.5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _show(settings: CommonSettings) -> None:
    async for event in follow(settings):
        line = describe(event)
        if line:
            _say(line)


def up(settings: CommonSettings, *, demo: bool) -> int:
    """Run every stage until Ctrl-C or SIGTERM; returns the exit code."""
    stack = Stack(settings)
    started = time.monotonic()
    try:
        bootstrap, url = stack.start_infrastructure()
        if stack.broker is not None:
            use_embedded_partitions()
        env = {**os.environ, "SIAGA_KAFKA_BOOTSTRAP": bootstrap, "SIAGA_DATABASE_URL": url}
        os.environ.update({"SIAGA_KAFKA_BOOTSTRAP": bootstrap, "SIAGA_DATABASE_URL": url})
        live = CommonSettings()
        info: dict[str, object] = {
            "kafka_bootstrap": bootstrap,
            "database_url": url,
            "topic_prefix": live.topics.prefix,
            "embedded_broker": stack.broker is not None,
            "embedded_database": stack.postgres is not None,
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(),
        }
        _write_stack_file(settings.home.stack_file, info)
        # Tables and topics exist before any stage starts, so none races the migrations.
        fleet = asyncio.run(prepare(live))
        _say(f"fleet       {len(fleet)} units registered; gazetteer from {live.home.pack().source}")
        info["stages"] = stack.start_stages(env)
        _write_stack_file(settings.home.stack_file, info)

        async def main() -> None:
            stop_event = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop_event.set)
            await _run(stack, live, demo=demo, stop_event=stop_event)

        _say(f"started     in {time.monotonic() - started:.1f}s")
        asyncio.run(main())
        return 0 if stack.check_stages() is None else 1
    finally:
        _say("stopping    stages, database, broker")
        stack.stop()
        _say("stopped")
