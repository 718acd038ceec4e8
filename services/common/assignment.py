"""Partitions given to a stage's processes by `siaga up`'s supervisor instead of a consumer group.

A consumer group hands out partitions by rebalancing, and aiokafka's rebalances stop every
member until they end: on the embedded broker a dead process cost its stage's other
processes 4-5 s (docs/operations.md). Under `siaga up` the supervisor, which sees a death
at once, gives each process its partitions in a file (`SIAGA_KAFKA_ASSIGNMENT_FILE`) and,
when one dies, hands the dead one's partitions to a live one by rewriting that one's file;
a process follows its file as it changes. Offsets are still committed under the stage's
group id, so what each partition's reader has done survives any change of hands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from aiokafka import TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import first_error
from services.common.files import write_private


class AssignmentError(ValueError):
    """An assignment file that cannot be read."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1, max_length=249)
    partition: int = Field(ge=0)


class _File(BaseModel):
    """What an assignment file holds."""

    model_config = ConfigDict(extra="forbid")

    partitions: list[_Part]


def read_assignment(path: Path) -> list[TopicPartition]:
    """The partitions a file gives, in order; `AssignmentError` when it cannot be read."""
    try:
        found = _File.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise AssignmentError(f"{path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        where, what = first_error(exc, where="the file")
        raise AssignmentError(f"{path}: {where}: {what}") from exc
    return sorted({TopicPartition(p.topic, p.partition) for p in found.partitions})


def write_assignment(path: Path, partitions: Sequence[TopicPartition]) -> None:
    """Give `partitions` to the process that follows `path`: written whole, then renamed
    into place, so a reader never sees half a file."""
    body = {"partitions": [{"topic": tp.topic, "partition": tp.partition} for tp in partitions]}
    write_private(path, json.dumps(body).encode())


def share_out(
    partitions: Sequence[TopicPartition], replicas: Sequence[str]
) -> dict[str, list[TopicPartition]]:
    """Each replica's share: partition number p of every topic to replica p mod n, so one
    process reads the same partition number of each topic (as Kafka's range assignor
    would), and a replica beyond the number of partitions stands by with none."""
    shares: dict[str, list[TopicPartition]] = {name: [] for name in replicas}
    for tp in sorted(partitions):
        shares[replicas[tp.partition % len(replicas)]].append(tp)
    return shares


def take_over(
    shares: Mapping[str, Sequence[TopicPartition]], *, dead: str, live: Sequence[str]
) -> tuple[dict[str, list[TopicPartition]], str | None]:
    """The shares once `dead`'s partitions go to the live replica that holds the fewest
    (the first of them on a tie), and that heir; with no live replica the shares stay as
    they are, and the dead one takes its own back when it is started again."""
    new = {name: list(parts) for name, parts in shares.items()}
    heirs = [name for name in live if name != dead]
    if not new.get(dead) or not heirs:
        return new, None
    heir = min(heirs, key=lambda name: len(new[name]))
    new[heir] = sorted({*new[heir], *new[dead]})
    new[dead] = []
    return new, heir
