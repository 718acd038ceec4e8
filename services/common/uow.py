"""A unit of work: one transaction of a stage (a batch of records, or one run of a timer
job), with the connection, the time it began and what the stage keeps for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import asyncpg

S = TypeVar("S")


@dataclass(frozen=True)
class UnitOfWork(Generic[S]):
    """What a handler or a timer job is given: the transaction's connection, its clock (so
    a decision is tested with the time it is given) and the stage's state for this
    transaction alone (locks it holds, writes it defers, what it has read), made afresh
    for each transaction and dropped with it."""

    conn: asyncpg.Connection
    clock: Callable[[], datetime]
    state: S

    @property
    def now(self) -> datetime:
        """The time now, by the unit of work's clock."""
        return self.clock()
