"""`siaga up`'s supervisor without processes: backoff, giving up, when a stage consumes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from services.common.assignment import read_assignment, share_out, write_assignment
from services.common.settings import (
    CommonSettings,
    DatabaseSettings,
    HomeSettings,
    HttpSettings,
    StackSettings,
)
from services.stack.supervisor import GaveUp, Replica, Supervisor


class _Dead:
    """A process that has exited with `code`."""

    pid = 4242

    def __init__(self, code: int) -> None:
        self.returncode = code

    def poll(self) -> int:
        return self.returncode


class _Alive:
    pid = 4343
    returncode = None

    def poll(self) -> None:
        return None


def _supervisor(tmp_path: Path, **stack: object) -> tuple[Supervisor, list[str]]:
    said: list[str] = []
    settings = CommonSettings(
        home=HomeSettings(home=tmp_path), stack=StackSettings.model_validate(stack)
    )
    return Supervisor(settings, env={}, say=said.append), said


def test_a_stage_that_dies_is_restarted_after_a_doubling_backoff_until_it_dies_too_often(
    tmp_path: Path,
) -> None:
    supervisor, said = _supervisor(
        tmp_path, max_failures=5, restart_backoff_s=0.5, restart_backoff_max_s=3
    )
    replica = supervisor.replicas["enricher"][0]
    delays = []
    for t in (100.0, 101.0, 102.0, 103.0):
        replica.proc = _Dead(-9)  # type: ignore[assignment]
        supervisor._died(replica, t)
        assert replica.restart_at is not None
        delays.append(replica.restart_at - t)
    assert delays == [0.5, 1.0, 2.0, 3.0]  # doubling, up to the most
    assert said[0].startswith("died        enricher (exit -9, SIGKILL), restart in 0.5 s")
    replica.proc = _Dead(1)  # type: ignore[assignment]
    with pytest.raises(GaveUp):
        supervisor._died(replica, 104.0)
    assert said[-1].startswith("GAVE UP     enricher: died 5 times within 60 s (exit 1)")


def test_deaths_outside_the_window_are_forgotten(tmp_path: Path) -> None:
    supervisor, _ = _supervisor(tmp_path, max_failures=2, failure_window_s=10)
    replica = supervisor.replicas["triage"][0]
    for t in (0.0, 11.0, 22.0):  # never two within 10 s
        replica.proc = _Dead(1)  # type: ignore[assignment]
        supervisor._died(replica, t)
        assert replica.restart_at == t + 0.5  # the backoff starts over too


def test_the_replicas_of_a_stage_are_counted_together(tmp_path: Path) -> None:
    supervisor, _ = _supervisor(tmp_path, replicas=2, max_failures=2)
    first, second = supervisor.replicas["tracker"]
    assert (first.name, second.name) == ("tracker-1", "tracker-2")
    assert second.log.name == "tracker-2.log"
    first.proc = _Dead(1)  # type: ignore[assignment]
    supervisor._died(first, 0.0)
    second.proc = _Dead(1)  # type: ignore[assignment]
    with pytest.raises(GaveUp):
        supervisor._died(second, 1.0)


def _holding(replica: Replica, assigned: int) -> None:
    replica.proc = _Alive()  # type: ignore[assignment]
    replica.answering, replica.assigned = True, assigned


def _planned(supervisor: Supervisor, stage: str, topics: tuple[str, ...], partitions: int) -> None:
    """What `plan` does, without a broker: `topics` of `partitions` each, shared out."""
    every = [TopicPartition(t, p) for t in topics for p in range(partitions)]
    replicas = supervisor.replicas[stage]
    supervisor.shares[stage] = share_out(every, [r.name for r in replicas])
    for replica in replicas:
        write_assignment(replica.assignment, supervisor.shares[stage][replica.name])


def test_a_stage_consumes_when_its_live_replicas_read_every_partition(tmp_path: Path) -> None:
    supervisor, _ = _supervisor(tmp_path, replicas=3)
    _planned(supervisor, "enricher", ("a", "b"), 2)
    first, second, third = supervisor.replicas["enricher"]
    _holding(first, 2)
    _holding(second, 1)
    _holding(third, 0)  # more replicas than partitions: a standby
    assert not supervisor.consuming("enricher")  # a partition is still being taken
    _holding(second, 2)
    assert supervisor.consuming("enricher")
    second.proc = _Dead(-9)  # type: ignore[assignment]
    assert not supervisor.consuming("enricher")  # what it read is nobody's until handed over


def test_a_dead_replicas_partitions_go_at_once_to_the_live_one_that_reads_fewest(
    tmp_path: Path,
) -> None:
    supervisor, said = _supervisor(tmp_path, replicas=3)
    _planned(supervisor, "dispatcher", ("a", "b"), 4)
    first, second, third = supervisor.replicas["dispatcher"]
    assert read_assignment(first.assignment) == [
        TopicPartition("a", 0),
        TopicPartition("a", 3),
        TopicPartition("b", 0),
        TopicPartition("b", 3),
    ]  # one process reads the same partition number of every topic
    assert len(read_assignment(third.assignment)) == 2
    for replica in (first, third):
        replica.proc = _Alive()  # type: ignore[assignment]
    second.proc = _Dead(-9)  # type: ignore[assignment]
    supervisor._died(second, 10.0)
    assert "handed      dispatcher-2's partitions to dispatcher-3" in said
    assert read_assignment(second.assignment) == []  # it comes back standing by
    assert len(read_assignment(third.assignment)) == 4
    assert supervisor.describe()["dispatcher"]["replicas"][2]["partitions"] == 4
    # the last one alive: nobody to hand to, so it takes its own back on its restart
    first.proc = third.proc = _Dead(-9)  # type: ignore[assignment]
    supervisor._died(third, 11.0)
    assert len(read_assignment(third.assignment)) == 4
    assert not any("to dispatcher-1" in line for line in said)


def test_stack_json_names_every_replica_with_its_pid_and_restarts(tmp_path: Path) -> None:
    supervisor, _ = _supervisor(tmp_path, replicas=2)
    first, second = supervisor.replicas["projector"]
    first.proc, second.proc = _Alive(), _Dead(0)  # type: ignore[assignment]
    second.restarts = 2
    found = json.loads(json.dumps(supervisor.describe()))["projector"]
    assert found["pid"] == 4343 and found["pids"] == [4343, 4242]
    assert found["restarts"] == 2
    assert [r["name"] for r in found["replicas"]] == ["projector-1", "projector-2"]
    assert found["http"] == found["replicas"][0]["http"]


def test_commands_find_the_stage_roles_password_of_the_running_stack(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(
        json.dumps(
            {
                "database_url": "postgresql://postgres:pw@127.0.0.1:5432/siaga",
                "database_role_password": "r0le",
            }
        )
    )
    settings = CommonSettings(home=HomeSettings(home=tmp_path), database=DatabaseSettings())
    assert (
        settings.database_url_for("reader") == "postgresql://siaga_reader:r0le@127.0.0.1:5432/siaga"
    )
    # a URL of one's own comes with its own credentials: the stack's password is not used
    own = CommonSettings(
        home=HomeSettings(home=tmp_path),
        database=DatabaseSettings(url="postgresql://admin@db:5432/siaga"),
    )
    assert own.database_url_for("reader") == "postgresql://siaga_reader@db:5432/siaga"


def test_partitions_kept_by_a_dead_replica_go_to_the_first_one_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor, said = _supervisor(tmp_path, replicas=2)
    _planned(supervisor, "enricher", ("a",), 2)
    first, second = supervisor.replicas["enricher"]
    first.proc, second.proc = _Dead(-9), _Alive()  # type: ignore[assignment]
    supervisor._died(first, 0.0)  # handed to the second
    second.proc = _Dead(-9)  # type: ignore[assignment]
    supervisor._died(second, 0.2)  # nobody alive: it keeps both
    assert len(read_assignment(second.assignment)) == 2
    monkeypatch.setattr(supervisor, "_spawn", lambda replica: setattr(replica, "proc", _Alive()))
    supervisor._restart(first)  # started again before the second: it takes them at once
    assert "handed      enricher-2's partitions to enricher-1" in said
    assert len(read_assignment(first.assignment)) == 2
    assert read_assignment(second.assignment) == []


def test_a_live_replica_that_answers_is_preferred_to_one_still_starting(tmp_path: Path) -> None:
    supervisor, said = _supervisor(tmp_path, replicas=3)
    _planned(supervisor, "triage", ("a",), 3)
    first, second, third = supervisor.replicas["triage"]
    _holding(first, 1)
    second.proc = _Alive()  # type: ignore[assignment]  # started, not answering yet
    write_assignment(second.assignment, [])
    supervisor.shares["triage"]["triage-2"] = []  # a standby: fewest, but still starting
    third.proc = _Dead(-9)  # type: ignore[assignment]
    supervisor._died(third, 0.0)
    assert "handed      triage-3's partitions to triage-1" in said


def test_an_answer_from_a_process_that_died_while_asked_is_not_taken(tmp_path: Path) -> None:
    supervisor, _ = _supervisor(tmp_path)
    replica = supervisor.replicas["enricher"][0]
    replica.proc = _Alive()  # type: ignore[assignment]
    answer = {"checks": {"database": "ok", "broker": "ok"}, "consumer": {"assigned": 4}}

    class _Http:
        """An HTTP client whose answer comes after the process was replaced, if `restart`."""

        def __init__(self, *, restart: bool) -> None:
            self.restart = restart

        def get(self, url: str) -> _Http:
            return self

        async def __aenter__(self) -> _Http:
            if self.restart:
                replica.proc = _Alive()  # type: ignore[assignment]  # died, started again
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def json(self) -> dict[str, object]:
            return answer

    asyncio.run(supervisor._probe(_Http(restart=True), replica))  # type: ignore[arg-type]
    assert (replica.answering, replica.assigned) == (False, 0)
    asyncio.run(supervisor._probe(_Http(restart=False), replica))  # type: ignore[arg-type]
    assert (replica.answering, replica.assigned) == (True, 4)


def test_a_restart_takes_a_new_free_health_port_unless_the_ports_are_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for port, fixed in ((0, False), (9100, True)):
        said: list[str] = []
        settings = CommonSettings(home=HomeSettings(home=tmp_path), http=HttpSettings(port=port))
        supervisor = Supervisor(settings, env={}, say=said.append)
        replica = supervisor.replicas["tracker"][0]
        before = replica.port
        monkeypatch.setattr(supervisor, "_spawn", lambda r: setattr(r, "proc", _Alive()))
        monkeypatch.setattr("services.stack.supervisor.free_port", lambda b=before: b + 1)
        supervisor._restart(replica)
        # a port picked free at start may be another program's by now
        assert (replica.port == before) is fixed, (port, before, replica.port)
        assert supervisor.describe()["tracker"]["http"].endswith(f":{replica.port}")
