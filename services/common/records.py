"""A consumed record as a stage sees it: wrapped once where it enters, header bytes as sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

# A record's headers: (name, value) pairs, the values the bytes the producer sent.
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record: its place in the log, key, value, headers and timestamp (ms)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp: int = 0

    @classmethod
    def of(cls, record: ConsumerRecord[bytes, bytes] | Record) -> Record:
        """The typed value of an aiokafka record, its headers as they came."""
        if isinstance(record, Record):
            return record
        headers = tuple(record.headers)
        if any(value is None for _, value in headers):
            headers = tuple((key, value or b"") for key, value in headers)
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            headers,
            record.timestamp,
        )
