"""`siaga user add`: the people who sign in to the command-centre and field-unit pages."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from services.cli.apikeys import gateway_schema
from services.cli.errors import BadInput
from services.cli.parsing import group

ROLES = ("call-taker", "supervisor", "agency", "unit", "viewer")  # services.gateway.people.Role


async def add(args: argparse.Namespace) -> int:
    """Add a person; the password is read from standard input (one line), never argv."""
    from datetime import UTC, datetime

    from services.gateway.people import BadPerson, Role, add_person

    if not args.password_stdin:
        raise BadInput("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    conn = await gateway_schema()
    try:
        person = await add_person(
            conn,
            name=args.name,
            role=Role(args.role),
            password=password,
            now=datetime.now(UTC),
            unit_id=args.unit,
            agency=args.agency,
        )
    except BadPerson as exc:
        raise BadInput(str(exc)) from None
    finally:
        await conn.close()
    acts_for = f" for {person.unit_id or person.agency}" if person.unit_id or person.agency else ""
    print(f"{person.name} added as {person.role.value}{acts_for}")
    return 0


def register(sub: Any) -> None:
    """`siaga user add NAME --role ROLE [--unit UNIT] [--agency AGENCY] --password-stdin`."""
    people = group(sub, "user", help="people who sign in to the pages", dest="action")
    p = people.add_parser("add", help="add a person who signs in to the pages")
    p.set_defaults(handler=add)
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--unit", help="the unit a field crew acts for (role unit)")
    p.add_argument("--agency", help="the agency whose work orders it sees (role agency)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
