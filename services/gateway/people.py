"""The people who use the pages: roles, password hashes and sessions."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id with the library's current parameters
# Verifying against this when a name is unknown costs what a real check costs, so the
# time of a refusal does not tell whether the name exists.
_DECOY = _HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD = 8


class Role(StrEnum):
    """What a person does in the command centre."""

    CALL_TAKER = "call-taker"
    SUPERVISOR = "supervisor"
    AGENCY = "agency"  # its own agency's work orders only
    UNIT = "unit"  # its own unit's orders only
    VIEWER = "viewer"


@dataclass(frozen=True)
class Person:
    """Someone who signs in, and what they act for."""

    person_id: uuid.UUID
    name: str
    role: Role
    unit_id: str | None
    agency: str | None


@dataclass(frozen=True)
class Session:
    """A signed-in person's session: who, its form token, when it ends."""

    person: Person
    csrf: str
    expires_at: datetime


class BadPerson(ValueError):
    """A person that cannot be added as asked; the message says why in one line."""


def check_person(*, name: str, role: Role, unit_id: str | None, agency: str | None) -> None:
    """Refuse a person whose role and what they act for do not fit together."""
    if not name or len(name) > 64 or not name.isprintable() or name != name.strip():
        raise BadPerson("a name is 1-64 printable characters, no spaces around it")
    if role is Role.UNIT and not unit_id:
        raise BadPerson("a unit's person needs --unit")
    if role is Role.AGENCY and not agency:
        raise BadPerson("an agency's person needs --agency")
    if role is not Role.UNIT and unit_id:
        raise BadPerson("--unit is for the unit role only")
    if role is not Role.AGENCY and agency:
        raise BadPerson("--agency is for the agency role only")


def hash_password(password: str) -> str:
    """An argon2id hash of a password that is long enough."""
    if len(password) < MIN_PASSWORD:
        raise BadPerson(f"a password has at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def _person(row: asyncpg.Record) -> Person:
    return Person(row["person_id"], row["name"], Role(row["role"]), row["unit_id"], row["agency"])


async def add_person(
    conn: asyncpg.Connection,
    *,
    name: str,
    role: Role,
    password: str,
    now: datetime,
    unit_id: str | None = None,
    agency: str | None = None,
) -> Person:
    """Store a new person; a name already taken is refused."""
    check_person(name=name, role=role, unit_id=unit_id, agency=agency)
    row = await conn.fetchrow(
        """
        INSERT INTO people (person_id, name, role, unit_id, agency, password_hash, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (name) DO NOTHING
        RETURNING person_id, name, role, unit_id, agency
        """,
        uuid.uuid4(),
        name,
        role.value,
        unit_id,
        agency,
        hash_password(password),
        now,
    )
    if row is None:
        raise BadPerson(f"{name!r} exists already")
    return _person(row)


async def sign_in(
    conn: asyncpg.Connection, *, name: str, password: str, now: datetime, lifetime: timedelta
) -> tuple[str, Session] | None:
    """A new session for the person if the password is theirs: its token (for the cookie,
    never stored) and the session; None otherwise."""
    row = await conn.fetchrow(
        "SELECT person_id, name, role, unit_id, agency, password_hash FROM people "
        "WHERE name = $1 AND disabled_at IS NULL",
        name,
    )
    try:
        _HASHER.verify(row["password_hash"] if row else _DECOY, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    token = secrets.token_urlsafe(32)
    session = Session(_person(row), secrets.token_urlsafe(24), now + lifetime)
    await conn.execute(
        "INSERT INTO sessions (digest, person_id, csrf, created_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        _digest(token),
        session.person.person_id,
        session.csrf,
        now,
        session.expires_at,
    )
    await conn.execute("DELETE FROM sessions WHERE expires_at < $1", now)
    return token, session


async def session_of(
    conn: asyncpg.Connection | asyncpg.Pool, *, token: str, now: datetime
) -> Session | None:
    """The live session behind a cookie's token, or None (unknown, expired, disabled)."""
    row = await conn.fetchrow(
        """
        SELECT p.person_id, p.name, p.role, p.unit_id, p.agency, s.csrf, s.expires_at
          FROM sessions s JOIN people p USING (person_id)
         WHERE s.digest = $1 AND s.expires_at > $2 AND p.disabled_at IS NULL
        """,
        _digest(token),
        now,
    )
    return None if row is None else Session(_person(row), row["csrf"], row["expires_at"])


async def sign_out(conn: asyncpg.Connection | asyncpg.Pool, *, token: str) -> None:
    """End the session behind a token."""
    await conn.execute("DELETE FROM sessions WHERE digest = $1", _digest(token))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
