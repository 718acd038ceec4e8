"""`siaga asyncapi`: the AsyncAPI 3.0 document of the deployment's topics and events."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from services.cli.errors import BadInput

FORMATS = ("json", "yaml")


def asyncapi(args: argparse.Namespace) -> int:
    """Write the document (stdout, or `--out`), for the topic prefix of the settings."""
    from services.common.settings import TopicSettings
    from services.ops.asyncapi import build, render

    out: Path | None = args.out
    fmt = args.format or (
        "yaml" if out is not None and out.suffix.lower() in (".yaml", ".yml") else "json"
    )
    # SIAGA_TOPIC_PREFIX, checked as every stage checks it (a bad one: one line, exit 2).
    topics = TopicSettings().topics()
    document = build(topics)
    text = render(document, fmt)
    if out is None or str(out) == "-":
        sys.stdout.write(text)
        return 0
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot write {out}: {exc.strerror or exc}") from None
    print(
        f"wrote {out}: AsyncAPI {document['asyncapi']}, {len(document['channels'])} topics "
        f"({topics.prefix}.*), {len(document['components']['messages'])} event types",
        file=sys.stderr,
    )
    return 0


def register(sub: Any) -> None:
    """`siaga asyncapi`."""
    p = sub.add_parser(
        "asyncapi",
        help="the AsyncAPI 3.0 document of the topics and events, for Kafka clients in any "
        "language (topic names with SIAGA_TOPIC_PREFIX)",
    )
    p.set_defaults(handler=asyncapi)
    p.add_argument("--out", type=Path, help="write it to this file (default: stdout; - for stdout)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="json or yaml (default: yaml for a --out ending in .yaml or .yml, else json)",
    )
