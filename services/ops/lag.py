"""Consumer lag per stage and partition: committed offset against the end of the log.

The end is the high watermark of a fetch (`services.common.admin.log_ends`), because
Tansu's ListOffsets answers up to a batch too low; committed offsets come from a
consumer's `committed()`, because Tansu's admin `list_consumer_group_offsets` fails.
Both work the same on Apache Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.admin import committed_offsets, log_ends, partitions_of, plain_consumer
from services.common.settings import CommonSettings
from services.stages import STAGES, group_id, subscriptions


@dataclass(frozen=True)
class PartitionLag:
    """How far one stage is behind on one partition."""

    stage: str
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        """Records not yet processed (all of them when the group never committed)."""
        return max(0, self.end - (self.committed or 0))


async def stage_lag(
    settings: CommonSettings, stages: list[str] | None = None
) -> list[PartitionLag]:
    """Lag of every partition each stage reads."""
    topics = settings.topics
    chosen = stages or list(STAGES)
    async with plain_consumer(settings) as reader:
        every = await partitions_of(reader, topics.all())
        ends = await log_ends(reader, every)
    rows: list[PartitionLag] = []
    for stage in chosen:
        group = group_id(stage, topics)
        wanted = set(subscriptions(stage, topics))
        mine = [tp for tp in every if tp.topic in wanted]
        async with plain_consumer(settings, group_id=group) as consumer:
            committed = await committed_offsets(consumer, mine)
        rows += [
            PartitionLag(stage, group, tp.topic, tp.partition, committed[tp], ends[tp])
            for tp in mine
        ]
    return rows
