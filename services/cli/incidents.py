"""Incidents: a call-taker's look-ups (`siaga incident show`, `list`) and review, a
supervisor's cancel and close, and an incident's events from the log (`incident log`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from schemas.vocabulary import NOT_INCIDENTS, Category, Priority
from services.cli.commands import print_json
from services.cli.ops import ops_settings, since_ms
from services.cli.parsing import an_id, group, positive
from services.cli.readmodel import read_model
from services.cli.supervisor import incident_id_of, now, publish

if TYPE_CHECKING:
    from collections.abc import Sequence

    from schemas.common import Contract
    from services.projector.queries import IncidentSummary, IncidentView


def _incident_json(incident: IncidentView) -> dict[str, Any]:
    """What `incident show` prints (both forms are read by people): phone numbers in the
    caller's words, notes and the timeline are masked; the log keeps them in full."""
    from services.common.readable import mask_phones_in

    def masked(text: str | None) -> str | None:
        return None if text is None else mask_phones_in(text)

    review = incident.review
    return {
        "incident_id": incident.incident_id,
        "status": incident.status,
        "category": incident.category,
        "priority": incident.priority,
        "agency": incident.agency,
        "confidence": incident.confidence,
        "explanation": incident.explanation,
        "needs_review": incident.needs_review,
        "needs_confirmation": incident.needs_confirmation,
        "life_threat": incident.life_threat,
        "questions": list(incident.questions),
        "review": None
        if review is None
        else {
            "decision": review.decision,
            "by": review.by,
            "at": review.at,
            "note": masked(review.note),
        },
        "channel": incident.channel,
        "text": masked(incident.text),
        "kecamatan": incident.kecamatan,
        "desa": incident.desa,
        "lat": incident.lat,
        "lon": incident.lon,
        "received_at": incident.received_at,
        "first_dispatched_at": incident.first_dispatched_at,
        "resolved_at": incident.resolved_at,
        "intake_ids": list(incident.intake_ids),
        "units": [
            {"unit_id": u.unit_id, "unit_type": u.unit_type, "status": u.status}
            for u in incident.units
        ],
        "timeline": [
            {**step.to_json(), "summary": masked(step.summary)} for step in incident.timeline
        ],
    }


# Timeline entries of the dispatcher's first answer to an incident: an order, a work order,
# or an escalation for want of a free unit.
_DISPATCHER_ANSWERS = ("siaga.dispatch.", "siaga.incident.escalated.")


def decided(incident: IncidentView) -> bool:
    """Whether the pipeline has done what it does by itself with an incident: classified it
    and sent its units or its work order (or escalated it, no unit being free), unless
    nothing is sent: a prank or a silent call, or a report held for a human's triage."""
    category = incident.category
    if category is None:
        return False
    if category in NOT_INCIDENTS or (incident.needs_review and incident.review is None):
        return True
    return bool(incident.units) or any(
        entry.event_type.startswith(_DISPATCHER_ANSWERS) for entry in incident.timeline
    )


async def show(args: argparse.Namespace) -> int:
    """One incident by incident id or intake id; with --wait, waiting up to that many seconds
    for it to be decided (classified, its units or work order sent), then showing it as it is."""
    import asyncio

    from services.projector.queries import find_incident

    conn = await read_model()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, args.wait)
        while True:
            row = await find_incident(conn, args.id)
            if (row is not None and decided(row)) or loop.time() >= deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    if row is None:
        print(f"siaga: no incident for {args.id} (yet)", file=sys.stderr)
        return 1
    shown = _incident_json(row)
    if args.json:
        print_json(shown)
    else:
        _print_incident(shown)
    return 0


