"""The ops commands: `siaga lag`, `replay`, `rebuild`, `dlq list/redrive`."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.cli.commands import CommandError, _duration, print_json
from services.cli.parsing import group
from services.cli.readmodel import read_model
from services.stages import STAGES

if TYPE_CHECKING:
    from services.common.settings import CommonSettings


def ops_settings() -> CommonSettings:
    """Settings for an ops command; logs (warnings only) go to stderr, away from results."""
    from services.common.logging import configure_logging
    from services.common.settings import CommonSettings

    configure_logging(level="WARNING")
    return CommonSettings()


def since_ms(text: str) -> int:
    """A point in time from `30m`-style durations ago or an ISO 8601 time."""
    if text[:1].isdigit() and text[-1:] in "smhd" and text[:-1].isdigit():
        return int((datetime.now(UTC) - _duration(text)).timestamp() * 1000)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"bad time {text!r}; use a duration (30s, 10m, 1h, 2d) or ISO 8601 (2026-11-23T10:00:00+07:00)"
        ) from None
    if at.tzinfo is None:
        raise CommandError(f"time {text!r} needs a UTC offset, e.g. +07:00")
    return int(at.timestamp() * 1000)


# ---------------------------------------------------------------- lag


async def lag(args: argparse.Namespace) -> int:
    """Committed offset against the end of the log, per stage and partition."""
    from services.ops.lag import stage_lag

    rows = await stage_lag(ops_settings(), [args.stage] if args.stage else None)
    if args.json:
        print_json(
            [
                {
                    "stage": r.stage,
                    "group": r.group,
                    "topic": r.topic,
                    "partition": r.partition,
                    "committed": r.committed,
                    "end": r.end,
                    "lag": r.lag,
                }
                for r in rows
            ]
        )
        return 0
    totals: dict[str, int] = defaultdict(int)
    print(f"{'stage':<11} {'topic':<34} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}")
    for r in rows:
        totals[r.stage] += r.lag
        committed = "-" if r.committed is None else str(r.committed)
        print(
            f"{r.stage:<11} {r.topic:<34} {r.partition:>4} {committed:>10} {r.end:>10} {r.lag:>8}"
        )
    print("total lag: " + ", ".join(f"{stage} {n}" for stage, n in totals.items()))
    return 0


# ---------------------------------------------------------------- replay


async def replay(args: argparse.Namespace) -> int:
    """Re-read a topic from an offset or a time into a new consumer group or a file."""
    from services.ops.replay import replay_to_file, replay_to_group, resolve_topic, span

    settings = ops_settings()
    if args.from_offset is not None and args.from_offset < 0:
        raise CommandError("--from-offset must be 0 or more")
    topic = resolve_topic(settings, args.topic)
    since = since_ms(args.since) if args.since else None
    where = await span(
        settings, [topic], from_offset=args.from_offset, since_ms=since, partition=args.partition
    )
    if args.to_group:
        await replay_to_group(settings, group=args.to_group, where=where)
        for tp, start in sorted(where.starts.items()):
            print(f"{args.to_group}  {tp.topic}:{tp.partition}  from offset {start}")
        print(f"{where.records} record(s) to re-read by consumer group {args.to_group}")
        return 0
    if args.to_file == "-":
        written = await replay_to_file(settings, where=where, out=sys.stdout)
    else:
        path = Path(args.to_file)
        if not path.parent.is_dir():
            raise CommandError(f"no such folder: {path.parent}")
        # A one-task CLI process: nothing else waits on this event loop.
        with path.open("w", encoding="utf-8") as out:  # noqa: ASYNC230
            written = await replay_to_file(settings, where=where, out=out)
    print(f"{written} record(s) of {topic} written to {args.to_file}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- rebuild


async def rebuild(args: argparse.Namespace) -> int:
    """Rebuild the read model from offset 0; optionally compare with the live one and swap."""
    from services.ops import rebuild as rb

    settings = ops_settings()
    if args.drop:
        await rb.drop(settings, args.drop)
        print(f"schema {args.drop} dropped")
        return 0
    schema = rb.check_schema_name(args.schema or rb.default_schema())
    done = await rb.rebuild(settings, schema=schema, timeout_s=args.timeout)
    print(
        f"rebuilt read model into schema {done.schema}: {done.events} record(s) in {done.seconds:.1f}s",
        file=sys.stderr,
    )
    summary: dict[str, Any] = {
        "schema": done.schema,
        "records": done.events,
        "seconds": done.seconds,
    }
    if args.verify:
        diffs = await rb.verify(settings, rebuilt=done)
        summary["equal"] = not diffs
        summary["differences"] = [
            {
                "table": d.table,
                "only_live": d.only_live,
                "only_rebuilt": d.only_rebuilt,
                "sample_live": d.sample_live,
                "sample_rebuilt": d.sample_rebuilt,
            }
            for d in diffs
        ]
        if args.json:
            print_json(summary)
        elif diffs:
            print(f"live read model and rebuilt {done.schema} DIFFER:")
            for d in diffs:
                print("\n".join(d.lines()))
        else:
            print(f"live read model and rebuilt {done.schema} are equal")
        if diffs:
            return 1
    if args.swap:
        retired = await rb.swap(settings, rebuilt=done)
        summary["retired"] = retired
        print(
            f"{done.schema} is now the live read model; the old one is kept as {retired} "
            f"(drop it with `siaga rebuild --drop {retired}`)",
            file=sys.stderr,
        )
    if args.json and not args.verify:
        print_json(summary)
    elif not args.swap:
        print(
            f"kept as schema {done.schema} (drop it with `siaga rebuild --drop {done.schema}`)",
            file=sys.stderr,
        )
    return 0


# ---------------------------------------------------------------- dead letters


async def dlq(args: argparse.Namespace) -> int:
    """List dead letters, or send them back to their source topic."""
    settings = ops_settings()
    if args.dlq_command == "list":
        return await _dlq_list(settings, args)
    from services.ops.dlq import redrive

    if not args.id and not args.all:
        raise CommandError("give --id ID (repeatable) or --all")
    if args.id and args.all:
        raise CommandError("give either --id or --all, not both")
    done, skipped = await redrive(settings, ids=args.id, all_open=args.all, operator=args.operator)
    if args.json:
        print_json(
            {
                "redriven": [
                    {
                        "dead_letter_id": r.dead_letter_id,
                        "topic": r.topic,
                        "partition": r.partition,
                        "offset": r.offset,
                    }
                    for r in done
                ],
                "skipped": skipped,
            }
        )
    else:
        for r in done:
            print(f"{r.dead_letter_id} -> {r.topic}:{r.partition}:{r.offset}")
        for line in skipped:
            print(f"skipped {line}", file=sys.stderr)
        print(f"{len(done)} dead letter(s) redriven", file=sys.stderr)
    return 0


async def _dlq_list(settings: CommonSettings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from services.common.readable import mask_phones_in
    from services.projector.queries import dead_letters

    conn = await read_model(settings)
    try:
        rows = await dead_letters(conn, limit=args.limit, stage=args.stage, only_open=args.open)
    finally:
        await conn.close()
    # A preview is a piece of a report as sent (the caller's number in it): people read
    # this list, in either form. `siaga replay` reads the original in full when needed.
    rows = [
        replace(r, preview=mask_phones_in(r.preview or ""), reason=mask_phones_in(r.reason or ""))
        for r in rows
    ]
    if args.json:
        print_json([r.to_json() for r in rows])
        return 0
    for r in rows:
        state = f"redriven {r.redriven_at:%H:%M:%S}" if r.redriven_at else "open"
        print(
            f"{r.at.astimezone():%Y-%m-%d %H:%M:%S}  {r.event_id}  {r.stage:<10} {state:<17} "
            f"{r.reason[:90]}"
        )
        print(f"    {r.source_topic}:{r.source_partition}:{r.source_offset}  {r.preview[:100]}")
    if not rows:
        print("no dead letters", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- the commands' arguments


def register(sub: Any) -> None:
    """`siaga lag`, `replay`, `rebuild` and `dlq`."""
    p = sub.add_parser("lag", help="consumer lag per stage and partition")
    p.set_defaults(handler=lag)
    p.add_argument("--stage", choices=STAGES)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "replay",
        help="re-read a topic from an offset or a time into a new consumer group or a file",
    )
    p.set_defaults(handler=replay)
    p.add_argument("topic", help="topic name, with or without the prefix (e.g. intake.received)")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-offset", type=int, help="offset to start from, in every partition")
    start.add_argument("--since", help="start at this time (30m, 2d or ISO 8601)")
    p.add_argument("--partition", type=int, help="only this partition")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-group", help="commit the start for this new consumer group")
    target.add_argument("--to-file", help="write the records as JSON lines (- for stdout)")
    _register_rebuild(sub)
    _register_dlq(sub)


def _register_rebuild(sub: Any) -> None:
    p = sub.add_parser("rebuild", help="rebuild the read model from offset 0 into a fresh schema")
    p.set_defaults(handler=rebuild)
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


def _register_dlq(sub: Any) -> None:
    letters = group(sub, "dlq", help="dead letters", dest="dlq_command")
    p = letters.add_parser("list", help="dead letters, newest first")
    p.set_defaults(handler=dlq)
    p.add_argument("--stage", choices=STAGES)
    p.add_argument("--open", action="store_true", help="only those not redriven")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p = letters.add_parser("redrive", help="send dead letters back to their source topic")
    p.set_defaults(handler=dlq)
    p.add_argument("--id", action="append", help="dead letter id (repeatable)")
    p.add_argument("--all", action="store_true", help="every dead letter not redriven yet")
    p.add_argument("--operator", help="who redrives (recorded in the log)")
    p.add_argument("--json", action="store_true")
