"""`siaga`: run the backend, report calls, follow units, look up incidents."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

# Only what parsing needs is imported here: each command imports what it uses (the broker
# client, the database driver, the event models), so that a call-taker's `siaga report`
# or `incident show` does not pay for every other command. A test keeps it so.
from schemas.vocabulary import Category, Channel, Priority
from services.cli.errors import BadInput
from services.common.datapack import DataPackError
from services.stages import STAGES

if TYPE_CHECKING:
    from services.common.settings import HomeSettings


class UsageError(Exception):
    """A bad argument: one line for the user, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    root = _Parser(prog="siaga", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "up", help="run every stage (embedded broker and database unless configured)"
    )
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
    p.add_argument("stage", choices=STAGES)

    sub.add_parser("init", help="apply migrations, create topics, register the starter fleet")

    p = sub.add_parser(
        "report", help="operator client: submit a call or report; prints the intake id"
    )
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
        "--intake-id", type=_id_of("intake id"), help="reuse an intake id (resending is harmless)"
    )
    p.add_argument("--flush", action="store_true", help="only send reports left in the spool")
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="with --flush: keep trying this many seconds while the broker is unreachable",
    )

    p = sub.add_parser("triage", help="offline enrichment + classification, no broker needed")
    p.add_argument("text", nargs="?", help="report text")
    p.add_argument("--place", help="place hint")
    p.add_argument("--channel", default="call112")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--jsonl", metavar="FILE", help="one {text, channel, place_hint?} per line")

    unit = sub.add_parser("unit", help="field-unit client").add_subparsers(
        dest="unit_command", required=True, parser_class=_Parser
    )
    p = unit.add_parser("status", help="report a unit's status")
    p.add_argument("unit")
    p.add_argument("status", help="available, acknowledged, en_route, on_scene, transporting, ...")
    p.add_argument(
        "--incident",
        type=_id_of("incident id"),
        help="incident id (default: the unit's current order)",
    )
    p.add_argument("--lat", type=float)
    p.add_argument("--lon", type=float)
    p.add_argument("--note")
    p = unit.add_parser("watch", help="print a unit's orders as they come")
    p.add_argument("unit")
    p.add_argument(
        "--since", default="1h", help="also show orders from this long ago (30s, 10m, 1h)"
    )
    p = unit.add_parser("list", help="the unit board")
    p.add_argument("--json", action="store_true")
    p = unit.add_parser("add", help="register a unit (or change its details)")
    p.add_argument("unit")
    p.add_argument("--type", required=True, help="ambulance, fire_truck, police, rescue, ...")
    p.add_argument("--agency", required=True)
    p.add_argument("--base", required=True, help="home base name")
    p.add_argument("--lat", type=float, required=True)
    p.add_argument("--lon", type=float, required=True)
    p.add_argument("--capability", action="append", help="e.g. ALS, BLS, water (repeatable)")
    p = unit.add_parser("move", help="a unit's new position (and base)")
    p.add_argument("unit")
    p.add_argument("--lat", type=float, required=True)
    p.add_argument("--lon", type=float, required=True)
    p.add_argument("--base", help="new home base")

    dispatch = sub.add_parser(
        "dispatch", help="supervisor: cancel or reassign an order"
    ).add_subparsers(dest="dispatch_command", required=True, parser_class=_Parser)
    p = dispatch.add_parser("cancel", help="withdraw a unit's order (the next best unit goes)")
    p.add_argument("incident", type=_an_id, help="incident or intake id")
    p.add_argument("unit")
    p.add_argument("--reason", default="supervisor decision")
    p.add_argument("--no-redispatch", action="store_true", help="do not send another unit")
    p.add_argument("--by", default="supervisor")
    p = dispatch.add_parser("reassign", help="give a unit's order to another unit")
    p.add_argument("incident", type=_an_id, help="incident or intake id")
    p.add_argument("unit")
    p.add_argument("--to", help="the unit to send (default: the next best)")
    p.add_argument("--reason", default="supervisor decision")
    p.add_argument("--by", default="supervisor")

    wo = sub.add_parser("workorder", help="agency queues").add_subparsers(
        dest="workorder_command", required=True, parser_class=_Parser
    )
    p = wo.add_parser("list", help="work orders, open first, with overdue flags")
    p.add_argument("--agency")
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--json", action="store_true")
    for verb in ("answer", "close"):
        p = wo.add_parser(verb, help=f"{verb} the work order of an incident")
        p.add_argument("incident", type=_an_id, help="incident or intake id")
        p.add_argument("--text", required=True, help="the answer / what was done")
        p.add_argument("--by", default="agency officer")

    stats = sub.add_parser("stats", help="figures").add_subparsers(
        dest="stats_command", required=True, parser_class=_Parser
    )
    p = stats.add_parser("sla", help="daily SLA statistics per channel, category, kecamatan")
    p.add_argument("--days", type=_positive, default=7)
    p.add_argument("--json", action="store_true")

    incident = sub.add_parser("incident", help="read-model look-ups").add_subparsers(
        dest="incident_command", required=True, parser_class=_Parser
    )
    p = incident.add_parser("show", help="one incident by incident id or intake id")
    p.add_argument("id", type=_an_id, help="incident or intake id")
    p.add_argument("--json", action="store_true")
    p.add_argument("--wait", type=float, default=0.0, help="wait up to this many seconds for it")
    p = incident.add_parser("cancel", help="supervisor: cancel an incident, release its units")
    p.add_argument("id", type=_an_id, help="incident or intake id")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", default="supervisor")
    p = incident.add_parser("close", help="supervisor: close a resolved incident")
    p.add_argument("id", type=_an_id, help="incident or intake id")
    p.add_argument("--note", default="")
    p.add_argument("--by", default="supervisor")
    p = incident.add_parser(
        "review", help="call-taker: confirm triage, or give the priority or category the answers call for"
    )
    p.add_argument("id", type=_an_id, help="incident or intake id")
    p.add_argument("--confirm", action="store_true", help="triage was right")
    p.add_argument("--priority", choices=[x.value for x in Priority], help="the new priority")
    p.add_argument("--category", choices=[x.value for x in Category], help="the new category")
    p.add_argument("--note", default="", help="what the caller answered")
    p.add_argument("--by", default="call-taker")
    p = incident.add_parser("list", help="newest incidents")
    p.add_argument("--status")
    p.add_argument(
        "--review",
        action="store_true",
        help="the triage review queue: low-confidence incidents and P1s to confirm",
    )
    p.add_argument("--limit", type=_positive, default=20)
    p.add_argument("--json", action="store_true")
    p = incident.add_parser("log", help="every event of one incident, in order, from the log")
    p.add_argument("id", type=_an_id, help="incident id or any of its intake ids")
    p.add_argument("--since", help="only events from then on (30m, 2d or an ISO 8601 time)")
    p.add_argument("--json", action="store_true", help="one JSON object per event")
    _ops_parsers(sub)
    return root