async def listing(args: argparse.Namespace) -> int:
    """The newest incidents, or the triage review queue."""
    from services.common.readable import mask_phones_in
    from services.projector.queries import ReviewItem, list_incidents, review_queue

    conn = await read_model()
    try:
        rows: Sequence[IncidentSummary] = await (
            review_queue(conn, limit=args.limit, status=args.status)
            if args.review
            else list_incidents(conn, limit=args.limit, status=args.status)
        )
    finally:
        await conn.close()
    if args.json:
        print_json([r.to_json() for r in rows])
    else:
        for r in rows:
            review = " REVIEW" if r.needs_review else " CONFIRM" if r.needs_confirmation else ""
            print(
                f"{r.incident_id}  {r.status or '-':<12} {r.priority or '--'} "
                f"{r.category or '-':<17} {r.kecamatan or '-':<12} {r.units or ''}{review}"
            )
            if isinstance(r, ReviewItem):
                text = None if r.text is None else mask_phones_in(r.text)
                print(f"    {text!r}\n    because: {r.explanation}")
                for question in r.questions:
                    print(f"    ask: {question}")
    return 0


def _print_incident(i: dict[str, Any]) -> None:
    print(f"incident  {i['incident_id']}")
    # The tracker's first status may not have reached the read model yet: the incident is
    # then as triage opened it.
    print(f"status    {i['status'] or 'received'}")
    print(
        f"what      {i['category']} {i['priority']} -> {i['agency']} (confidence {i['confidence']})"
    )
    if i["needs_review"]:
        print("          waiting for a human triage decision")
    elif i["needs_confirmation"]:
        print("          units sent; a call-taker confirms or lowers it (siaga incident review)")
    for question in i["questions"]:
        print(f"ask       {question}")
    if i["review"]:
        r = i["review"]
        note = f": {r['note']}" if r["note"] else ""
        print(f"reviewed  {r['decision']} by {r['by']}{note}")
    print(f"where     {i['kecamatan'] or '-'} / {i['desa'] or '-'}")
    print(f"report    {i['channel']}: {i['text']}")
    print(f"intakes   {', '.join(str(x) for x in i['intake_ids'])}")
    for u in i["units"]:
        print(f"unit      {u['unit_id']} ({u['unit_type']}) {u['status']}")
    for step in i["timeline"]:
        print(f"  {step['at']:%H:%M:%S}  {step['summary']}")


# ---------------------------------------------------------------- supervisor and review


async def lifecycle(args: argparse.Namespace) -> int:
    """Cancel or close an incident."""
    from schemas.commands import CancelIncidentV1, CloseIncidentV1
    from services.common.settings import CommonSettings

    settings = CommonSettings()
    incident_id = await incident_id_of(settings, args.id)
    command: Contract
    if args.incident_command == "cancel":
        command = CancelIncidentV1(
            incident_id=incident_id, reason=args.reason, requested_by=args.by, requested_at=now()
        )
    else:
        command = CloseIncidentV1(
            incident_id=incident_id, note=args.note, requested_by=args.by, requested_at=now()
        )
    await publish(settings, command, source="/siaga/cli/supervisor")
    print(f"{args.incident_command} sent for incident {incident_id}")
    return 0


async def review(args: argparse.Namespace) -> int:
    """A call-taker's answer to triage: confirm it, or give a new priority or category."""
    from schemas.commands import ReviewTriageV1
    from services.common.settings import CommonSettings

    settings = CommonSettings()
    incident_id = await incident_id_of(settings, args.id)
    command = ReviewTriageV1(
        incident_id=incident_id,
        priority=Priority(args.priority) if args.priority else None,
        category=Category(args.category) if args.category else None,
        note=args.note,
        requested_by=args.by,
        requested_at=now(),
    )
    await publish(settings, command, source="/siaga/cli/call-taker")
    change = " ".join(x for x in (args.category, args.priority) if x) or "confirmed"
    print(f"review sent for incident {incident_id}: {change}")
    return 0


# ---------------------------------------------------------------- the log


