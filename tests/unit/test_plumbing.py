"""Shared plumbing: dead letters stay small and whole, errors are classified, spool is robust."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import asyncpg
import pytest

from schemas.envelope import decode_event, encode_event
from schemas.events import DeadLetterV1
from schemas.topics import Topics
from schemas.vocabulary import Channel
from services.clients.operator import Spool, intake_event, new_intake
from services.common.db import is_transient
from services.common.deadletter import MAX_ORIGINAL, dead_letter
from services.common.kafka import TopUp


@dataclass
class Record:
    value: bytes | None
    topic: str = "siaga.intake.received"
    partition: int = 1
    offset: int = 42
    key: bytes | None = b"k"
    headers: tuple[tuple[str, bytes], ...] = ()
    raw_headers: tuple[tuple[str, bytes], ...] = field(default=())


def test_a_dead_letter_of_a_huge_message_stays_readable() -> None:
    huge = b"x" * (400 * 1024)
    out = dead_letter(
        Record(huge), stage="enricher", kind="oversize", reason="too big", topics=Topics()
    )
    raw = encode_event(out.event)
    back = decode_event(raw).payload  # a dead letter can itself be read (and redriven)
    assert isinstance(back, DeadLetterV1)
    assert back.original_truncated and back.original_size == len(huge)
    assert len(base64.b64decode(back.original_value_b64)) == MAX_ORIGINAL
    assert out.topic == "siaga.deadletter" and out.key == b"k"


def test_a_dead_letter_keeps_the_true_header_bytes() -> None:
    record = Record(b"{}", headers=(("h", b""),), raw_headers=(("h", b"\xff\xfe"),))
    out = dead_letter(record, stage="enricher", kind="not_json", reason="x", topics=Topics())
    payload = out.event.payload
    assert isinstance(payload, DeadLetterV1)
    assert payload.original_headers == [("h", base64.b64encode(b"\xff\xfe").decode())]


def test_the_same_bad_record_gives_the_same_dead_letter_id() -> None:
    first = dead_letter(Record(b"?"), stage="triage", kind="k", reason="r", topics=Topics())
    again = dead_letter(Record(b"?"), stage="triage", kind="k", reason="r", topics=Topics())
    other = dead_letter(
        Record(b"?", offset=43), stage="triage", kind="k", reason="r", topics=Topics()
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
    record = Record(
        b"x" * (900 * 1024),
        key=b"k" * 50_000,
        raw_headers=tuple((f"h{i}" * 100, b"v" * 50_000) for i in range(500)),
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
    clock.now += 0.010
    top_up.end()
    clock.now += 0.001
    assert not TopUp(wait_ms=0, max_records=500, clock=clock).begin()  # turned off
