"""The pipeline's stages by name, each with its composition root."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Only for annotations: the command line reads STAGES, and need not load a stage's
    # runtime (FastStream, aiohttp) to parse its arguments.
    from schemas.topics import Topics
    from services.common.runtime import StageRuntime
    from services.common.settings import CommonSettings
    from services.common.stage import Stage

# The pipeline, in the order an intake goes through it; then the gateway, which lets the
# outside in over HTTP (and follows the incidents its intakes joined).
PIPELINE: tuple[str, ...] = ("enricher", "triage", "dispatcher", "tracker", "projector")
STAGES: tuple[str, ...] = (*PIPELINE, "gateway")


def bootstrap_for(stage: str) -> Callable[..., AbstractAsyncContextManager[StageRuntime]]:
    """The composition root of a stage (imported lazily: each process loads only its own)."""
    if stage == "enricher":
        from services.enricher.bootstrap import bootstrap as enricher

        return enricher
    if stage == "triage":
        from services.triage.bootstrap import bootstrap as triage

        return triage
    if stage == "dispatcher":
        from services.dispatcher.bootstrap import bootstrap as dispatcher

        return dispatcher
    if stage == "tracker":
        from services.tracker.bootstrap import bootstrap as tracker

        return tracker
    if stage == "projector":
        from services.projector.bootstrap import bootstrap as projector

        return projector
    if stage == "gateway":
        from services.gateway.bootstrap import bootstrap as gateway

        return gateway
    raise ValueError(f"unknown stage {stage!r}; stages are: {', '.join(STAGES)}")


def start_stage(
    stage: str, common: CommonSettings, **overrides: Any
) -> AbstractAsyncContextManager[StageRuntime]:
    """Build one stage with shared settings and optional overrides."""
    return bootstrap_for(stage)(common, **overrides)


def declaration(stage: str) -> Stage:
    """A stage's declaration (what it consumes and owns), imported only when asked for."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are: {', '.join(STAGES)}")
    module = importlib.import_module(f"services.{stage}.stage")
    found: Stage = getattr(module, stage.upper())
    return found


def subscriptions(stage: str, topics: Topics) -> list[str]:
    """The topics a stage's consumer group reads: those of the events it declares."""
    return declaration(stage).subscriptions(topics)


def group_id(stage: str, topics: Topics) -> str:
    """The consumer group of a stage."""
    return declaration(stage).group_id(topics)
