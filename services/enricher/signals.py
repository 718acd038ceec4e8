"""Caller signals from history: repeat callers, ghost calls, numbers flagged for pranks."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.events import CallerSignals, IntakeReceivedV1
from services.enricher.repository import CallerHistory


def is_ghost(intake: IntakeReceivedV1) -> bool:
    """Nothing said and no place given: an empty or silent call."""
    return not intake.text.strip() and not (intake.place_hint or "").strip()


def caller_signals(
    intake: IntakeReceivedV1,
    history: CallerHistory,
    *,
    repeat_window: timedelta,
    prank_threshold: int,
) -> CallerSignals:
    """Signals for triage from what was known before this report."""
    last: datetime | None = history.last_report_at
    return CallerSignals(
        prior_reports=history.reports,
        prior_pranks=history.pranks,
        repeat_caller=last is not None and intake.received_at - last <= repeat_window,
        prank_flagged=history.pranks >= prank_threshold,
        ghost=is_ghost(intake),
    )
