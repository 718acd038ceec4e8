"""Composition root of the dispatcher: run cards, timers, handlers and the running stage."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import Topics
from schemas.vocabulary import Priority
from services.common.datapack import DataPack, resolve_pack
from services.common.runtime import StageRuntime, stage_runtime
from services.common.settings import CommonSettings
from services.common.timers import PeriodicJob
from services.dispatcher.entrypoint import Dispatcher
from services.dispatcher.runcards import RunCards
from services.dispatcher.stage import DISPATCHER
from services.dispatcher.unit_reports import ReportLimits

# Batang's centre, where the dispatcher ranks units from when a report has no place.
BATANG_CENTRE = (-7.0210, 109.8616)


class DispatcherSettings(BaseSettings):
    """`SIAGA_DISPATCHER_*`: run cards, acknowledgement and work-order timers."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_DISPATCHER_")

    run_cards: str | None = Field(
        default=None,
        description="JSON overrides of the data pack's runcards.toml, e.g. "
        '{"fire/P1": ["fire_truck", "fire_truck", "ambulance:ALS"]}',
    )
    ack_timeout_p1_s: float = Field(default=30, gt=0, description="Acknowledge a P1 order within")
    ack_timeout_p2_s: float = Field(default=60, gt=0, description="Acknowledge a P2 order within")
    ack_timeout_other_s: float = Field(default=120, gt=0, description="Acknowledge P3/P4 within")
    work_order_due_s: float = Field(default=3 * 24 * 3600, gt=0, description="First response due")
    work_order_reminder_s: float = Field(
        default=24 * 3600, ge=0, description="Remind the agency this long before it is due"
    )
    timer_interval_s: float = Field(default=1.0, gt=0, description="How often timers are checked")
    report_clock_skew_s: float = Field(
        default=300, gt=0, description="A unit's report may be this far ahead of our clock"
    )
    report_max_age_s: float = Field(
        default=24 * 3600, gt=0, description="A unit's report older than this is refused"
    )
    fallback_lat: float = Field(default=BATANG_CENTRE[0], description="Rank units from here...")
    fallback_lon: float = Field(default=BATANG_CENTRE[1], description="...when no place is known")

    def ack_timeouts(self) -> dict[Priority, timedelta]:
        """Acknowledgement time per priority."""
        other = timedelta(seconds=self.ack_timeout_other_s)
        return {
            Priority.P1: timedelta(seconds=self.ack_timeout_p1_s),
            Priority.P2: timedelta(seconds=self.ack_timeout_p2_s),
            Priority.P3: other,
            Priority.P4: other,
        }


def build_dispatcher(
    topics: Topics, settings: DispatcherSettings, *, pack: DataPack | None = None
) -> Dispatcher:
    """The dispatcher's handlers and timers, with the run cards of `pack` (default: Batang's
    built-in one) overridden by `settings`, and the times `settings` give."""
    pack = pack or resolve_pack(None)
    return Dispatcher(
        topics=topics,
        run_cards=RunCards.load(pack.run_cards).with_overrides(settings.run_cards),
        fallback_point=(settings.fallback_lat, settings.fallback_lon),
        ack_timeouts=settings.ack_timeouts(),
        work_order_due=timedelta(seconds=settings.work_order_due_s),
        work_order_reminder=timedelta(seconds=settings.work_order_reminder_s),
        report_limits=ReportLimits(
            clock_skew=timedelta(seconds=settings.report_clock_skew_s),
            max_age=timedelta(seconds=settings.report_max_age_s),
        ),
    )


@contextlib.asynccontextmanager
async def bootstrap(
    common: CommonSettings | None = None, settings: DispatcherSettings | None = None
) -> AsyncIterator[StageRuntime]:
    """Run the dispatcher until the context exits."""
    common = common or CommonSettings()
    settings = settings or DispatcherSettings()
    dispatcher = build_dispatcher(common.topics, settings, pack=common.home.pack())
    async with stage_runtime(
        stage=DISPATCHER,
        settings=common,
        new_state=dispatcher.new_batch,
        handlers=[
            dispatcher.on_incident_classified,
            dispatcher.on_triage_reviewed,
            dispatcher.on_incident_finished,
            dispatcher.on_unit_registered,
            dispatcher.on_unit_moved,
            dispatcher.on_unit_status,
            dispatcher.on_cancel_dispatch,
            dispatcher.on_reassign_dispatch,
            dispatcher.on_answer_work_order,
            dispatcher.on_close_work_order,
        ],
        jobs=[
            PeriodicJob(
                "ack-timeouts",
                settings.timer_interval_s,
                dispatcher.expire_unacknowledged,
                new_state=dispatcher.new_batch,
            ),
            PeriodicJob(
                "work-order-timers",
                settings.timer_interval_s,
                dispatcher.remind_and_escalate_work_orders,
            ),
        ],
    ) as runtime:
        yield runtime
