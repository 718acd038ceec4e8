"""`siaga apikey create/revoke/list`: the keys outside clients use at the gateway."""

from __future__ import annotations

import argparse
import re
from typing import Any

from services.cli.errors import BadInput
from services.cli.parsing import group

# services.gateway.keys.Scope, without loading it
SCOPES = ("intake", "open311", "eido", "cap", "unit")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")


def _name(text: str) -> str:
    if not _NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a key's name is 1-64 letters, digits, spaces or . _ @ -"
        )
    return text


async def gateway_schema() -> Any:
    """A connection to the gateway's schema as the gateway's own role."""
    from services.common.db import connect
    from services.common.settings import CommonSettings

    return await connect(
        CommonSettings(), schema="gateway", application="siaga-cli", role="gateway"
    )


async def create(args: argparse.Namespace) -> int:
    """Make a key; its secret is printed once, alone on the last line."""
    from datetime import UTC, datetime

    from services.gateway.keys import Scope, create_key

    conn = await gateway_schema()
    try:
        key, secret = await create_key(
            conn,
            name=args.name,
            scopes=frozenset(Scope(s) for s in args.scope),
            now=datetime.now(UTC),
        )
    finally:
        await conn.close()
    scopes = ", ".join(sorted(s.value for s in key.scopes))
    print(
        f"key {key.key_id} for {key.name!r} with scope {scopes}; keep it secret, it is shown once:"
    )
    print(secret)
    return 0


async def revoke(args: argparse.Namespace) -> int:
    """Revoke every key of a name."""
    from datetime import UTC, datetime

    from services.gateway.keys import revoke_keys

    conn = await gateway_schema()
    try:
        count = await revoke_keys(conn, name=args.name, now=datetime.now(UTC))
    finally:
        await conn.close()
    if not count:
        raise BadInput(f"no live key named {args.name!r}")
    print(f"revoked {count} key(s) of {args.name!r}")
    return 0


async def show(args: argparse.Namespace) -> int:
    """List the keys (never their secrets)."""
    from services.gateway.keys import list_keys

    conn = await gateway_schema()
    try:
        keys = await list_keys(conn)
    finally:
        await conn.close()
    for key in keys:
        state = "live" if key.revoked_at is None else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        scopes = ",".join(sorted(s.value for s in key.scopes))
        print(f"{key.name:<24} {scopes:<28} {key.created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def register(sub: Any) -> None:
    """`siaga apikey create NAME --scope S ...`, `revoke NAME`, `list`."""
    keys = group(sub, "apikey", help="API keys of the gateway's outside clients", dest="action")
    p = keys.add_parser("create", help="make a key; prints it once, alone on the last line")
    p.set_defaults(handler=create)
    p.add_argument("name", type=_name, help="who the key is for, e.g. 'lapor-bridge'")
    p.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=SCOPES,
        help="what it may do (repeat for several): " + ", ".join(SCOPES),
    )
    p = keys.add_parser("revoke", help="revoke every key of NAME")
    p.set_defaults(handler=revoke)
    p.add_argument("name", type=_name)
    p = keys.add_parser("list", help="the keys, never their secrets")
    p.set_defaults(handler=show)
