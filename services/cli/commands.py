"""Running the backend (`siaga up`, `run`, `init`), a call-taker's `report` and offline
`triage`; and what every command module shares (one-line errors, JSON output)."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.vocabulary import Channel
from services.cli.errors import BadInput
from services.cli.parsing import id_of
from services.stages import STAGES

if TYPE_CHECKING:
    from schemas.common import Location

# Each command imports what it uses (the settings, the broker client, the event models)
# inside its function: this module is loaded to build the parser for every command.

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
    from services.common.settings import CommonSettings
    from services.stack.up import up as run_up

    configure_logging(json=True)
    return run_up(CommonSettings(), demo=args.demo, replicas=args.replicas)


async def run(args: argparse.Namespace) -> int:
    """Run one stage until SIGTERM or Ctrl-C."""
    import asyncio

    from services.common.logging import configure_logging
    from services.common.runtime import settle_heap
    from services.common.settings import CommonSettings
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
    from services.common.settings import CommonSettings
    from services.stack.setup import prepare

    fleet = await prepare(CommonSettings())
    print(f"migrations applied, topics ready, {len(fleet)} units registered")
    return 0


# ---------------------------------------------------------------- operator


def report(args: argparse.Namespace) -> Any:
    """Submit a report; prints the intake id, also when it waits in the spool (exit code 3:
    safe there, and it goes out by itself). With a stack running here, the report goes to
    its gateway with the standard library alone (a call-taker waits for this command);
    when the gateway cannot be asked, it goes the spooled way to the broker."""
    if not args.flush:
        handed = _hand_to_desk(args)
        if handed is not None:
            return handed
    return _report_by_broker(args)


def _hand_to_desk(args: argparse.Namespace) -> int | None:
    """The report through the stack's gateway: 0 when it was kept, a CommandError when it
    never can be, None when the gateway could not be asked."""
    from datetime import UTC, datetime

    from services.clients.desk import find_desk, hand_over, intake_document

    desk = find_desk()
    if desk is None:
        return None
    if (args.lat is None) != (args.lon is None):
        raise CommandError("give both --lat and --lon")
    location = None if args.lat is None else (args.lat, args.lon, args.accuracy)
    intake_id = uuid.UUID(args.intake_id) if args.intake_id else uuid.uuid4()
    document = intake_document(
        intake_id=intake_id,
        channel=_channel(args.channel).value,
        text=args.text,
        received_at=datetime.now(UTC),
        phone=args.caller,
        name=args.name,
        place_hint=args.place,
        location=location,
        operator_id=args.operator,
    )
    answer = hand_over(desk, document)
    if answer.refused is not None:
        raise CommandError(answer.refused)
    if not answer.taken:
        return None
    print(intake_id, flush=True)
    return 0


async def _report_by_broker(args: argparse.Namespace) -> int:
    """Spool the report, then send the spool to the broker (or only send it: --flush)."""
    import logging

    from services.cli.errors import SPOOLED
    from services.clients.operator import Spool, flush_until, new_intake, submit
    from services.common.settings import CommonSettings

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
    from services.common.settings import CommonSettings
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


# ---------------------------------------------------------------- the commands' arguments


def _report_check(args: argparse.Namespace) -> str | None:
    """What argparse cannot say of `report`: --channel and --text unless --flush."""
    if args.flush:
        return None
    missing = [f"--{n}" for n in ("channel", "text") if getattr(args, n) is None]
    return f"report: give {' and '.join(missing)} (or --flush)" if missing else None


def register(sub: Any) -> None:
    """`siaga up`, `run`, `init`, `report` and `triage`."""
    p = sub.add_parser(
        "up", help="run every stage (embedded broker and database unless configured)"
    )
    p.set_defaults(handler=up)
    p.add_argument("--demo", action="store_true", help="play the scripted Batang scenario")
    p.add_argument(
        "--replicas",
        type=int,
        choices=range(1, 9),
        metavar="N",
        help="run N processes (1-8) of every stage, sharing its partitions "
        "(default 1, or SIAGA_STACK_REPLICAS)",
    )

    p = sub.add_parser("run", help="run one stage alone (for scaling out)")
    p.set_defaults(handler=run)
    p.add_argument("stage", choices=STAGES)

    p = sub.add_parser("init", help="apply migrations, create topics, register the starter fleet")
    p.set_defaults(handler=init)
    _register_report(sub)

    p = sub.add_parser("triage", help="offline enrichment + classification, no broker needed")
    p.set_defaults(handler=triage)
    p.add_argument("text", nargs="?", help="report text")
    p.add_argument("--place", help="place hint")
    p.add_argument("--channel", default="call112")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--jsonl", metavar="FILE", help="one {text, channel, place_hint?} per line")


def _register_report(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="operator client: submit a call or report; prints the intake id"
    )
    p.set_defaults(handler=report, check=_report_check)
    p.add_argument(
        "--channel",
        choices=[c.value for c in Channel],
        help="where the report came in (required unless --flush)",
    )
    p.add_argument(
        "--text", help='what the caller said (required unless --flush; "" for a silent call)'
    )
    p.add_argument("--caller", help="caller phone in E.164, e.g. +6281234567890")
    p.add_argument("--name", help="caller name")
    p.add_argument("--place", help="place the caller named")
    p.add_argument("--lat", type=float)
    p.add_argument("--lon", type=float)
    p.add_argument("--accuracy", type=float, help="location accuracy in metres")
    p.add_argument("--operator", help="call-taker id")
    p.add_argument(
        "--intake-id", type=id_of("intake id"), help="reuse an intake id (resending is harmless)"
    )
    p.add_argument("--flush", action="store_true", help="only send reports left in the spool")
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="with --flush: keep trying this many seconds while the broker is unreachable",
    )
