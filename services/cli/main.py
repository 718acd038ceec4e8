"""`siaga`: run the backend, report calls, follow units, look up incidents."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Only what parsing needs is imported here: each command imports what it uses (the broker
# client, the database driver, the event models, the settings), so that a call-taker's
# `siaga report` or `incident show` does not pay for every other command. A test keeps it so.
from services.cli.errors import BadInput
from services.cli.parsing import Parser, UsageError
from services.common import locate
from services.common.datapack import DataPackError, resolve_pack


def _parser() -> argparse.ArgumentParser:
    """`siaga` and its commands, each module registering its own, in the order of the help."""
    from services.cli import (
        alerts,
        apikeys,
        asyncapi,
        commands,
        incidents,
        ops,
        people,
        supervisor,
        units,
    )

    root = Parser(prog="siaga", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in (commands, units, supervisor, incidents, alerts, ops, apikeys, people, asyncapi):
        module.register(sub)
    return root


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command's handler (a coroutine on its own event loop)."""
    result: Any = args.handler(args)
    if hasattr(result, "__await__"):
        import asyncio

        result = asyncio.run(result)
    return int(result)


# Commands that leave the spool alone: `report` sends it itself, `up` keeps draining it,
# a stage (`run`), offline triage and the AsyncAPI document have nothing to do with it.
_NO_DRAIN = {"report", "up", "run", "triage", "asyncapi", "apikey", "user"}


def _drain_spool(args: argparse.Namespace, home: Path) -> None:
    """Send reports left in the spool before the command runs (its result may depend on
    them, e.g. `incident show` of a report that was spooled); the command runs anyway."""
    if args.command in _NO_DRAIN or not locate.spooled(home / "spool"):
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
        check = getattr(args, "check", None)
        problem = check(args) if check is not None else None
        if problem:
            parser.error(problem)
        # Where the stack is, read as HomeSettings reads it, without pydantic-settings.
        home = locate.home_folder()
        # A SIAGA_DATA_DIR without a data pack is told now, not by a stage that fails later.
        resolve_pack(locate.data_dir())
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
            locate.NotConfigured,
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
        from schemas.errors import first_error

        where, message = first_error(exc)  # type: ignore[arg-type]
        return f"invalid {where}: {message}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