def _log_line(event: Any) -> str:
    """What the monitor does not show of an incident's events: its opening, the units'
    reports (the dispatcher's check makes a change of one) and commands."""
    from schemas.commands import ReviewTriageV1
    from schemas.events import IncidentOpenedV1, UnitStatusReportedV1

    p = event.payload
    if isinstance(p, UnitStatusReportedV1):
        return f"report      {p.unit_id} says {p.status.value}"
    if isinstance(p, IncidentOpenedV1):
        return f"opened      incident {str(p.incident_id)[:8]}  from {p.channel.value} intake {str(p.intake_id)[:8]}"
    if isinstance(p, ReviewTriageV1):
        change = " ".join(x.value for x in (p.category, p.priority) if x) or "confirm"
        return f"command     review by {p.requested_by}: {change}"
    by = getattr(p, "requested_by", None)
    return f"command     by {by}" if by else ""


async def log(args: argparse.Namespace) -> int:
    """Every event of one incident, in time order, across topics."""
    from services.ops.incident_log import incident_log as read_log
    from services.stack.monitor import describe

    since = since_ms(args.since) if args.since else 0
    events = await read_log(ops_settings(), args.id, since_ms=since)
    if not events:
        print(f"siaga: no events for {args.id} in the log", file=sys.stderr)
        return 1
    for e in events:
        if args.json:
            print_json(e.as_json())
            continue
        envelope = e.event.envelope
        line = describe(e.event) or _log_line(e.event)
        print(
            f"{envelope.time.astimezone():%Y-%m-%d %H:%M:%S}  {e.topic}:{e.partition}:{e.offset:<6} "
            f"{envelope.type:<34} {line}"
        )
    return 0


# ---------------------------------------------------------------- the commands' arguments


def _review_check(args: argparse.Namespace) -> str | None:
    """What argparse cannot say of `incident review`: --confirm, or a change, not both."""
    if args.confirm == bool(args.priority or args.category):
        return "incident review: give --confirm, or --priority and/or --category"
    return None


def register(sub: Any) -> None:
    """`siaga incident show`, `cancel`, `close`, `review`, `list` and `log`."""
    incident = group(sub, "incident", help="read-model look-ups", dest="incident_command")
    p = incident.add_parser("show", help="one incident by incident id or intake id")
    p.set_defaults(handler=show)
    p.add_argument("id", type=an_id, help="incident or intake id")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="wait up to this many seconds for it to be classified and its units or work "
        "order sent",
    )
    p = incident.add_parser("cancel", help="supervisor: cancel an incident, release its units")
    p.set_defaults(handler=lifecycle)
    p.add_argument("id", type=an_id, help="incident or intake id")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", default="supervisor")
    p = incident.add_parser("close", help="supervisor: close a resolved incident")
    p.set_defaults(handler=lifecycle)
    p.add_argument("id", type=an_id, help="incident or intake id")
    p.add_argument("--note", default="")
    p.add_argument("--by", default="supervisor")
    _register_review(incident)
    _register_list_and_log(incident)


def _register_review(incident: Any) -> None:
    p = incident.add_parser(
        "review",
        help="call-taker: confirm triage, or give the priority or category the answers call for",
    )
    p.set_defaults(handler=review, check=_review_check)
    p.add_argument("id", type=an_id, help="incident or intake id")
    p.add_argument("--confirm", action="store_true", help="triage was right")
    p.add_argument("--priority", choices=[x.value for x in Priority], help="the new priority")
    p.add_argument("--category", choices=[x.value for x in Category], help="the new category")
    p.add_argument("--note", default="", help="what the caller answered")
    p.add_argument("--by", default="call-taker")


def _register_list_and_log(incident: Any) -> None:
    p = incident.add_parser("list", help="newest incidents")
    p.set_defaults(handler=listing)
    p.add_argument("--status")
    p.add_argument(
        "--review",
        action="store_true",
        help="the triage review queue: low-confidence incidents and P1s to confirm",
    )
    p.add_argument("--limit", type=positive, default=20)
    p.add_argument("--json", action="store_true")
    p = incident.add_parser("log", help="every event of one incident, in order, from the log")
    p.set_defaults(handler=log)
    p.add_argument("id", type=an_id, help="incident id or any of its intake ids")
    p.add_argument("--since", help="only events from then on (30m, 2d or an ISO 8601 time)")
    p.add_argument("--json", action="store_true", help="one JSON object per event")
