"""Where a running stack is, read without pydantic: its home folder, `stack.json`, and
the database URL a role connects with (a call-taker's look-up starts here, in a hurry)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_HOME = Path(".siaga")


class NotConfigured(RuntimeError):
    """A connection detail is missing; the message says how to provide it."""


def env(name: str) -> str | None:
    """A `SIAGA_` variable as pydantic-settings reads it: its name in any case (the last
    spelling wins, as there)."""
    wanted = name.lower()
    found = None
    for key, value in os.environ.items():
        if key.lower() == wanted:
            found = value
    return found


def home_folder() -> Path:
    """`SIAGA_HOME`, the state folder of the embedded stack (`HomeSettings.home`)."""
    value = env("SIAGA_HOME")
    return DEFAULT_HOME if value is None else Path(value)


def data_dir() -> Path | None:
    """`SIAGA_DATA_DIR`, another regency's data pack (`HomeSettings.data_dir`)."""
    value = env("SIAGA_DATA_DIR")
    return None if value is None else Path(value)


def read_stack(home: Path) -> dict[str, Any]:
    """The contents of `stack.json` in `home`, or {} when no stack is running there."""
    try:
        return dict(json.loads((home / "stack.json").read_text()))
    except (OSError, ValueError):
        return {}


def spooled(spool: Path) -> bool:
    """Whether a report waits in the spool folder (cheap: every command asks)."""
    try:
        return any(entry.name.endswith(".json") for entry in os.scandir(spool))
    except OSError:
        return False


def no_database() -> NotConfigured:
    """The one line that says how to give the database."""
    return NotConfigured("no database: set SIAGA_DATABASE_URL or start the stack with `siaga up`")


def with_role(admin_url: str, *, role: str, password: str | None) -> str:
    """The administrator's URL with `role` (and its password) in place of its user."""
    parts = urlsplit(admin_url)
    user = quote(role, safe="")
    if password is not None:
        user += ":" + quote(password, safe="")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def plain_reader_url() -> tuple[str, str | None] | None:
    """The read-only URL of CLI look-ups and its sslmode, from the environment and
    `stack.json`, when plain strings decide it; None when a setting that needs checking
    (`SIAGA_DATABASE_STAGE_ROLES`, `_ROLE_PREFIX`) is set: `CommonSettings` decides then.
    The same rule as `CommonSettings.database_url_for("reader")`."""
    if any(env(f"SIAGA_DATABASE_{name}") is not None for name in ("STAGE_ROLES", "ROLE_PREFIX")):
        return None
    sslmode = env("SIAGA_DATABASE_SSLMODE") or None
    own = env("SIAGA_DATABASE_READER_URL")
    configured = env("SIAGA_DATABASE_URL")
    stack: dict[str, Any] | None = None
    if not configured:
        stack = read_stack(home_folder())
    admin = configured or (stack or {}).get("database_url")
    if not admin:
        raise no_database()
    if own:
        return own, sslmode
    password = env("SIAGA_DATABASE_ROLE_PASSWORD")
    if password is None and not configured:
        # `siaga up`'s own PostgreSQL gives the stage roles the password in stack.json.
        found = (stack or {}).get("database_role_password")
        password = str(found) if found else None
    return with_role(str(admin), role="siaga_reader", password=password), sslmode
