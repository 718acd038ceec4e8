"""Supervisor and agency commands: the fleet, orders, incidents, work orders, SLA figures."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.commands import (
    AnswerWorkOrderV1,
    CancelDispatchV1,
    CancelIncidentV1,
    CloseIncidentV1,
    CloseWorkOrderV1,
    ReassignDispatchV1,
    ReviewTriageV1,
)
from schemas.common import Contract, Location
from schemas.envelope import new_event
from schemas.events import UnitMovedV1, UnitRegisteredV1
from schemas.vocabulary import Category, Priority, UnitType
from services.cli.commands import CommandError, print_json
from services.common.db import STAGE_SCHEMAS, connect
from services.common.kafka import producer, send_events
from services.common.outbox import Outgoing
from services.common.settings import CommonSettings
from services.projector.queries import agency_queue, find_incident, sla_statistics

UNIT_TYPES = ", ".join(t.value for t in UnitType)


async def _publish(settings: CommonSettings, payload: Contract, *, source: str) -> str:
    event = new_event(payload, id=uuid.uuid4(), source=source)
    client = producer(settings)
    await client.start()
    try:
        await send_events(client, [Outgoing.of(event, settings.topics)])
    finally:
        await client.stop()
    return event.id


async def _incident_id(settings: CommonSettings, ident: str) -> uuid.UUID:
    """An incident id from an incident or intake id (intake ids are looked up)."""
    try:
        key = uuid.UUID(ident)
    except ValueError:
        raise CommandError(f"not an incident or intake id: {ident!r}") from None
    conn = await connect(settings, schema=STAGE_SCHEMAS["projector"], application="siaga-cli")
    try:
        found = await find_incident(conn, str(key))
    finally:
        await conn.close()
    if found is None:
        raise CommandError(f"no incident for {ident}")
    incident_id = found["incident_id"]
    assert isinstance(incident_id, uuid.UUID)
    return incident_id


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- fleet


async def unit_add(args: argparse.Namespace) -> int:
    """Register a unit (or change its details)."""
    try:
        unit_type = UnitType(args.type)
    except ValueError:
        raise CommandError(f"unknown unit type {args.type!r}; use one of: {UNIT_TYPES}") from None
    settings = CommonSettings()
    unit = UnitRegisteredV1(
        unit_id=args.unit,
        unit_type=unit_type,
        agency=args.agency,
        base=args.base,
        location=Location(lat=args.lat, lon=args.lon),
        capabilities=list(args.capability or []),
        registered_at=_now(),
    )
    await _publish(settings, unit, source="/siaga/cli/fleet")
    print(f"{unit.unit_id} registered ({unit.unit_type.value}, {unit.base})")
    return 0


async def unit_move(args: argparse.Namespace) -> int:
    """Report a unit's new position (and base)."""
    settings = CommonSettings()
    moved = UnitMovedV1(
        unit_id=args.unit,
        location=Location(lat=args.lat, lon=args.lon),
        base=args.base,
        moved_at=_now(),
    )
    await _publish(settings, moved, source="/siaga/cli/fleet")
    print(f"{moved.unit_id} at {moved.location.lat:.5f}, {moved.location.lon:.5f}")
    return 0


# ---------------------------------------------------------------- orders and incidents


async def dispatch(args: argparse.Namespace) -> int:
    """Cancel or reassign a unit's order."""
    settings = CommonSettings()
    incident_id = await _incident_id(settings, args.incident)
    command: Contract
    if args.dispatch_command == "cancel":
        command = CancelDispatchV1(
            incident_id=incident_id,
            unit_id=args.unit,
            reason=args.reason,
            redispatch=not args.no_redispatch,
            requested_by=args.by,
            requested_at=_now(),
        )
    else:
        command = ReassignDispatchV1(
            incident_id=incident_id,
            unit_id=args.unit,
            to_unit_id=args.to,
            reason=args.reason,
            requested_by=args.by,
            requested_at=_now(),
        )
    command_id = await _publish(settings, command, source="/siaga/cli/supervisor")
    print(
        f"{args.dispatch_command} sent for {args.unit} on incident {incident_id} (command {command_id})"
    )
    return 0


