"""Composition root of the projector: handlers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.alerting import load_alert_policy
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.projector.entrypoint import Projector
from services.projector.repository import ReadModelWrites
from services.projector.stage import PROJECTOR


class ProjectorSettings(BaseSettings):
    """`SIAGA_PROJECTOR_*`: how often the projector takes a batch."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_PROJECTOR_")

    batch_interval_ms: int = Field(
        default=100,
        ge=0,
        le=10_000,
        description="A batch is taken at most this often, unless a full one waits (the "
        "read model is for people, and fewer, fuller batches spare the broker: "
        "`Pace`); 0: as soon as records come",
    )


@contextlib.asynccontextmanager
async def bootstrap(
    common: CommonSettings | None = None,
    settings: ProjectorSettings | None = None,
    *,
    schema: str | None = None,
    group_id: str | None = None,
) -> AsyncIterator[StageRuntime]:
    """Run the projector until the context exits (into another schema for a rebuild)."""
    common = common or CommonSettings()
    settings = settings or ProjectorSettings()
    projector = Projector(policy=load_alert_policy(common.home.pack()))
    async with stage_runtime(
        stage=PROJECTOR,
        settings=common,
        handlers=projector.handlers(),
        new_state=ReadModelWrites,
        schema=schema,
        group_id=group_id,
        batch_interval_ms=settings.batch_interval_ms,
    ) as runtime:
        yield runtime
