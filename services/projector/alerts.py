"""Public alerts derived from disaster incidents: a disaster classified becomes a CAP Alert,
a change worth telling an Update of it, the end of the incident (or a triage that finds no
disaster after all) its Cancel. Pure decisions: the same incident events, in their order on
the incident's partition, give the same alerts, with ids derived from their causes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from schemas.cap import CapAlert, Certainty, ResponseType, Severity, Urgency
from schemas.common import Place
from schemas.ids import derive_id
from schemas.vocabulary import Category, IncidentStatus, Priority
from services.common.alerting import AlertPolicy

# How soon and how grave, by priority: P1 is an immediate threat to life.
GRADES: dict[Priority, tuple[Urgency, Severity]] = {
    Priority.P1: ("Immediate", "Severe"),
    Priority.P2: ("Immediate", "Moderate"),
    Priority.P3: ("Expected", "Minor"),
    Priority.P4: ("Future", "Minor"),
}
_SURER: tuple[Certainty, ...] = ("Unknown", "Unlikely", "Possible", "Likely", "Observed")
# Why an incident's alert is withdrawn, by the status that ends the incident.
ENDINGS: dict[IncidentStatus, tuple[str, ResponseType]] = {
    IncidentStatus.RESOLVED: (
        "Kejadian telah tertangani; petugas telah selesai di lokasi.",
        "AllClear",
    ),
    IncidentStatus.CLOSED: ("Kejadian telah ditutup.", "AllClear"),
    IncidentStatus.CANCELLED: ("Laporan dibatalkan oleh petugas.", "None"),
    IncidentStatus.MERGED: ("Laporan digabung dengan kejadian lain.", "None"),
}
ROLE = "cap-alert"


@dataclass(frozen=True)
class Triaged:
    """What triage or a call-taker decided about an incident, as an alert tells it."""

    incident_id: UUID
    category: Category
    priority: Priority
    agency: str
    confirmed: bool  # False while triage asks a person to confirm it (units already go)
    channel: str
    place: Place | None
    at: datetime
    held: bool = False  # too unsure to act on: nothing is sent, nor told, until reviewed


def alert_id(cause: str) -> str:
    """The identifier of the alert an event causes: the same for the same event."""
    return str(derive_id(cause, ROLE))


def _live(previous: CapAlert | None) -> bool:
    return previous is not None and previous.msg_type != "Cancel"


def on_triage(
    previous: CapAlert | None, decision: Triaged, *, cause: str, policy: AlertPolicy, text: str
) -> CapAlert | None:
    """The alert a classification or review causes, given the incident's latest alert: an
    Alert for a new disaster (once a person has looked at one triage was unsure of), an
    Update when its grade changed, a Cancel when it is no disaster after all; None when
    there is nothing to tell."""
    if decision.category is not Category.DISASTER:
        if not _live(previous):
            return None
        assert previous is not None
        note = f"Setelah diperiksa, laporan ini bukan bencana ({decision.category.value})."
        return _cancel(previous, note, "None", cause=cause, at=decision.at, policy=policy)
    if not _live(previous):
        return None if decision.held else _first(decision, cause=cause, policy=policy, text=text)
    assert previous is not None
    urgency, severity = GRADES[decision.priority]
    said: Certainty = "Likely" if decision.confirmed else "Possible"
    certainty = max(said, previous.certainty, key=_SURER.index)
    if (urgency, severity, certainty) == (previous.urgency, previous.severity, previous.certainty):
        return None
    told = "dikonfirmasi petugas" if decision.confirmed else "diperbarui"
    return _update(
        previous,
        f"Penilaian {told} pukul {_clock(policy.local(decision.at))}: prioritas "
        f"{decision.priority.value}, ditangani {decision.agency}.",
        cause=cause,
        at=decision.at,
        policy=policy,
        urgency=urgency,
        severity=severity,
        certainty=certainty,
    )


def on_status(
    previous: CapAlert | None,
    status: IncidentStatus,
    *,
    at: datetime,
    cause: str,
    policy: AlertPolicy,
) -> CapAlert | None:
    """The alert a lifecycle step causes: a Cancel when the incident ends, an Update
    (observed) when the first responders reach the scene; None otherwise."""
    if not _live(previous):
        return None
    assert previous is not None
    if status in ENDINGS:
        note, response = ENDINGS[status]
        return _cancel(previous, note, response, cause=cause, at=at, policy=policy)
    if status is IncidentStatus.ON_SCENE and previous.certainty != "Observed":
        return _update(
            previous,
            f"Petugas tiba di lokasi pukul {_clock(policy.local(at))}.",
            cause=cause,
            at=at,
            policy=policy,
            certainty="Observed",
        )
    return None


def _clock(at: datetime) -> str:
    """A time as an Indonesian notice writes it: 16.05 WIB."""
    return f"{at:%H.%M} {at.tzname() or at.strftime('%z')}"


def _first(decision: Triaged, *, cause: str, policy: AlertPolicy, text: str) -> CapAlert:
    """The Alert of a disaster incident, worded from the hazard its report names. The
    report's own words stay out of it: a public alert repeats no caller's text."""
    hazard = policy.hazard_in(text)
    area = policy.area_of_place(decision.place)
    sent = policy.local(decision.at)
    urgency, severity = GRADES[decision.priority]
    where = area.area_desc.removesuffix(f", {policy.gazetteer.regency}")
    return CapAlert(
        identifier=alert_id(cause),
        sender=policy.sender,
        sent=sent,
        msg_type="Alert",
        source=f"Siaga: laporan {decision.channel}",
        incident_id=decision.incident_id,
        language=policy.language,
        categories=[hazard.category],
        event=hazard.event,
        response_types=list(hazard.response),
        urgency=urgency,
        severity=severity,
        certainty="Likely" if decision.confirmed else "Possible",
        effective=sent,
        expires=sent + policy.expires_after,
        sender_name=policy.sender_name,
        headline=f"{hazard.event} di {where}"[:160],
        description=f"Laporan {hazard.event.lower()} di {area.area_desc} diterima pukul "
        f"{_clock(sent)} dan ditangani {decision.agency} (prioritas {decision.priority.value}).",
        instruction=hazard.instruction,
        web=policy.web,
        contact=policy.contact,
        area=area,
    )


def _update(
    previous: CapAlert, news: str, *, cause: str, at: datetime, policy: AlertPolicy, **grades: Any
) -> CapAlert:
    sent = policy.local(at)
    return previous.next_message(
        identifier=alert_id(cause),
        sent=sent,
        msg_type="Update",
        expires=sent + policy.expires_after,
        description=f"{previous.description or ''} {news}".strip()[-4000:],
        **grades,
    )


def _cancel(
    previous: CapAlert,
    note: str,
    response: ResponseType,
    *,
    cause: str,
    at: datetime,
    policy: AlertPolicy,
) -> CapAlert:
    # A Cancel stays in the feed as long as what it withdraws would have, so a reader
    # that saw the alert learns it is over.
    sent = policy.local(at)
    return previous.next_message(
        identifier=alert_id(cause),
        sent=sent,
        msg_type="Cancel",
        note=note,
        response_types=[response],
        headline=f"Dicabut: {previous.headline or previous.event}"[:200],
        expires=max(previous.expires or sent, sent),
    )
