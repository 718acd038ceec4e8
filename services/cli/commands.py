"""What each `siaga` command does; argument parsing lives in `main`."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from schemas.vocabulary import Channel, UnitStatus
from services.cli.errors import BadInput
from services.common.db import STAGE_SCHEMAS, connect
from services.common.settings import CommonSettings

if TYPE_CHECKING:
    from schemas.common import Location

UNIT_CHOICES = ", ".join(s.value for s in UnitStatus)
CHANNEL_CHOICES = ", ".join(c.value for c in Channel)


class CommandError(BadInput):
    """A one-line problem with what the user gave, which they can fix (exit code 2)."""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(value: Any) -> None:
    print(json.dumps(value, default=_json_default, ensure_ascii=False))


def _channel(text: str) -> Channel:
    try:
        return Channel(text)
    except ValueError:
        raise CommandError(f"unknown channel {text!r}; use one of: {CHANNEL_CHOICES}") from None


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise CommandError(f"bad duration {text!r}; use e.g. 30s, 10m, 1h, 2d")
    amount, unit = int(match[1]), match[2]
    field = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]
    try:
        duration = timedelta(**{field: amount})
        _ = datetime.now() - duration
    except OverflowError:
        raise CommandError(f"duration {text!r} is too long") from None
    return duration


def _location(
    lat: float | None, lon: float | None, accuracy: float | None = None
) -> Location | None:
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise CommandError("give both --lat and --lon")
    from schemas.common import Location

    return Location(lat=lat, lon=lon, accuracy_m=accuracy)


# ---------------------------------------------------------------- running


def up(args: argparse.Namespace) -> int:
    """Run the whole backend (and the demo)."""
    from services.common.logging import configure_logging
    from services.stack.up import up as run_up

    configure_logging(json=True)
    return run_up(CommonSettings(), demo=args.demo, replicas=args.replicas)


async def run(args: argparse.Namespace) -> int:
    """Run one stage until SIGTERM or Ctrl-C."""
    from services.common.logging import configure_logging
    from services.common.runtime import settle_heap
    from services.stages import start_stage

    configure_logging()
    settings = CommonSettings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with start_stage(args.stage, settings):
        settle_heap(settings.gc)
        await stop.wait()
    return 0


async def init(args: argparse.Namespace) -> int:
    """Migrations, topics and the starter fleet, for real infrastructure."""
    from services.stack.setup import prepare

    fleet = await prepare(CommonSettings())
    print(f"migrations applied, topics ready, {len(fleet)} units registered")
    return 0


# ---------------------------------------------------------------- operator


async def report(args: argparse.Namespace) -> int:
    """Submit a report; prints the intake id, also when it waits in the spool (exit code 3:
    safe there, and it goes out by itself)."""
    import logging

    from services.cli.errors import SPOOLED
    from services.clients.operator import Spool, flush_until, new_intake, submit

    # The one line below says what went wrong; aiokafka's own lines would only repeat it.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    settings = CommonSettings()
    spool = settings.home.spool_dir
    if args.flush:
        delivery = await flush_until(settings, Spool(spool), wait_s=max(0.0, args.wait))
    else:
        intake = new_intake(
            channel=_channel(args.channel),
            text=args.text,
            phone=args.caller,
            name=args.name,
            place_hint=args.place,
            location=_location(args.lat, args.lon, args.accuracy),
            operator_id=args.operator,
            intake_id=uuid.UUID(args.intake_id) if args.intake_id else None,
        )
        delivery = await submit(settings, intake)
        print(intake.intake_id, flush=True)  # scripts keep the id, whatever happens next
    if delivery.waiting:
        what = "the report is" if delivery.waiting == 1 else f"{delivery.waiting} reports are"
        print(
            f"siaga: broker unreachable ({delivery.error}): {what} safe in the spool ({spool}) "
            "and will go out by itself (a running `siaga up` or the next siaga command sends it)",
            file=sys.stderr,
        )
        return SPOOLED
    if args.flush:
        print(f"{delivery.sent} spooled report(s) sent")
    return 0


# ---------------------------------------------------------------- triage offline


def triage(args: argparse.Namespace) -> int:
    """Enrich and classify text offline, as the pipeline would."""
    from services.triage.offline import OfflineTriage

    engine = OfflineTriage.from_settings(CommonSettings())
    if args.jsonl:
        if args.text:
            raise CommandError("give either TEXT or --jsonl FILE, not both")
        path = Path(args.jsonl)
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                item = _jsonl_item(line, where=f"{path}:{number}")
                result = engine.triage(
                    text=item["text"],
                    channel=_channel(item.get("channel") or "call112"),
                    place_hint=item.get("place_hint"),
                )
                print_json(result)
        return 0
    if args.text is None:
        raise CommandError("give TEXT or --jsonl FILE")
    result = engine.triage(text=args.text, channel=_channel(args.channel), place_hint=args.place)
    if args.json:
        print_json(result)
    else:
        place = result["place"]
        where = f"{place['kecamatan']} / {place['desa'] or '-'}" if place else "place unresolved"
        print(
            f"{result['category']} {result['priority']} -> {result['agency']} "
            f"(confidence {result['confidence']:.2f}); {where}"
        )
        print(f"because: {result['explanation']}")
        for question in result["questions"]:
            print(f"ask: {question}")
        if result["needs_confirmation"]:
            print("a life may be at risk: P1 now, for a call-taker to confirm or lower")
        if result["needs_review"]:
            print("below the confidence threshold: a call-taker triages it, nothing is dispatched")
    return 0


def _jsonl_item(line: str, *, where: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise CommandError(f"{where}: expected an object with a string `text`")
    for key in ("channel", "place_hint"):
        if item.get(key) is not None and not isinstance(item[key], str):
            raise CommandError(f"{where}: `{key}` must be a string or null")
    return item


# ---------------------------------------------------------------- field units


async def unit(args: argparse.Namespace) -> int:
    """Field-unit client commands."""
    settings = CommonSettings()
    if args.unit_command == "status":
        return await _unit_status(settings, args)
    if args.unit_command == "watch":
        return await _unit_watch(settings, args)
    return await _unit_list(settings, args)


async def _unit_status(settings: CommonSettings, args: argparse.Namespace) -> int:
    from services.clients.field_unit import report_status

    try:
        status = UnitStatus(args.status)
    except ValueError:
        raise CommandError(
            f"unknown unit status {args.status!r}; use one of: {UNIT_CHOICES}"
        ) from None
    incident_id = uuid.UUID(args.incident) if args.incident else None
    try:
        conn = await connect(
            settings, schema=STAGE_SCHEMAS["projector"], application="siaga-cli", role="reader"
        )
    except (OSError, asyncpg.PostgresError):
        conn = None  # no read model at hand: the dispatcher's check is the one that counts
    if conn is not None:
        try:
            incident_id, refusal = await _check_on_board(conn, args.unit, status, incident_id)
        finally:
            await conn.close()
        if refusal:
            raise CommandError(f"refused: {refusal}")
    report_ = await report_status(
        settings,
        unit_id=args.unit,
        status=status,
        incident_id=incident_id,
        location=_location(args.lat, args.lon),
        note=args.note,
    )
    target = f" on incident {report_.incident_id}" if report_.incident_id else ""
    print(f"{report_.unit_id} {report_.status.value}{target}")
    return 0


async def _check_on_board(
    conn: asyncpg.Connection, unit_id: str, status: UnitStatus, incident_id: uuid.UUID | None
) -> tuple[uuid.UUID | None, str | None]:
    """The incident a report names (the unit's order when the crew named none, as a
    tablet would: a unit is freed only by a report naming its incident) and why the
    dispatcher would refuse it, judged by its own rule on the board. The board may be a
    moment behind the dispatcher (an order just given), so a refusal is read again for
    up to two seconds before it stands."""
    from schemas.events import UnitStatusReportedV1
    from services.dispatcher.unit_reports import Refused, UnitState, check_report
    from services.projector.queries import board_unit

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while True:
        unit = await board_unit(conn, unit_id)
        named = incident_id or (unit.incident_id if unit else None)
        state = None
        if unit is not None:
            try:
                current = UnitStatus(unit.status or "available")
            except ValueError:  # 'cancelled': the order was withdrawn
                current = UnitStatus.AVAILABLE
            state = UnitState(
                unit_id=unit.unit_id,
                unit_type=unit.unit_type or "",
                status=current,
                incident_id=unit.incident_id,
                last_incident_id=unit.incident_id or unit.cleared_incident_id,
                ordered_at=unit.assigned_at if unit.incident_id else None,
            )
        now = datetime.now(UTC)
        probe = UnitStatusReportedV1(
            unit_id=unit_id, status=status, incident_id=named, reported_at=now
        )
        verdict = check_report(state, probe, now=now)
        if not isinstance(verdict, Refused):
            return named, None
        if unit is None or loop.time() >= deadline:
            return named, verdict.reason
        await asyncio.sleep(0.25)


async def _unit_watch(settings: CommonSettings, args: argparse.Namespace) -> int:
    from schemas.events import UnitDispatchedV1
    from services.clients.field_unit import watch_orders
    from services.common.readable import eta_minutes

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


async def _unit_list(settings: CommonSettings, args: argparse.Namespace) -> int:
    conn = await connect(
        settings, schema=STAGE_SCHEMAS["projector"], application="siaga-cli", role="reader"
    )
    try:
        rows = [
            dict(r)
            for r in await conn.fetch(
                "SELECT unit_id, unit_type, agency, base, status, incident_id, status_at "
                "FROM units ORDER BY unit_type, unit_id"
            )
        ]
    finally:
        await conn.close()
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        incident = f" incident {r['incident_id']}" if r["incident_id"] else ""
        print(f"{r['unit_id']:<22} {r['unit_type'] or '-':<18} {r['status'] or '-':<14}{incident}")
    return 0


# ---------------------------------------------------------------- read model


def _incident_json(row: dict[str, Any]) -> dict[str, Any]:
    """What `incident show` prints (both forms are read by people): phone numbers in the
    caller's words, notes and the timeline are masked; the log keeps them in full."""
    from services.common.readable import mask_phones_in

    def masked(text: str | None) -> str | None:
        return None if text is None else mask_phones_in(text)

    return {
        "incident_id": row["incident_id"],
        "status": row["status"],
        "category": row["category"],
        "priority": row["priority"],
        "agency": row["agency"],
        "confidence": row["confidence"],
        "explanation": row["explanation"],
        "needs_review": row["needs_review"],
        "needs_confirmation": row["needs_confirmation"],
        "life_threat": row["life_threat"],
        "questions": row["questions"],
        "review": None
        if row["reviewed_at"] is None
        else {
            "decision": row["review_decision"],
            "by": row["reviewed_by"],
            "at": row["reviewed_at"],
            "note": masked(row["review_note"]),
        },
        "channel": row["channel"],
        "text": masked(row["text"]),
        "kecamatan": row["kecamatan"],
        "desa": row["desa"],
        "lat": row["lat"],
        "lon": row["lon"],
        "received_at": row["received_at"],
        "first_dispatched_at": row["first_dispatched_at"],
        "resolved_at": row["resolved_at"],
        "intake_ids": row["intake_ids"],
        "units": [
            {"unit_id": u["unit_id"], "unit_type": u["unit_type"], "status": u["status"]}
            for u in row["units"]
        ],
        "timeline": [{**step, "summary": masked(step["summary"])} for step in row["timeline"]],
    }


