"""Supervisor and agency commands: orders (`siaga dispatch`), agency work orders, SLA
figures; and how every supervisor's command is sent (`publish`)."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.cli.commands import CommandError, print_json
from services.cli.parsing import an_id, group, positive
from services.cli.readmodel import read_model

if TYPE_CHECKING:
    from schemas.common import Contract
    from services.common.settings import CommonSettings

# The event models, the broker client and the settings are imported by the commands that
# use them: this module is loaded to build the parser for every command.


async def publish(settings: CommonSettings, payload: Contract, *, source: str) -> str:
    """Send one command or fleet event, keyed as its type says; returns its event id."""
    from schemas.envelope import new_event
    from services.common.kafka import producer, send_events
    from services.common.outbox import Outgoing

    event = new_event(payload, id=uuid.uuid4(), source=source)
    client = producer(settings)
    await client.start()
    try:
        await send_events(client, [Outgoing.of(event, settings.topics)])
    finally:
        await client.stop()
    return event.id


async def incident_id_of(settings: CommonSettings, ident: str) -> uuid.UUID:
    """An incident id from an incident or intake id (intake ids are looked up)."""
    from services.projector.queries import find_incident

    try:
        key = uuid.UUID(ident)
    except ValueError:
        raise CommandError(f"not an incident or intake id: {ident!r}") from None
    conn = await read_model(settings)
    try:
        found = await find_incident(conn, str(key))
    finally:
        await conn.close()
    if found is None:
        raise CommandError(f"no incident for {ident}")
    return found.incident_id


def now() -> datetime:
    """The time a command is given."""
    return datetime.now(UTC)


# ---------------------------------------------------------------- orders and incidents


async def dispatch(args: argparse.Namespace) -> int:
    """Cancel or reassign a unit's order."""
    from schemas.commands import CancelDispatchV1, ReassignDispatchV1
    from services.common.settings import CommonSettings

    settings = CommonSettings()
    incident_id = await incident_id_of(settings, args.incident)
    command: Contract
    if args.dispatch_command == "cancel":
        command = CancelDispatchV1(
            incident_id=incident_id,
            unit_id=args.unit,
            reason=args.reason,
            redispatch=not args.no_redispatch,
            requested_by=args.by,
            requested_at=now(),
        )
    else:
        command = ReassignDispatchV1(
            incident_id=incident_id,
            unit_id=args.unit,
            to_unit_id=args.to,
            reason=args.reason,
            requested_by=args.by,
            requested_at=now(),
        )
    command_id = await publish(settings, command, source="/siaga/cli/supervisor")
    print(
        f"{args.dispatch_command} sent for {args.unit} on incident {incident_id} (command {command_id})"
    )
    return 0


# ---------------------------------------------------------------- agency work orders


async def workorder(args: argparse.Namespace) -> int:
    """Agency queues: list, answer, close."""
    from schemas.commands import AnswerWorkOrderV1, CloseWorkOrderV1
    from services.common.settings import CommonSettings
    from services.projector.queries import agency_queue

    settings = CommonSettings()
    if args.workorder_command == "list":
        conn = await read_model(settings)
        try:
            rows = await agency_queue(conn, agency=args.agency, overdue_only=args.overdue)
        finally:
            await conn.close()
        if args.json:
            print_json([r.to_json() for r in rows])
            return 0
        from services.common.readable import mask_phones_in

        for r in rows:
            flag = " OVERDUE" if r.overdue else ""
            print(
                f"{r.incident_id}  {r.agency:<12} {r.state:<9} due {r.due_at:%Y-%m-%d %H:%M}"
                f"{flag}  {r.kecamatan or '-'}: {mask_phones_in(r.summary)[:60]}"
            )
        return 0
    incident_id = await incident_id_of(settings, args.incident)
    command: Contract
    if args.workorder_command == "answer":
        command = AnswerWorkOrderV1(
            incident_id=incident_id, response=args.text, requested_by=args.by, requested_at=now()
        )
    else:
        command = CloseWorkOrderV1(
            incident_id=incident_id, resolution=args.text, requested_by=args.by, requested_at=now()
        )
    await publish(settings, command, source="/siaga/cli/agency")
    print(f"{args.workorder_command} sent for the work order of incident {incident_id}")
    return 0


async def stats(args: argparse.Namespace) -> int:
    """Daily SLA statistics per channel, category and kecamatan."""
    from services.common.settings import CommonSettings
    from services.projector.queries import sla_statistics

    conn = await read_model(CommonSettings())
    try:
        rows = await sla_statistics(conn, days=args.days)
    finally:
        await conn.close()
    if args.json:
        print_json([r.to_json() for r in rows])
        return 0
    if not rows:
        print("no incidents in that period", file=sys.stderr)
        return 0
    print(
        f"{'day':<10} {'by':<9} {'value':<17} {'n':>4} {'P1':>3} {'P1 p50 s':>8} {'P1 p90 s':>8} "
        f"{'compl':>5} {'pending':>7} {'≤3 days':>7} {'breach':>6}"
    )
    for r in rows:
        print(
            f"{r.day!s:<10} {r.dimension:<9} {r.value:<17} {r.incidents:>4} {r.p1:>3} "
            f"{_num(r.p1_dispatch_p50_s):>8} {_num(r.p1_dispatch_p90_s):>8} {r.complaints:>5} "
            # the share is of complaints decided; those still within their 3 days are pending
            f"{r.complaints_pending:>7} {_pct(r.answered_in_3_days_share):>7} {r.sla_breaches:>6}"
        )
    return 0


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.0f}%"


# ---------------------------------------------------------------- the commands' arguments


def register(sub: Any) -> None:
    """`siaga dispatch`, `workorder` and `stats`."""
    dispatch_ = group(
        sub, "dispatch", help="supervisor: cancel or reassign an order", dest="dispatch_command"
    )
    p = dispatch_.add_parser("cancel", help="withdraw a unit's order (the next best unit goes)")
    p.set_defaults(handler=dispatch)
    p.add_argument("incident", type=an_id, help="incident or intake id")
    p.add_argument("unit")
    p.add_argument("--reason", default="supervisor decision")
    p.add_argument("--no-redispatch", action="store_true", help="do not send another unit")
    p.add_argument("--by", default="supervisor")
    p = dispatch_.add_parser("reassign", help="give a unit's order to another unit")
    p.set_defaults(handler=dispatch)
    p.add_argument("incident", type=an_id, help="incident or intake id")
    p.add_argument("unit")
    p.add_argument("--to", help="the unit to send (default: the next best)")
    p.add_argument("--reason", default="supervisor decision")
    p.add_argument("--by", default="supervisor")

    wo = group(sub, "workorder", help="agency queues", dest="workorder_command")
    p = wo.add_parser("list", help="work orders, open first, with overdue flags")
    p.set_defaults(handler=workorder)
    p.add_argument("--agency")
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--json", action="store_true")
    for verb in ("answer", "close"):
        p = wo.add_parser(verb, help=f"{verb} the work order of an incident")
        p.set_defaults(handler=workorder)
        p.add_argument("incident", type=an_id, help="incident or intake id")
        p.add_argument("--text", required=True, help="the answer / what was done")
        p.add_argument("--by", default="agency officer")

    figures = group(sub, "stats", help="figures", dest="stats_command")
    p = figures.add_parser("sla", help="daily SLA statistics per channel, category, kecamatan")
    p.set_defaults(handler=stats)
    p.add_argument("--days", type=positive, default=7)
    p.add_argument("--json", action="store_true")
