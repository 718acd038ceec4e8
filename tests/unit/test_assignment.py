"""Partitions given by `siaga up`'s supervisor: the file, the sharing out, the hand-over, and
a stage taking a new assignment only between batches."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.common.assignment import (
    AssignmentError,
    read_assignment,
    share_out,
    take_over,
    write_assignment,
)
from services.common.consuming import Pace, TopUp
from services.common.runtime import AssignmentFollower, BatchLoop
from tests.unit.test_plumbing import Processor, record_of

A0, A1, B0, B1 = (TopicPartition(t, p) for t in ("a", "b") for p in (0, 1))


def test_a_file_is_written_whole_for_its_owner_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "given" / "enricher-2.json"
    write_assignment(path, [B1, A1])
    assert read_assignment(path) == [A1, B1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["enricher-2.json"]  # no half-written file left
    write_assignment(path, [])
    assert read_assignment(path) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", "the file"),
        ('{"partitions": [{"topic": "a", "partition": -1}]}', "partitions.0.partition"),
        ('{"partitions": [], "extra": 1}', "extra"),
    ],
)
def test_a_file_that_cannot_be_read_says_where(tmp_path: Path, body: str, says: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(body)
    with pytest.raises(AssignmentError, match=says):
        read_assignment(path)
    with pytest.raises(AssignmentError, match="No such file"):
        read_assignment(tmp_path / "missing.json")


def test_partitions_are_shared_out_by_number_and_extra_replicas_stand_by() -> None:
    assert share_out([B1, A0, A1, B0], ["x", "y"]) == {"x": [A0, B0], "y": [A1, B1]}
    assert share_out([A0, A1], ["x", "y", "z"]) == {"x": [A0], "y": [A1], "z": []}
    assert share_out([A0, A1], ["x"]) == {"x": [A0, A1]}


def test_a_dead_replicas_share_goes_to_the_live_one_with_fewest() -> None:
    shares = {"x": [A0], "y": [A1, B1], "z": [B0]}
    new, heir = take_over(shares, dead="x", live=["y", "z"])
    assert heir == "z" and new == {"x": [], "y": [A1, B1], "z": [A0, B0]}
    assert shares["x"] == [A0]  # the shares given are not changed
    assert take_over(shares, dead="x", live=[]) == (shares, None)  # it takes its own back
    assert take_over({"x": [], "y": [A0]}, dead="x", live=["y"])[1] is None  # a standby died


class _Consumer:
    """What the loop asks of an aiokafka consumer when it is given new partitions."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    async def commit(self) -> None:
        self.calls.append("commit")

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        self.calls.append(sorted(partitions))


class _Slow(Processor):
    """A processor whose batch is in hand until `go` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def process(self, records: Sequence[Any]) -> None:
        await self.go.wait()
        await super().process(records)


async def test_a_new_assignment_waits_for_the_batch_in_hand_and_its_commit() -> None:
    processor = _Slow()
    loop = BatchLoop(processor, TopUp(wait_ms=0, max_records=9), Pace(interval_ms=0, max_records=9))
    consumer = _Consumer()
    handling = asyncio.create_task(loop.handle(consumer, [record_of(b"x")]))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    await loop.reassign(consumer, [A0, A1])  # type: ignore[arg-type]
    assert consumer.calls == []  # the batch's records are not yet handled: not assigned yet
    processor.go.set()
    await handling
    # committed first: a new assignment forgets the positions FastStream would commit
    assert consumer.calls == ["commit", [A0, A1]]
    await loop.reassign(consumer, [A0])  # type: ignore[arg-type]
    assert consumer.calls[-1] == [A0]  # no batch in hand: at once, and nothing committed
    assert consumer.calls.count("commit") == 1


async def test_a_process_stands_by_until_its_file_gives_it_partitions(tmp_path: Path) -> None:
    path = tmp_path / "triage-2.json"
    write_assignment(path, [])
    started: list[list[TopicPartition]] = []
    consumer = _Consumer()

    class _Subscriber:
        def __init__(self) -> None:
            self.consumer = consumer

    async def start(partitions: list[TopicPartition]) -> _Subscriber:
        started.append(partitions)
        return _Subscriber()

    loop = BatchLoop(
        Processor(), TopUp(wait_ms=0, max_records=9), Pace(interval_ms=0, max_records=9)
    )
    follower = AssignmentFollower(path, start=start, loop=loop)
    await follower.check()
    assert follower.subscriber is None and started == []  # standing by
    write_assignment(path, [B0, A0])
    await follower.check()
    assert started == [[A0, B0]]  # the first partitions start its subscriber
    await follower.check()
    assert started == [[A0, B0]] and consumer.calls == []  # an unchanged file changes nothing
    write_assignment(path, [A0, A1, B0, B1])
    await follower.check()
    assert consumer.calls == [[A0, A1, B0, B1]]  # a later one goes to the running consumer
    broken = tmp_path / "broken"
    broken.write_text("{")
    broken.replace(path)  # a new file, as the supervisor writes one
    await follower.check()  # a broken file is logged and changes nothing
    assert follower.partitions == [A0, A1, B0, B1] and len(consumer.calls) == 1
    write_assignment(path, [A0])
    await follower.check()
    assert consumer.calls[-1] == [A0]  # the next good one is taken


async def test_a_failed_start_is_tried_again_with_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "enricher.json"
    write_assignment(path, [A0])
    tries: list[list[TopicPartition]] = []

    async def start(partitions: list[TopicPartition]) -> object:
        tries.append(partitions)
        if len(tries) == 1:
            raise ConnectionError("broker away")
        return object()

    loop = BatchLoop(
        Processor(), TopUp(wait_ms=0, max_records=9), Pace(interval_ms=0, max_records=9)
    )
    follower = AssignmentFollower(path, start=start, loop=loop)
    following = asyncio.create_task(follower.follow(every_s=0.01, retry_s=0.01))
    try:
        for _ in range(200):
            if follower.subscriber is not None:
                break
            await asyncio.sleep(0.01)
    finally:
        following.cancel()
    assert tries == [[A0], [A0]] and follower.partitions == [A0]


class _SlowCommit(_Consumer):
    """A consumer whose commit is in flight until `go` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def commit(self) -> None:
        await self.go.wait()
        await super().commit()


async def test_a_share_given_during_the_commit_is_the_one_taken() -> None:
    loop = BatchLoop(
        Processor(), TopUp(wait_ms=0, max_records=9), Pace(interval_ms=0, max_records=9)
    )
    consumer = _SlowCommit()
    loop.pending = [A0, A1]  # given while the batch was handled
    handling = asyncio.create_task(loop.handle(consumer, [record_of(b"x")]))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    await loop.reassign(consumer, [A0, A1, B0, B1])  # a second hand-over, the commit in flight
    assert consumer.calls == []
    consumer.go.set()
    await handling
    assert consumer.calls == ["commit", [A0, A1, B0, B1]]  # the latest share, once
    assert loop.pending is None and not loop.busy