async def incident_lifecycle(args: argparse.Namespace) -> int:
    """Cancel or close an incident."""
    settings = CommonSettings()
    incident_id = await _incident_id(settings, args.id)
    command: Contract
    if args.incident_command == "cancel":
        command = CancelIncidentV1(
            incident_id=incident_id, reason=args.reason, requested_by=args.by, requested_at=_now()
        )
    else:
        command = CloseIncidentV1(
            incident_id=incident_id, note=args.note, requested_by=args.by, requested_at=_now()
        )
    await _publish(settings, command, source="/siaga/cli/supervisor")
    print(f"{args.incident_command} sent for incident {incident_id}")
    return 0


async def incident_review(args: argparse.Namespace) -> int:
    """A call-taker's answer to triage: confirm it, or give a new priority or category."""
    settings = CommonSettings()
    incident_id = await _incident_id(settings, args.id)
    command = ReviewTriageV1(
        incident_id=incident_id,
        priority=Priority(args.priority) if args.priority else None,
        category=Category(args.category) if args.category else None,
        note=args.note,
        requested_by=args.by,
        requested_at=_now(),
    )
    await _publish(settings, command, source="/siaga/cli/call-taker")
    change = " ".join(x for x in (args.category, args.priority) if x) or "confirmed"
    print(f"review sent for incident {incident_id}: {change}")
    return 0


# ---------------------------------------------------------------- agency work orders


async def workorder(args: argparse.Namespace) -> int:
    """Agency queues: list, answer, close."""
    settings = CommonSettings()
    if args.workorder_command == "list":
        conn = await connect(settings, schema=STAGE_SCHEMAS["projector"], application="siaga-cli")
        try:
            rows = await agency_queue(conn, agency=args.agency, overdue_only=args.overdue)
        finally:
            await conn.close()
        if args.json:
            print_json(rows)
            return 0
        from services.common.readable import mask_phones_in

        for r in rows:
            flag = " OVERDUE" if r["overdue"] else ""
            print(
                f"{r['incident_id']}  {r['agency']:<12} {r['state']:<9} due {r['due_at']:%Y-%m-%d %H:%M}"
                f"{flag}  {r['kecamatan'] or '-'}: {mask_phones_in(r['summary'])[:60]}"
            )
        return 0
    incident_id = await _incident_id(settings, args.incident)
    command: Contract
    if args.workorder_command == "answer":
        command = AnswerWorkOrderV1(
            incident_id=incident_id, response=args.text, requested_by=args.by, requested_at=_now()
        )
    else:
        command = CloseWorkOrderV1(
            incident_id=incident_id, resolution=args.text, requested_by=args.by, requested_at=_now()
        )
    await _publish(settings, command, source="/siaga/cli/agency")
    print(f"{args.workorder_command} sent for the work order of incident {incident_id}")
    return 0


async def stats(args: argparse.Namespace) -> int:
    """Daily SLA statistics per channel, category and kecamatan."""
    settings = CommonSettings()
    conn = await connect(settings, schema=STAGE_SCHEMAS["projector"], application="siaga-cli")
    try:
        rows = await sla_statistics(conn, days=args.days)
    finally:
        await conn.close()
    if args.json:
        print_json(rows)
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
            f"{r['day']!s:<10} {r['dimension']:<9} {r['value']:<17} {r['incidents']:>4} {r['p1']:>3} "
            f"{_num(r['p1_dispatch_p50_s']):>8} {_num(r['p1_dispatch_p90_s']):>8} {r['complaints']:>5} "
            # the share is of complaints decided; those still within their 3 days are pending
            f"{r['complaints_pending']:>7} {_pct(r['answered_in_3_days_share']):>7} {r['sla_breaches']:>6}"
        )
    return 0


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.0f}%"