def _ops_parsers(sub: Any) -> None:
    p = sub.add_parser("lag", help="consumer lag per stage and partition")
    p.add_argument("--stage", choices=STAGES)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "replay",
        help="re-read a topic from an offset or a time into a new consumer group or a file",
    )
    p.add_argument("topic", help="topic name, with or without the prefix (e.g. intake.received)")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-offset", type=int, help="offset to start from, in every partition")
    start.add_argument("--since", help="start at this time (30m, 2d or ISO 8601)")
    p.add_argument("--partition", type=int, help="only this partition")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-group", help="commit the start for this new consumer group")
    target.add_argument("--to-file", help="write the records as JSON lines (- for stdout)")

    p = sub.add_parser("rebuild", help="rebuild the read model from offset 0 into a fresh schema")
    p.add_argument("--schema", help="schema to build into (default readmodel_rebuild_<time>)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare with the live read model; exit 1 if they differ",
    )
    p.add_argument("--swap", action="store_true", help="make the rebuilt schema the live one")
    p.add_argument("--timeout", type=float, default=600, help="seconds to reach the end of the log")
    p.add_argument("--drop", metavar="SCHEMA", help="only drop a rebuilt or retired schema")
    p.add_argument("--json", action="store_true")

    dlq = sub.add_parser("dlq", help="dead letters").add_subparsers(
        dest="dlq_command", required=True, parser_class=_Parser
    )
    p = dlq.add_parser("list", help="dead letters, newest first")
    p.add_argument("--stage", choices=STAGES)
    p.add_argument("--open", action="store_true", help="only those not redriven")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p = dlq.add_parser("redrive", help="send dead letters back to their source topic")
    p.add_argument("--id", action="append", help="dead letter id (repeatable)")
    p.add_argument("--all", action="store_true", help="every dead letter not redriven yet")
    p.add_argument("--operator", help="who redrives (recorded in the log)")
    p.add_argument("--json", action="store_true")


def _id_of(what: str) -> Callable[[str], str]:
    """An argument type: a UUID, or one line saying it is not `what`."""

    def parse(text: str) -> str:
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an {what}: {text!r}") from None

    return parse


