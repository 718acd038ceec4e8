"""`siaga up`'s stage processes, supervised: restarted with backoff, watched until they consume."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import TopicPartition

from services.common.admin import partitions_of, plain_consumer
from services.common.assignment import share_out, take_over, write_assignment
from services.common.logging import get_logger
from services.common.settings import CommonSettings
from services.stack.processes import free_port, spawn, stop, tail
from services.stages import STAGES, subscriptions

log = get_logger("supervisor")

# How often a process is checked for death, and its /readyz asked while a stage is not
# consuming with all its replicas (else every `_PROBE_STEADY_S`).
_TICK_S = 0.1
_PROBE_BUSY_S = 0.25
_PROBE_STEADY_S = 2.0


@dataclass
class Replica:
    """One process of a stage; a restart runs it again on the same port, into the same log."""

    stage: str
    name: str  # the stage's name, or `enricher-2` when it has several
    port: int
    log: Path
    assignment: Path  # the file of the partitions it reads (services/common/assignment.py)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures: deque[float] = field(default_factory=deque)  # when it died, within the window
    restart_at: float | None = None
    exit_code: int | None = None
    # From its last /readyz: database and broker answer, and how many partitions it reads.
    answering: bool = False
    assigned: int = 0

    @property
    def alive(self) -> bool:
        """The process runs."""
        return self.proc is not None and self.proc.poll() is None

    def forget_probe(self) -> None:
        """What its last /readyz said no longer holds (it died)."""
        self.answering, self.assigned = False, 0


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"exit {code}, {signal.Signals(-code).name}"
    return f"exit {code}"


class GaveUp(Exception):
    """A stage died too often within the window: the stack stops."""


class Supervisor:
    """Runs `replicas` processes of every stage (`siaga run STAGE`), gives each its share of
    the stage's partitions (no consumer group: services/common/assignment.py), hands a dead
    one's share to a live replica at once and restarts the dead one after a backoff that
    doubles, and knows when every stage consumes: its replicas together read all the
    partitions of its topics.
    """

    def __init__(
        self,
        settings: CommonSettings,
        *,
        env: Mapping[str, str],
        say: Callable[[str], None],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.config = settings.stack
        self.env = dict(env)
        self.say = say
        self.on_change = on_change
        self.stopping = False
        self.replicas: dict[str, list[Replica]] = {}
        self.ready = asyncio.Event()  # set once every stage consumes with all its replicas
        self.ready_at: float | None = None
        # A stage that stopped consuming because a replica died: since when, and which.
        self._lost: dict[str, tuple[float, str]] = {}
        self._next_probe = 0.0
        # Each replica's partitions (by name), per stage.
        self.shares: dict[str, dict[str, list[TopicPartition]]] = {}
        logs = settings.home.home / "logs"
        # Absolute: the path goes to every process in its environment.
        given = self.given = (settings.home.home / "assignments").resolve()
        http = settings.http
        count = self.config.replicas
        for i, stage in enumerate(STAGES):
            self.replicas[stage] = [
                Replica(
                    stage=stage,
                    name=stage if count == 1 else f"{stage}-{r + 1}",
                    # SIAGA_HTTP_PORT + 0..4 for the first replicas, + 5..9 for the second...
                    port=http.port + i + r * len(STAGES) if http.port else free_port(),
                    log=logs / (f"{stage}.log" if r == 0 else f"{stage}-{r + 1}.log"),
                    assignment=given / (f"{stage}.json" if r == 0 else f"{stage}-{r + 1}.json"),
                )
                for r in range(count)
            ]

    def all(self) -> list[Replica]:
        """Every replica of every stage, in stage order."""
        return [r for stage in STAGES for r in self.replicas[stage]]

    def url(self, replica: Replica) -> str:
        """Where a replica serves /healthz, /readyz and /metrics."""
        return f"http://{self.settings.http.host}:{replica.port}"

    async def plan(self) -> None:
        """Share each stage's partitions out among its replicas and write each one's file
        (the topics exist: `siaga up` created them)."""
        async with plain_consumer(self.settings) as consumer:
            for stage, replicas in self.replicas.items():
                topics = subscriptions(stage, self.settings.topics)
                partitions = await partitions_of(consumer, topics)
                missing = sorted(set(topics) - {tp.topic for tp in partitions})
                if missing:  # a partition nobody is given would never be read (exit code 1)
                    raise ValueError(
                        f"the broker has no topic {', '.join(missing)} for the {stage}"
                    )
                self.shares[stage] = share_out(partitions, [r.name for r in replicas])
                for replica in replicas:
                    write_assignment(replica.assignment, self.shares[stage][replica.name])

    def start(self) -> None:
        """Start every replica (after `plan`)."""
        for replica in self.all():
            self._spawn(replica)

    def _spawn(self, replica: Replica) -> None:
        replica.proc = spawn(
            [sys.executable, "-m", "services.cli.main", "run", replica.stage],
            log=replica.log,
            env={
                **self.env,
                "SIAGA_HTTP_PORT": str(replica.port),
                "SIAGA_KAFKA_ASSIGNMENT_FILE": str(replica.assignment),
            },
        )
        replica.started_at = time.monotonic()
        replica.restart_at = None

    def describe(self) -> dict[str, dict[str, object]]:
        """Each stage's processes for `stack.json`: the first one's pid and address (as
        before replicas), every pid, restarts in all, and each replica."""
        found: dict[str, dict[str, object]] = {}
        for stage, replicas in self.replicas.items():
            found[stage] = {
                "pid": _pid(replicas[0]),
                "http": self.url(replicas[0]),
                "pids": [_pid(r) for r in replicas],
                "restarts": sum(r.restarts for r in replicas),
                "replicas": [
                    {
                        "name": r.name,
                        "pid": _pid(r),
                        "http": self.url(r),
                        "restarts": r.restarts,
                        "log": str(r.log),
                        "partitions": len(self.shares.get(stage, {}).get(r.name, ())),
                    }
                    for r in replicas
                ],
            }
        return found

    def consuming(self, stage: str) -> bool:
        """The stage's live replicas read every partition of its topics between them."""
        live = [r for r in self.replicas[stage] if r.alive and r.answering]
        total = sum(len(share) for share in self.shares.get(stage, {}).values())
        return total > 0 and sum(r.assigned for r in live) == total

    def _all_ready(self) -> bool:
        # At start every replica must be in, the ones standing by with no partition too.
        return all(
            self.consuming(stage) and all(r.alive and r.answering for r in replicas)
            for stage, replicas in self.replicas.items()
        )

    async def watch(self, stop_event: asyncio.Event) -> None:
        """Supervise until `stop_event`; raises `GaveUp` when a stage keeps dying."""
        if not self.settings.http.enabled:
            # No /readyz to ask (SIAGA_HTTP_ENABLED=false): ready as soon as started, and
            # deaths are seen by their exit alone.
            self.ready.set()
            self._next_probe = float("inf")
        timeout = aiohttp.ClientTimeout(total=2)
        probing: asyncio.Task[None] | None = None
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:
                while not stop_event.is_set():
                    now = time.monotonic()
                    for replica in self.all():
                        if replica.restart_at is None and not replica.alive:
                            self._died(replica, now)
                        elif replica.restart_at is not None and now >= replica.restart_at:
                            self._restart(replica)
                    if now >= self._next_probe and (probing is None or probing.done()):
                        # In the background: a process slow to answer must not delay
                        # noticing a death (and handing its partitions over) by a tick.
                        probing = asyncio.create_task(self._probe_all(http))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop_event.wait(), timeout=_TICK_S)
            finally:
                if probing is not None:
                    probing.cancel()
                    await asyncio.gather(probing, return_exceptions=True)

    def _died(self, replica: Replica, now: float) -> None:
        replica.exit_code = replica.proc.returncode if replica.proc is not None else None
        replica.forget_probe()
        stage = replica.stage
        probing = self.settings.http.enabled
        if probing and self.ready.is_set() and stage not in self._lost:
            self._lost[stage] = (now, replica.name)
        window = self.config.failure_window_s
        replica.failures.append(now)
        while replica.failures and now - replica.failures[0] > window:
            replica.failures.popleft()
        recent = sum(1 for r in self.replicas[stage] for t in r.failures if now - t <= window)
        if recent >= self.config.max_failures:
            self.say(
                f"GAVE UP     {stage}: died {recent} times within {window:g} s "
                f"({_exit(replica.exit_code)}); its log ends:\n{tail(replica.log)}"
            )
            raise GaveUp(stage)
        delay = min(
            self.config.restart_backoff_s * 2 ** (len(replica.failures) - 1),
            self.config.restart_backoff_max_s,
        )
        replica.restart_at = now + delay
        self.say(
            f"died        {replica.name} ({_exit(replica.exit_code)}), restart in {delay:g} s "
            f"(log {replica.log})"
        )
        self._hand_over(replica)
        if probing:
            self._next_probe = 0.0

    def _hand_over(self, dead: Replica) -> None:
        """Give the dead replica's partitions to a live one of its stage at once, which
        reads them on from their committed offsets; the dead one comes back standing by.
        A replica that answers (it reads already) is preferred to one still starting. With
        none alive, it takes its own back when it is started again."""
        stage = dead.stage
        alive = [r for r in self.replicas[stage] if r is not dead and r.alive]
        live = [r.name for r in alive if r.answering] or [r.name for r in alive]
        before = self.shares.get(stage, {})
        shares, heir = take_over(before, dead=dead.name, live=live)
        if heir is None:
            return
        by_name = {r.name: r for r in self.replicas[stage]}
        try:
            # The dead one's file first: whatever fails after, no two processes are given
            # the same partition.
            write_assignment(dead.assignment, shares[dead.name])
            try:
                write_assignment(by_name[heir].assignment, shares[heir])
            except OSError:
                write_assignment(dead.assignment, before[dead.name])
                raise
        except OSError as exc:
            self.say(f"died        {dead.name}: its partitions could not be handed over: {exc}")
            return
        self.shares[stage] = shares
        self.say(f"handed      {dead.name}'s partitions to {heir}")
        self.on_change()

    def _restart(self, replica: Replica) -> None:
        if self.stopping:
            return
        if not self.settings.http.port:
            # A port picked free at start may have been taken since the process died (by
            # any program listening on a free port): a new one, which stack.json tells.
            replica.port = free_port()
        try:
            self._spawn(replica)
        except OSError as exc:
            self.say(f"died        {replica.name} could not be started: {exc}")
            replica.restart_at = None  # counted as a death on the next tick
            replica.proc = None
            return
        replica.restarts += 1
        self.say(
            f"restarted   {replica.name} ({_exit(replica.exit_code)}), "
            f"attempt {len(replica.failures)}"
        )
        self.on_change()
        # Partitions a replica of this stage kept when it died with nobody alive to take
        # them go to this one rather than wait for that replica's own (later) restart.
        for other in self.replicas[replica.stage]:
            if other is not replica and not other.alive and other.restart_at is not None:
                self._hand_over(other)

    async def _probe_all(self, http: aiohttp.ClientSession) -> None:
        live = [r for r in self.all() if r.alive]
        await asyncio.gather(*(self._probe(http, r) for r in live))
        now = time.monotonic()
        if not self.ready.is_set() and self._all_ready():
            self.ready_at = now
            self.ready.set()
        for stage, (since, name) in list(self._lost.items()):
            if self.consuming(stage):
                del self._lost[stage]
                self.say(f"consuming   {stage} again, {now - since:.1f} s after {name} died")
        steady = self.ready.is_set() and not self._lost and self._all_ready()
        self._next_probe = now + (_PROBE_STEADY_S if steady else _PROBE_BUSY_S)

    async def _probe(self, http: aiohttp.ClientSession, replica: Replica) -> None:
        asked = replica.proc
        try:
            async with http.get(f"{self.url(replica)}/readyz") as answer:
                found: dict[str, Any] = await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            replica.answering = False  # still starting, or too busy to answer in time
            return
        if replica.proc is not asked or not replica.alive:
            return  # it died while asked (probes run beside the watch): the answer is stale
        checks = found.get("checks", {})
        replica.answering = all(
            str(checks.get(c, "")).startswith("ok") for c in ("database", "broker")
        )
        consumer = found.get("consumer") or {}
        replica.assigned = int(consumer.get("assigned") or 0)

    def stop(self) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after 15 s), none restarted."""
        self.stopping = True
        replicas = [r for r in self.all() if r.proc is not None]
        for replica in replicas:
            assert replica.proc is not None
            with contextlib.suppress(ProcessLookupError):
                replica.proc.send_signal(signal.SIGTERM)
        try:
            for replica in replicas:
                assert replica.proc is not None
                stop(replica.proc, timeout=15)
        finally:
            for replica in self.all():  # the shares meant something to these processes only
                with contextlib.suppress(OSError):
                    replica.assignment.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.given.rmdir()


def _pid(replica: Replica) -> int | None:
    return replica.proc.pid if replica.proc is not None else None
