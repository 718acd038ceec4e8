"""Shared plumbing: dead letters stay small and whole, errors are classified, spool is robust."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError

from schemas.envelope import decode_event, encode_event
from schemas.events import DeadLetterV1
from schemas.topics import Topics
from schemas.vocabulary import Channel
from services.clients.operator import Spool, intake_event, new_intake
from services.common.consuming import Pace, TopUp, rewind, the_records, tolerant_parser
from services.common.db import is_transient
from services.common.deadletter import MAX_ORIGINAL, dead_letter
from services.common.records import Record
from services.common.runtime import BatchLoop
from services.common.settings import KafkaSettings


def record_of(
    value: bytes | None,
    *,
    topic: str = "siaga.intake.received",
    partition: int = 1,
    offset: int = 42,
    key: bytes | None = b"k",
    headers: tuple[tuple[str, bytes], ...] = (),
) -> Record:
    """A consumed record as a stage gets it."""
    return Record(topic, partition, offset, key, value, headers)


def test_a_dead_letter_of_a_huge_message_stays_readable() -> None:
    huge = b"x" * (400 * 1024)
    out = dead_letter(
        record_of(huge), stage="enricher", kind="oversize", reason="too big", topics=Topics()
    )
    raw = encode_event(out.event)
    back = decode_event(raw).payload  # a dead letter can itself be read (and redriven)
    assert isinstance(back, DeadLetterV1)
    assert back.original_truncated and back.original_size == len(huge)
    assert len(base64.b64decode(back.original_value_b64)) == MAX_ORIGINAL
    assert out.topic == "siaga.deadletter" and out.key == b"k"


async def test_a_dead_letter_keeps_the_true_header_bytes_that_faststream_cannot_decode() -> None:
    hostile = ConsumerRecord(
        "siaga.intake.received", 1, 42, 0, 0, b"k", b"{}", None, 0, 2, [("h", b"\xff\xfe")]
    )
    parsed: list[Any] = []

    async def faststream(records: tuple[ConsumerRecord[Any, Any], ...]) -> Any:
        parsed.extend(records)  # FastStream decodes every header value as UTF-8
        assert all(value.decode() == "" for record in records for _, value in record.headers)
        return SimpleNamespace(raw_message=records)

    message = await tolerant_parser((hostile,), faststream)
    (record,) = await the_records(message)
    assert parsed[0] is not hostile and hostile.headers == [("h", b"\xff\xfe")]
    assert record == record_of(b"{}", headers=(("h", b"\xff\xfe"),))
    out = dead_letter(record, stage="enricher", kind="not_json", reason="x", topics=Topics())
    payload = out.event.payload
    assert isinstance(payload, DeadLetterV1)
    assert payload.original_headers == [("h", base64.b64encode(b"\xff\xfe").decode())]


def test_the_same_bad_record_gives_the_same_dead_letter_id() -> None:
    first = dead_letter(record_of(b"?"), stage="triage", kind="k", reason="r", topics=Topics())
    again = dead_letter(record_of(b"?"), stage="triage", kind="k", reason="r", topics=Topics())
    other = dead_letter(
        record_of(b"?", offset=43), stage="triage", kind="k", reason="r", topics=Topics()
    )
    assert first.event.id == again.event.id != other.event.id


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.DeadlockDetectedError(""), True),
        (asyncpg.exceptions.TooManyConnectionsError(""), True),
        (asyncpg.exceptions.QueryCanceledError(""), True),
        (asyncpg.exceptions.ReadOnlySQLTransactionError(""), True),
        (asyncpg.exceptions.UniqueViolationError(""), False),
        (asyncpg.exceptions.NumericValueOutOfRangeError(""), False),
        (ValueError("bad"), False),
    ],
)
def test_database_errors_are_told_apart(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_a_damaged_spool_file_is_set_aside(tmp_path) -> None:
    spool = Spool(tmp_path / "spool")
    good = spool.put(intake_event(new_intake(channel=Channel.SMS, text="banjir")))
    damaged = spool.folder / "00000000T000000000000-damaged.json"
    damaged.write_text("{half a rep")
    assert spool.pending() == [damaged, good]
    moved = spool.set_aside(damaged, reason="not_json")
    assert spool.pending() == [good]
    assert moved.exists() and moved.with_suffix(".reason").read_text().startswith("not_json")


def test_a_dead_letter_stays_small_whatever_the_original_carried() -> None:
    record = record_of(
        b"x" * (900 * 1024),
        key=b"k" * 50_000,
        headers=tuple((f"h{i}" * 100, b"v" * 50_000) for i in range(500)),
    )
    out = dead_letter(record, stage="enricher", kind="oversize", reason="r" * 5000, topics=Topics())
    raw = encode_event(out.event)
    assert len(raw) < 220 * 1024
    assert isinstance(decode_event(raw).payload, DeadLetterV1)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_batch_is_topped_up_only_when_the_stage_was_busier_than_idle() -> None:
    clock = Clock()
    top_up = TopUp(wait_ms=15, max_records=500, clock=clock)
    assert not top_up.begin()  # the first batch: nothing was waiting behind another
    clock.now += 0.030  # 30 ms of work
    top_up.end()
    clock.now += 0.002  # the next batch was already fetched: 2 ms idle
    assert top_up.begin()
    clock.now += 0.010
    top_up.end()
    clock.now += 2.0  # a quiet stage: its batch is fresh, waiting would only delay it
    assert not top_up.begin()
    off = TopUp(wait_ms=0, max_records=500, clock=clock)
    off.begin()
    clock.now += 0.030
    off.end()
    clock.now += 0.002
    assert not off.begin()  # turned off


class SilentConsumer:
    """A consumer whose fetch brings nothing, after waiting as long as it is allowed."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.fetches = 0

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        self.fetches += 1
        self.clock.now += timeout_ms / 1000
        return {}


