"""A live, human-readable view of the pipeline for the terminal of `siaga up`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from schemas.envelope import DecodeError, Event, decode_event
from schemas.events import (
    CallLinkedV1,
    DeadLetterV1,
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentEscalatedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    IntakeEnrichedV1,
    IntakeReceivedV1,
    SlaBreachedV1,
    TriageReviewedV1,
    UnitDispatchedV1,
    UnitStatusChangedV1,
    WorkOrderAnsweredV1,
    WorkOrderClosedV1,
    WorkOrderEscalatedV1,
    WorkOrderIssuedV1,
    WorkOrderReminderSentV1,
)
from services.common.admin import records_since
from services.common.readable import eta_minutes, mask_phones_in
from services.common.settings import CommonSettings
from services.common.text import clip


def _short(ident: object) -> str:
    return str(ident)[:8]


def _clip(text: str, width: int = 60) -> str:
    # Masked before it is cut, or the cut could leave most of a number to read.
    return clip(" ".join(mask_phones_in(text).split()), width)


def describe(event: Event) -> str | None:
    """One line for an event worth showing, or None."""
    p = event.payload
    if isinstance(p, IntakeReceivedV1):
        return f'received    {p.channel.value:<9} intake {_short(p.intake_id)}  "{_clip(p.text)}"'
    if isinstance(p, IntakeEnrichedV1):
        where = (
            f"{p.place.kecamatan} / {p.place.desa or '-'} ({p.place.method})"
            if p.place
            else "place unresolved"
        )
        flags = " repeat-caller" if p.signals.repeat_caller else ""
        flags += " prank-flagged" if p.signals.prank_flagged else ""
        return f"enriched    intake {_short(p.intake.intake_id)}  {where}{flags}"
    if isinstance(p, IncidentClassifiedV1):
        review = "  NEEDS HUMAN TRIAGE" if p.needs_review else ""
        if p.needs_confirmation:
            review = f"  TO CONFIRM: {p.questions[0]}" if p.questions else "  TO CONFIRM"
        return (
            f"classified  incident {_short(p.incident_id)}  {p.category.value} {p.priority.value}"
            f" -> {p.agency} (confidence {p.confidence:.2f}){review}"
        )
    if isinstance(p, TriageReviewedV1):
        return (
            f"reviewed    incident {_short(p.incident_id)}  {p.decision} by {p.reviewed_by}: "
            f"{p.category.value} {p.priority.value}"
        )
    if isinstance(p, CallLinkedV1):
        return f"linked      intake {_short(p.intake_id)} -> incident {_short(p.incident_id)}"
    if isinstance(p, UnitDispatchedV1):
        eta = f" ETA {eta_minutes(p.eta_seconds)} min" if p.eta_seconds is not None else ""
        return (
            f"dispatched  incident {_short(p.incident_id)}  {p.unit_id} ({p.unit_type.value}){eta}"
        )
    if isinstance(p, DispatchCancelledV1):
        return f"cancelled   incident {_short(p.incident_id)}  {p.unit_id}: {_clip(p.reason, 200)}"
    if isinstance(p, WorkOrderIssuedV1):
        return f"work order  incident {_short(p.incident_id)}  -> {p.agency}, due {p.due_at:%d %b %H:%M}"
    if isinstance(p, UnitStatusChangedV1):
        on = f" on incident {_short(p.incident_id)}" if p.incident_id else ""
        return f"unit        {p.unit_id} {p.status.value}{on}"
    if isinstance(p, IncidentStatusChangedV1):
        return f"status      incident {_short(p.incident_id)}  {p.to_status.value}"
    if isinstance(p, IncidentResolvedV1):
        return f"resolved    incident {_short(p.incident_id)}  by {', '.join(p.units)}"
    if isinstance(p, IncidentEscalatedV1):
        return f"ESCALATED   incident {_short(p.incident_id)}  {_clip(p.reason, 200)}"
    if isinstance(p, SlaBreachedV1):
        return f"SLA BREACH  incident {_short(p.incident_id)}  {p.target} ({p.priority.value} {p.category.value})"
    if isinstance(p, WorkOrderReminderSentV1):
        return f"reminder    incident {_short(p.incident_id)}  -> {p.agency}, due {p.due_at:%d %b %H:%M}"
    if isinstance(p, WorkOrderEscalatedV1):
        return f"OVERDUE     incident {_short(p.incident_id)}  at {p.agency}"
    if isinstance(p, WorkOrderAnsweredV1):
        return f'answered    incident {_short(p.incident_id)}  by {p.agency}: "{_clip(p.response)}"'
    if isinstance(p, WorkOrderClosedV1):
        return f"closed      incident {_short(p.incident_id)}  by {p.agency}"
    if isinstance(p, DeadLetterV1):
        return f"DEAD LETTER from {p.stage}: {_clip(p.reason, 90)}"
    return None


async def follow(
    settings: CommonSettings, *, since: datetime | None = None
) -> AsyncIterator[Event]:
    """Every event on every topic from `since` (default now), as it arrives."""
    since_ms = int((since or datetime.now(UTC)).timestamp() * 1000)
    async for record in records_since(settings, settings.topics.all(), since_ms=since_ms):
        try:
            yield decode_event(record.value)
        except DecodeError:
            continue
