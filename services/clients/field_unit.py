"""The field-unit client: report a unit's status, follow the orders given to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from schemas.common import Location
from schemas.envelope import DecodeError, Event, decode_event, new_event
from schemas.events import DispatchCancelledV1, UnitDispatchedV1, UnitStatusReportedV1
from schemas.ids import derive_id
from schemas.vocabulary import UnitStatus
from services.common.admin import records_since
from services.common.kafka import producer, send_events
from services.common.outbox import Outgoing
from services.common.settings import CommonSettings

if TYPE_CHECKING:
    import asyncpg


def _forget(crews: dict[UUID, asyncio.Task[None]], key: UUID, _: object) -> None:
    crews.pop(key, None)


def status_event(report: UnitStatusReportedV1) -> Event:
    """The CloudEvent of a unit report; the id repeats for the same unit, status and time."""
    identity = f"{report.unit_id}/{report.status.value}/{report.reported_at.isoformat()}"
    return new_event(
        report,
        id=derive_id(identity, "unit-status"),
        source=f"/siaga/unit/{report.unit_id}",
        time=report.reported_at,
        correlationid=str(report.incident_id) if report.incident_id else None,
    )


async def report_status(
    settings: CommonSettings,
    *,
    unit_id: str,
    status: UnitStatus,
    incident_id: UUID | None = None,
    location: Location | None = None,
    note: str | None = None,
    reported_at: datetime | None = None,
) -> UnitStatusReportedV1:
    """Publish one status report for a unit, keyed by the unit id (`reported_at`, now when
    not given, also makes its event id: the same report sent twice counts once)."""
    report = UnitStatusReportedV1(
        unit_id=unit_id,
        status=status,
        incident_id=incident_id,
        reported_at=reported_at or datetime.now(UTC),
        location=location,
        note=note,
    )
    client = producer(settings)
    await client.start()
    try:
        await send_events(client, [Outgoing.of(status_event(report), settings.topics)])
    finally:
        await client.stop()
    return report


async def judge_on_board(
    conn: asyncpg.Connection,
    *,
    unit_id: str,
    status: UnitStatus,
    incident_id: UUID | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    patience_s: float = 2.0,
    reported_at: datetime | None = None,
) -> tuple[UUID | None, str | None]:
    """The incident a report names (the unit's order when the crew named none, as a
    tablet would: a unit is freed only by a report naming its incident) and why the
    dispatcher would refuse it, judged by its own rule on the board (a connection to the
    read model), for a report made at `reported_at` (now when not given). The board may
    be a moment behind the dispatcher (an order just given), so a refusal is read again
    for up to `patience_s` before it stands."""
    from services.dispatcher.unit_reports import Refused, check_report, state_on_board
    from services.projector.queries import board_unit

    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    while True:
        unit = await board_unit(conn, unit_id)
        named = incident_id or (unit.incident_id if unit else None)
        state = None if unit is None else state_on_board(unit)
        now = clock()
        probe = UnitStatusReportedV1(
            unit_id=unit_id, status=status, incident_id=named, reported_at=reported_at or now
        )
        verdict = check_report(state, probe, now=now)
        if not isinstance(verdict, Refused):
            return named, None
        if unit is None or loop.time() >= deadline:
            return named, verdict.reason
        await asyncio.sleep(0.25)


async def watch_orders(
    settings: CommonSettings, *, unit_id: str, since: timedelta = timedelta(hours=1)
) -> AsyncIterator[UnitDispatchedV1 | DispatchCancelledV1]:
    """Orders and cancellations for `unit_id` from `since` ago, then as they come."""
    since_ms = int((datetime.now(UTC) - since).timestamp() * 1000)
    async for record in records_since(
        settings, [settings.topics.dispatch_orders], since_ms=since_ms
    ):
        try:
            event = decode_event(record.value)
        except DecodeError:
            continue
        payload = event.payload
        if (
            isinstance(payload, UnitDispatchedV1 | DispatchCancelledV1)
            and payload.unit_id == unit_id
        ):
            yield payload


async def answer_orders(
    settings: CommonSettings,
    crew: Callable[[UnitDispatchedV1], Coroutine[Any, Any, None]],
    *,
    pace_s: float = 0.0,
    serves: Callable[[UnitDispatchedV1], bool] = lambda order: True,
) -> None:
    """Run `crew` for every dispatch order from now on that `serves` accepts, each on its
    own, as a fleet's tablets would; a crew stops when its order is cancelled, and every
    crew when this is cancelled; `pace_s` as in `records_since`."""
    since_ms = int(datetime.now(UTC).timestamp() * 1000)
    crews: dict[UUID, asyncio.Task[None]] = {}
    try:
        async for record in records_since(
            settings, [settings.topics.dispatch_orders], since_ms=since_ms, pace_s=pace_s
        ):
            try:
                order = decode_event(record.value).payload
            except DecodeError:
                continue
            if isinstance(order, UnitDispatchedV1) and serves(order):
                task = asyncio.create_task(crew(order))
                crews[order.dispatch_id] = task
                task.add_done_callback(partial(_forget, crews, order.dispatch_id))
            elif isinstance(order, DispatchCancelledV1) and order.dispatch_id in crews:
                crews[order.dispatch_id].cancel()
    finally:
        for task in list(crews.values()):
            task.cancel()
        await asyncio.gather(*crews.values(), return_exceptions=True)
