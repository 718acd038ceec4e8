"""The command centre's board: what its page shows at once (incidents and units on the map,
the queues, the day's counters), read once per change for every screen, and what each
person may see of it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from pydantic_core import to_jsonable_python

from services.common.readable import mask_phones_in
from services.gateway.centre_actions import same_agency
from services.gateway.centre_reads import (
    DayCounters,
    MapIncident,
    MapUnit,
    WaitingIncident,
    active_incidents,
    day_counters,
    day_facts,
    day_start,
    units_on_map,
    waiting_for_unit,
)
from services.gateway.people import Person, Role
from services.projector.queries import QueuedWorkOrder, ReviewItem, agency_queue, review_queue

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclass(frozen=True)
class Board:
    """Everything the page shows at once, as of `at`."""

    at: datetime
    incidents: tuple[MapIncident, ...]
    units: tuple[MapUnit, ...]
    review: tuple[ReviewItem, ...]
    waiting: tuple[WaitingIncident, ...]
    work_orders: tuple[QueuedWorkOrder, ...]
    counters: DayCounters


def masked_text(row: T, *names: str) -> T:
    """The row (a dataclass) with phone numbers inside its free-text fields masked."""
    texts = {n: v for n in names if isinstance(v := getattr(row, n), str)}
    changes = {n: m for n, v in texts.items() if (m := mask_phones_in(v)) != v}
    return dataclasses.replace(row, **changes) if changes else row


async def load_board(conn: asyncpg.Connection, *, now: datetime) -> Board:
    """The board from the read model (one connection, one consistent snapshot)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        incidents = await active_incidents(conn)
        units = await units_on_map(conn)
        review = await review_queue(conn, limit=50)
        waiting = await waiting_for_unit(conn)
        orders = await agency_queue(conn, open_only=True)
        facts = await day_facts(conn, since=day_start(now))
    return Board(
        at=now,
        incidents=tuple(incidents),
        units=tuple(units),
        review=tuple(masked_text(r, "text", "explanation") for r in review),
        waiting=tuple(waiting),
        work_orders=tuple(masked_text(w, "summary", "response") for w in orders),
        counters=day_counters(facts, now=now),
    )


def visible_to(board: Board, person: Person) -> Board:
    """What `person` may see: everything, except for an agency's officer, who sees only
    their agency's incidents, units and work orders (and no triage queue)."""
    if person.role is not Role.AGENCY:
        return board
    mine = person.agency
    incidents = tuple(
        i
        for i in board.incidents
        if same_agency(mine, i.agency) or same_agency(mine, i.work_order_agency)
    )
    shown = {i.incident_id for i in incidents}
    return dataclasses.replace(
        board,
        incidents=incidents,
        units=tuple(u for u in board.units if same_agency(mine, u.agency)),
        review=(),
        waiting=tuple(w for w in board.waiting if w.incident_id in shown),
        work_orders=tuple(w for w in board.work_orders if same_agency(mine, w.agency)),
    )


def board_json(board: Board, *, version: int) -> Any:
    """The board as the page's script reads it."""
    return {"version": version, **to_jsonable_python(board)}


class BoardCache:
    """One board read for every screen after a change: a board is reused while the change
    feed's version is the one it was read at (and for `max_age_s` at most, so what time
    alone changes, overdue flags and counters, moves on too)."""

    def __init__(self, *, max_age_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._key: int | None = None
        self._read_at = 0.0
        self._board: Board | None = None
        self._encoded: tuple[Board, int, bytes] | None = None

    async def get(self, version: int | None, read: Callable[[], Awaitable[Board]]) -> Board:
        """The board of `version` (None: no feed is watching, so read it afresh)."""
        async with self._lock:
            fresh = self._clock() - self._read_at < self.max_age_s
            if self._board is not None and version is not None and version == self._key and fresh:
                return self._board
            self._board = await read()
            self._key, self._read_at = version, self._clock()
            return self._board

    def encoded(self, board: Board, *, version: int) -> bytes:
        """The whole board's JSON, encoded once for every screen that sees all of it (50
        screens each encoding a 1 MiB board after every change made the last one wait)."""
        cached = self._encoded
        if cached is not None and cached[0] is board and cached[1] == version:
            return cached[2]
        body = json.dumps(board_json(board, version=version), separators=(",", ":")).encode()
        self._encoded = (board, version, body)
        return body
