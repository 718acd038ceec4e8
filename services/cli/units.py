"""The field-unit client (`siaga unit status`, `watch`) and the fleet (`unit list`,
`add`, `move`)."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import datetime
from typing import Any

from schemas.vocabulary import UnitStatus
from services.cli.commands import CommandError, _duration, _location, print_json
from services.cli.parsing import group, id_of
from services.cli.readmodel import read_model
from services.cli.supervisor import now, publish

UNIT_CHOICES = ", ".join(s.value for s in UnitStatus)

# ---------------------------------------------------------------- field units


def status(args: argparse.Namespace) -> Any:
    """Report a unit's status, refused at once when the dispatcher would refuse it: through
    the running stack's gateway with the standard library alone (a crew is waiting), else
    checked on the board here and sent to the broker."""
    try:
        reported = UnitStatus(args.status)
    except ValueError:
        raise CommandError(
            f"unknown unit status {args.status!r}; use one of: {UNIT_CHOICES}"
        ) from None
    if (args.lat is None) != (args.lon is None):
        raise CommandError("give both --lat and --lon")
    from services.clients.desk import find_desk, report_status

    # One time for the report, whichever way it goes: it makes the event's id, so a report
    # the gateway took but answered too late is not applied twice (nor refused as a repeat).
    reported_at = now()
    desk = find_desk()
    if desk is not None:
        answer = report_status(
            desk,
            unit_id=args.unit,
            status=reported.value,
            incident_id=args.incident,
            location=None if args.lat is None else (args.lat, args.lon),
            note=args.note,
            reported_at=reported_at.isoformat(),
        )
        if answer.refused is not None:
            # 409: the fleet's rules refuse it; otherwise a value of the command was bad.
            prefix = "refused: " if answer.code == 409 else ""
            raise CommandError(prefix + answer.refused)
        if answer.taken and answer.said is not None:
            incident = answer.said.get("incident_id")
            print(
                f"{args.unit} {reported.value}" + (f" on incident {incident}" if incident else "")
            )
            return 0
    return _status_by_broker(args, reported, reported_at)


async def _status_by_broker(
    args: argparse.Namespace, reported: UnitStatus, reported_at: datetime
) -> int:
    """Check the report on the board, then publish it to the broker."""
    incident_id = uuid.UUID(args.incident) if args.incident else None
    incident_id = await _checked(
        unit_id=args.unit, status=reported, incident_id=incident_id, reported_at=reported_at
    )
    # The settings and the broker client only now: a refused report needed neither.
    from services.clients.field_unit import report_status
    from services.common.settings import CommonSettings

    report_ = await report_status(
        CommonSettings(),
        unit_id=args.unit,
        status=reported,
        incident_id=incident_id,
        location=_location(args.lat, args.lon),
        note=args.note,
        reported_at=reported_at,
    )
    target = f" on incident {report_.incident_id}" if report_.incident_id else ""
    print(f"{report_.unit_id} {report_.status.value}{target}")
    return 0


async def _checked(
    *, unit_id: str, status: UnitStatus, incident_id: uuid.UUID | None, reported_at: datetime
) -> uuid.UUID | None:
    """The incident the report is for, once the board says the dispatcher would take it."""
    import asyncpg

    try:
        conn = await read_model()
    except (OSError, asyncpg.PostgresError):
        return incident_id  # no read model at hand: the dispatcher's check is the one that counts
    from services.clients.field_unit import judge_on_board

    try:
        incident_id, refusal = await judge_on_board(
            conn,
            unit_id=unit_id,
            status=status,
            incident_id=incident_id,
            reported_at=reported_at,
        )
    finally:
        await conn.close()
    if refusal:
        raise CommandError(f"refused: {refusal}")
    return incident_id


async def watch(args: argparse.Namespace) -> int:
    """Print a unit's orders and cancellations as they come."""
    from schemas.events import UnitDispatchedV1
    from services.clients.field_unit import watch_orders
    from services.common.readable import eta_minutes
    from services.common.settings import CommonSettings

    settings = CommonSettings()

    since = _duration(args.since)
    print(f"watching orders for {args.unit} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    async for order in watch_orders(settings, unit_id=args.unit, since=since):
        if isinstance(order, UnitDispatchedV1):
            where = (
                f"{order.place.kecamatan} / {order.place.desa or '-'} ({order.place.lat:.5f}, {order.place.lon:.5f})"
                if order.place
                else "place unknown: call the command centre"
            )
            eta = (
                f", ETA {eta_minutes(order.eta_seconds)} min"
                if order.eta_seconds is not None
                else ""
            )
            print(
                f"{order.dispatched_at:%H:%M:%S} ORDER {order.priority.value} {order.category.value} "
                f"incident {order.incident_id} -> {where}{eta}",
                flush=True,
            )
        else:
            print(
                f"{order.cancelled_at:%H:%M:%S} CANCELLED incident {order.incident_id}: {order.reason}",
                flush=True,
            )
    return 0


async def board(args: argparse.Namespace) -> int:
    """The unit board."""
    from services.projector.queries import unit_board

    conn = await read_model()
    try:
        rows = await unit_board(conn)
    finally:
        await conn.close()
    if args.json:
        print_json([r.to_json() for r in rows])
        return 0
    for r in rows:
        incident = f" incident {r.incident_id}" if r.incident_id else ""
        print(f"{r.unit_id:<22} {r.unit_type or '-':<18} {r.status or '-':<14}{incident}")
    return 0


# ---------------------------------------------------------------- fleet


async def add(args: argparse.Namespace) -> int:
    """Register a unit (or change its details)."""
    from schemas.common import Location
    from schemas.events import UnitRegisteredV1
    from schemas.vocabulary import UnitType
    from services.common.settings import CommonSettings

    try:
        unit_type = UnitType(args.type)
    except ValueError:
        raise CommandError(
            f"unknown unit type {args.type!r}; use one of: {', '.join(t.value for t in UnitType)}"
        ) from None
    settings = CommonSettings()
    unit = UnitRegisteredV1(
        unit_id=args.unit,
        unit_type=unit_type,
        agency=args.agency,
        base=args.base,
        location=Location(lat=args.lat, lon=args.lon),
        capabilities=list(args.capability or []),
        registered_at=now(),
    )
    await publish(settings, unit, source="/siaga/cli/fleet")
    print(f"{unit.unit_id} registered ({unit.unit_type.value}, {unit.base})")
    return 0


async def move(args: argparse.Namespace) -> int:
    """Report a unit's new position (and base)."""
    from schemas.common import Location
    from schemas.events import UnitMovedV1
    from services.common.settings import CommonSettings

    settings = CommonSettings()
    moved = UnitMovedV1(
        unit_id=args.unit,
        location=Location(lat=args.lat, lon=args.lon),
        base=args.base,
        moved_at=now(),
    )
    await publish(settings, moved, source="/siaga/cli/fleet")
    print(f"{moved.unit_id} at {moved.location.lat:.5f}, {moved.location.lon:.5f}")
    return 0


# ---------------------------------------------------------------- the commands' arguments


def register(sub: Any) -> None:
    """`siaga unit status`, `watch`, `list`, `add` and `move`."""
    unit = group(sub, "unit", help="field-unit client", dest="unit_command")
    p = unit.add_parser("status", help="report a unit's status")
    p.set_defaults(handler=status)
    p.add_argument("unit")
    p.add_argument("status", help="available, acknowledged, en_route, on_scene, transporting, ...")
    p.add_argument(
        "--incident",
        type=id_of("incident id"),
        help="incident id (default: the unit's current order)",
    )
    p.add_argument("--lat", type=float)
    p.add_argument("--lon", type=float)
    p.add_argument("--note")
    p = unit.add_parser("watch", help="print a unit's orders as they come")
    p.set_defaults(handler=watch)
    p.add_argument("unit")
    p.add_argument(
        "--since", default="1h", help="also show orders from this long ago (30s, 10m, 1h)"
    )
    p = unit.add_parser("list", help="the unit board")
    p.set_defaults(handler=board)
    p.add_argument("--json", action="store_true")
    _register_fleet(unit)


def _register_fleet(unit: Any) -> None:
    p = unit.add_parser("add", help="register a unit (or change its details)")
    p.set_defaults(handler=add)
    p.add_argument("unit")
    p.add_argument("--type", required=True, help="ambulance, fire_truck, police, rescue, ...")
    p.add_argument("--agency", required=True)
    p.add_argument("--base", required=True, help="home base name")
    p.add_argument("--lat", type=float, required=True)
    p.add_argument("--lon", type=float, required=True)
    p.add_argument("--capability", action="append", help="e.g. ALS, BLS, water (repeatable)")
    p = unit.add_parser("move", help="a unit's new position (and base)")
    p.set_defaults(handler=move)
    p.add_argument("unit")
    p.add_argument("--lat", type=float, required=True)
    p.add_argument("--lon", type=float, required=True)
    p.add_argument("--base", help="new home base")