async def test_a_top_up_that_brings_nothing_counts_as_idle_not_as_work() -> None:
    # 40 records a second, 10 ms each: after one long batch the stage waits once in vain,
    # and then no more (were the wait counted as work, it would wait before every batch).
    clock = Clock()
    consumer = SilentConsumer(clock)
    top_up = TopUp(wait_ms=15, max_records=500, clock=clock)

    async def handle(records: Sequence[Any]) -> None:
        clock.now += 0.010

    top_up.begin()
    clock.now += 0.100  # one long batch
    top_up.end()
    for _ in range(5):
        clock.now += 0.002 if consumer.fetches == 0 else 0.015
        await top_up.process(consumer, [record_of(b"x")], handle)
    assert consumer.fetches == 1


class SeekingConsumer:
    """Records where a consumer was told to seek; `revoked` partitions refuse, as aiokafka's do."""

    def __init__(self, revoked: set[TopicPartition]) -> None:
        self.revoked = revoked
        self.seeks: dict[TopicPartition, int] = {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp in self.revoked:
            raise IllegalStateError(f"{tp} is not assigned")
        self.seeks[tp] = offset


def test_a_rewind_goes_back_to_each_partitions_earliest_record_and_skips_revoked_ones() -> None:
    records = [
        record_of(b"a", topic="t", partition=0, offset=7),
        record_of(b"b", topic="t", partition=1, offset=3),
        record_of(b"c", topic="t", partition=0, offset=5),
        record_of(b"d", topic="u", partition=0, offset=9),
        record_of(b"e", topic="t", partition=1, offset=4),
    ]
    consumer = SeekingConsumer(revoked={TopicPartition("u", 0)})
    rewind(consumer, records)
    assert consumer.seeks == {TopicPartition("t", 0): 5, TopicPartition("t", 1): 3}


class RereadingConsumer:
    """A consumer that, as after a rebalance, reads a partition again from an earlier offset."""

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        return {
            TopicPartition("t", 0): [
                record_of(b"a", topic="t", partition=0, offset=o) for o in (4, 5, 6, 7)
            ],
            TopicPartition("t", 1): [record_of(b"b", topic="t", partition=1, offset=0)],
        }


async def test_a_top_up_adds_no_record_the_batch_already_holds() -> None:
    clock = Clock()
    top_up = TopUp(wait_ms=15, max_records=500, clock=clock)
    batch = [record_of(b"a", topic="t", partition=0, offset=o) for o in (4, 5)]
    added = await top_up.more(RereadingConsumer(), batch)
    assert [(r.partition, r.offset) for r in added] == [(0, 6), (0, 7), (1, 0)]


class Sleeps:
    """Sleeps that only move the clock, and remember how long each was."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(round(seconds, 3))
        self.clock.now += seconds


async def test_a_paced_stage_rests_for_what_is_left_of_its_interval_unless_behind() -> None:
    clock = Clock()
    sleeps = Sleeps(clock)
    pace = Pace(interval_ms=100, max_records=3, clock=clock, sleep=sleeps)
    one = [record_of(b"x")]
    pace.begin()
    clock.now += 0.030  # a 30 ms batch: 70 ms to rest
    await pace.rest(one)
    pace.begin()
    clock.now += 0.250  # a batch longer than the interval: no rest
    await pace.rest(one)
    pace.begin()
    clock.now += 0.010
    await pace.rest([record_of(b"x", offset=o) for o in range(3)])  # full: a backlog, no rest
    off = Pace(interval_ms=0, max_records=3, clock=clock, sleep=sleeps)
    off.begin()
    await off.rest(one)
    assert sleeps.asked == [0.07]


@dataclass
class Processor:
    """Stands in for a stage's BatchProcessor: fails while told to, counts its errors."""

    stage: str = "tracker"
    fail: bool = False
    handled: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> Processor:
        return self

    def error(self, kind: str) -> None:
        self.errors.append(kind)

    async def process(self, records: Sequence[Any]) -> None:
        if self.fail:
            raise RuntimeError("database refused")
        self.handled.append(len(records))


def test_a_paced_stage_takes_no_top_up_and_an_unpaced_one_takes_no_rest() -> None:
    kafka = KafkaSettings(top_up_ms=25, max_batch=7)
    paced = BatchLoop.for_stage(Processor(), kafka, batch_interval_ms=300)
    unpaced = BatchLoop.for_stage(Processor(), kafka, batch_interval_ms=0)
    assert (paced.top_up.wait_ms, paced.pace.interval_ms) == (0, 300)
    assert (unpaced.top_up.wait_ms, unpaced.pace.interval_ms) == (25, 0)
    # A full batch is a backlog to both: no top-up past it, no rest after it.
    assert {loop.top_up.max_records for loop in (paced, unpaced)} == {7}
    assert {loop.pace.max_records for loop in (paced, unpaced)} == {7}


async def test_a_failed_batch_pauses_longer_each_time_in_a_row_and_takes_no_rest() -> None:
    clock = Clock()
    rests, pauses = Sleeps(clock), Sleeps(clock)
    processor = Processor(fail=True)
    loop = BatchLoop(
        processor,
        TopUp(wait_ms=0, max_records=3, clock=clock),
        Pace(interval_ms=1000, max_records=3, clock=clock, sleep=rests),  # longer than a pause
        sleep=pauses,
    )
    one = [record_of(b"x")]
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await loop.handle(None, one)
    assert (pauses.asked, rests.asked) == ([0.2, 0.4], [])
    assert processor.errors == ["batch_failed", "batch_failed"]
    processor.fail = False
    await loop.handle(None, one)  # handled at once: the whole interval is left to rest
    assert (processor.handled, rests.asked, loop.failures_in_a_row) == ([1], [1.0], 0)
    processor.fail = True
    with pytest.raises(RuntimeError):
        await loop.handle(None, one)
    assert pauses.asked[-1] == 0.2  # a success in between starts the count again