async def incident(args: argparse.Namespace) -> int:
    """Read-model look-ups."""
    from services.common.readable import mask_phones_in
    from services.projector.queries import find_incident, list_incidents

    settings = CommonSettings()
    conn = await connect(
        settings, schema=STAGE_SCHEMAS["projector"], application="siaga-cli", role="reader"
    )
    try:
        if args.incident_command == "show":
            loop = asyncio.get_running_loop()
            deadline = loop.time() + max(0.0, args.wait)
            while (row := await find_incident(conn, args.id)) is None and loop.time() < deadline:
                await asyncio.sleep(0.2)
            if row is None:
                print(f"siaga: no incident for {args.id} (yet)", file=sys.stderr)
                return 1
            shown = _incident_json(row)
            if args.json:
                print_json(shown)
            else:
                _print_incident(shown)
            return 0
        rows = await list_incidents(conn, limit=args.limit, status=args.status, review=args.review)
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                review = (
                    " REVIEW"
                    if r["needs_review"]
                    else " CONFIRM"
                    if r.get("needs_confirmation")
                    else ""
                )
                print(
                    f"{r['incident_id']}  {r['status'] or '-':<12} {r['priority'] or '--'} "
                    f"{r['category'] or '-':<17} {r['kecamatan'] or '-':<12} {r['units'] or ''}{review}"
                )
                if args.review:
                    text = None if r["text"] is None else mask_phones_in(r["text"])
                    print(f"    {text!r}\n    because: {r['explanation']}")
                    for question in r["questions"]:
                        print(f"    ask: {question}")
        return 0
    finally:
        await conn.close()


def _print_incident(i: dict[str, Any]) -> None:
    print(f"incident  {i['incident_id']}")
    print(f"status    {i['status']}")
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