_an_id = _id_of("incident or intake id")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say of a combination of arguments."""
    if args.command == "report" and not args.flush:
        missing = [f"--{n}" for n in ("channel", "text") if getattr(args, n) is None]
        if missing:
            parser.error(f"report: give {' and '.join(missing)} (or --flush)")
    if args.command == "incident" and args.incident_command == "review":
        changes = args.priority or args.category
        if args.confirm == bool(changes):
            parser.error("incident review: give --confirm, or --priority and/or --category")


def _handler_name(args: argparse.Namespace) -> str:
    """`module.function` of the command asked for (its module is imported alone)."""
    if args.command == "unit":
        return {"add": "supervisor.unit_add", "move": "supervisor.unit_move"}.get(
            args.unit_command, "commands.unit"
        )
    if args.command == "incident":
        return {
            "cancel": "supervisor.incident_lifecycle",
            "close": "supervisor.incident_lifecycle",
            "review": "supervisor.incident_review",
            "log": "ops.incident_log",
        }.get(args.incident_command, "commands.incident")
    return {
        "up": "commands.up",
        "run": "commands.run",
        "init": "commands.init",
        "report": "commands.report",
        "triage": "commands.triage",
        "dispatch": "supervisor.dispatch",
        "workorder": "supervisor.workorder",
        "stats": "supervisor.stats",
        "lag": "ops.lag",
        "replay": "ops.replay",
        "rebuild": "ops.rebuild",
        "dlq": "ops.dlq",
    }[args.command]


def _dispatch(args: argparse.Namespace) -> int:
    module, function = _handler_name(args).split(".")
    handler = getattr(importlib.import_module(f"services.cli.{module}"), function)
    result: Any = handler(args)
    if hasattr(result, "__await__"):
        import asyncio

        result = asyncio.run(result)
    return int(result)


# Commands that leave the spool alone: `report` sends it itself, `up` keeps draining it,
# a stage (`run`) and offline triage have nothing to do with it.
_NO_DRAIN = {"report", "up", "run", "triage"}


def _drain_spool(args: argparse.Namespace, home: HomeSettings) -> None:
    """Send reports left in the spool before the command runs (its result may depend on
    them, e.g. `incident show` of a report that was spooled); the command runs anyway."""
    if args.command in _NO_DRAIN or not home.spooled():
        return
    import asyncio
    import logging

    from services.clients.operator import drain_spool

    # The lines below say what became of the reports; aiokafka's own would only repeat it.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        delivery = asyncio.run(drain_spool())
    except Exception as exc:  # the user's own command comes first, whatever went wrong here
        print(f"siaga: reports wait in the spool: {_one_line(exc)}", file=sys.stderr)
        return
    if delivery.sent:
        print(f"siaga: {delivery.sent} spooled report(s) sent", file=sys.stderr)
    if delivery.waiting:
        print(
            f"siaga: {delivery.waiting} report(s) still wait in the spool ({delivery.error}); "
            "they go out by themselves",
            file=sys.stderr,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; bad input gets one line on stderr and a non-zero exit, never a traceback."""
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        _check(parser, args)
        from services.common.settings import HomeSettings

        home = HomeSettings()
        # A SIAGA_DATA_DIR without a data pack is told now, not by a stage that fails later.
        home.pack()
        _drain_spool(args, home)
        return _dispatch(args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except DataPackError as exc:
        print(f"siaga: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): quietly drop what is still buffered
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        code = _exit_code(exc)
        if code is None or os.environ.get("SIAGA_DEBUG"):
            raise
        print(f"siaga: {_one_line(exc)}", file=sys.stderr)
        return code


def _loaded(module: str, name: str) -> type[BaseException] | None:
    """An exception class of a library, if the command loaded that library (if it did
    not, no exception of it can have been raised): main() imports none of them itself."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _exit_code(exc: Exception) -> int | None:
    """2 for a value the user gave that cannot be used (an id, a latitude, a text too
    long), 1 for what the system could not do (an outage), None for a bug."""
    validation = _loaded("pydantic_core", "ValidationError")
    if isinstance(exc, BadInput) or (validation is not None and isinstance(exc, validation)):
        return 2
    outages = tuple(
        kind
        for kind in (
            _loaded("services.common.settings", "NotConfigured"),
            _loaded("aiokafka.errors", "KafkaError"),
            _loaded("asyncpg", "PostgresError"),
        )
        if kind is not None
    )
    if isinstance(exc, (OSError, ValueError, *outages)):
        return 1
    return None


def _one_line(exc: Exception) -> str:
    validation = _loaded("pydantic_core", "ValidationError")
    if validation is not None and isinstance(exc, validation):
        first = exc.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in first["loc"])
        return f"invalid {where}: {first['msg']}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
