"""Composition root of the projector: handlers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.projector.entrypoint import Projector
from services.stages import subscriptions


@contextlib.asynccontextmanager
async def bootstrap(
    common: CommonSettings | None = None, *, schema: str | None = None, group_id: str | None = None
) -> AsyncIterator[StageRuntime]:
    """Run the projector until the context exits (into another schema for a rebuild)."""
    common = common or CommonSettings()
    projector = Projector()
    async with stage_runtime(
        name="projector",
        settings=common,
        subscriptions=subscriptions("projector", common.topics),
        # Every other topic has a stage that dead-letters what it cannot decode; what
        # cannot be decoded on the dead-letter topic itself is never sent back into it.
        owned_topics=[],
        handlers=projector.handlers(),
        state=projector.writes,
        schema=schema,
        group_id=group_id,
    ) as runtime:
        yield runtime
