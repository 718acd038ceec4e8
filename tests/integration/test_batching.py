"""Writes collected per batch give the same database as writes made one event at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from schemas.cap import CapAlert
from schemas.common import Place
from schemas.envelope import TYPE_HEADER, Event, decode_event, encode_event, new_event
from schemas.events import (
    CallerSignals,
    CallLinkedV1,
    DispatchCancelledV1,
    IncidentClassifiedV1,
    IncidentOpenedV1,
    IncidentResolvedV1,
    IncidentStatusChangedV1,
    IntakeEnrichedV1,
    IntakeReceivedV1,
    TriageReviewedV1,
    UnitDispatchedV1,
    UnitStatusChangedV1,
    UnitStatusReportedV1,
    WorkOrderAnsweredV1,
    WorkOrderIssuedV1,
)
from schemas.ids import derive_id
from schemas.registry import event_type_for
from schemas.vocabulary import Category, Channel, IncidentStatus, Priority, UnitStatus, UnitType
from services.clients.operator import new_intake
from services.common.db import use_json_codecs
from services.common.outbox import Outgoing
from services.common.processing import BatchProcessor, Deferred, Rows
from services.common.records import Record
from services.common.uow import UnitOfWork
from services.enricher.repository import Callers
from services.projector.board import RANK, UnitChange, fold
from services.projector.entrypoint import Projector
from services.projector.repository import BoardChange, ReadModelWrites, apply_board
from services.projector.stage import PROJECTOR
from services.tracker.entrypoint import Tracker, TrackerBatch
from services.triage.repository import Correlation
from tests.conftest import Pipeline, eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
def stages() -> tuple[str, ...]:
    """Only the database is needed: the tests drive the projector's code directly."""
    return ()


def _uow(conn: Any, state: Any = None, *, now: datetime | None = None) -> UnitOfWork[Any]:
    """A unit of work for calling a handler directly (`conn` may be a pool)."""
    return UnitOfWork(conn, (lambda: now) if now else (lambda: datetime.now(UTC)), state)


async def _pool(pipeline: Pipeline, schema: str = "readmodel") -> asyncpg.Pool:
    """A small pool whose SQL names the stage's tables unqualified, as the stage's own does."""
    pool = await asyncpg.create_pool(
        pipeline.settings.database_url(),
        min_size=1,
        max_size=2,
        server_settings={"search_path": f"{schema}, public"},
        init=use_json_codecs,  # jsonb as Python values, as the stages' pools have it
    )
    assert pool is not None
    return pool


def _history(seed: int) -> list[BoardChange]:
    """Orders and reports of three units over a few incidents, with clocks that disagree."""
    rng = random.Random(seed)
    changes = []
    for unit in ("AMB-1", "AMB-2", "DAMKAR-1"):
        at = T0
        for _ in range(4):
            incident = uuid.uuid4()
            for step in ("dispatched", "acknowledged", "en_route", "on_scene", "available"):
                at += timedelta(seconds=rng.randint(-5, 60))  # a device clock may lag
                changes.append(
                    BoardChange(unit, UnitChange(step, at, incident), f"e-{uuid.uuid4().hex}")
                )
    return changes


async def _board(conn: asyncpg.Connection) -> tuple[list[Any], list[Any]]:
    units = await conn.fetch(
        "SELECT unit_id, status, status_at, incident_id, assigned_at, cleared_incident_id, "
        "cleared_at FROM units ORDER BY unit_id"
    )
    changes = await conn.fetch("SELECT * FROM unit_changes ORDER BY unit_id, at, rank, change_id")
    return [tuple(r.values()) for r in units], [tuple(r.values()) for r in changes]


async def test_the_board_folded_per_batch_equals_the_board_folded_per_change(
    pipeline: Pipeline,
) -> None:
    history = _history(seed=3)
    pool = await _pool(pipeline)
    try:
        boards = []
        shuffled = random.Random(5).sample(history, len(history))
        splits = [
            [history],  # one batch in time order
            [[c] for c in shuffled],  # one change per batch, in arrival order
            [shuffled[i : i + 7] for i in range(0, len(shuffled), 7)],  # batches of seven
            [shuffled, shuffled[:10]],  # and a redelivery changes nothing
        ]
        for batches in splits:
            async with pool.acquire() as conn:
                await conn.execute("TRUNCATE units, unit_changes")
                for batch in batches:
                    async with conn.transaction():
                        await apply_board(conn, batch)
                boards.append(await _board(conn))
        assert all(board == boards[0] for board in boards[1:])
        # And the board is the pure fold of each unit's changes in time order.
        units, _ = boards[0]
        for unit_id, status, status_at, incident_id, *_ in units:
            mine = sorted(
                (c for c in history if c.unit_id == unit_id),
                key=lambda c: (c.change.at, RANK[c.change.status], c.change_id),
            )
            row = fold(None, [c.change for c in mine])[-1]
            assert (status, status_at, incident_id) == (row.status, row.status_at, row.incident_id)
    finally:
        await pool.close()


def _record(event: Event, topic: str, offset: int) -> Record:
    return Record(topic, 0, offset, None, encode_event(event), (("content-type", b"x"),))


def _records(batch: list[tuple[Any, str]]) -> list[Record]:
    """Records of (payload, topic) pairs, each payload in an envelope of its own."""
    return [
        _record(new_event(p, id=uuid.uuid4(), source="/test"), topic, offset)
        for offset, (p, topic) in enumerate(batch)
    ]


# Where the fire calls of the triage tests come from: calls placed alike can be duplicates.
WONOTUNGGAL = Place(
    kecamatan_code="33.25.01",
    kecamatan="Wonotunggal",
    lat=-7.0,
    lon=109.7,
    confidence=0.9,
    method="kecamatan",
)


def _fire_call(n: int, *, at: datetime | None = None, place: Place = WONOTUNGGAL) -> Event:
    """The `n`th enriched call about a fire at `place`, from a number with no history."""
    intake = new_intake(
        channel=Channel.CALL112,
        text=f"kebakaran rumah warga di Wonotunggal, api besar ({n})",
        phone=f"+6281200000{n:02d}",
    )
    if at is not None:
        intake = intake.model_copy(update={"received_at": at})
    quiet = CallerSignals(
        prior_reports=0, prior_pranks=0, repeat_caller=False, prank_flagged=False, ghost=False
    )
    enriched = IntakeEnrichedV1(
        intake=intake, place=place, signals=quiet, enriched_at=datetime.now(UTC)
    )
    return new_event(enriched, id=uuid.uuid4(), source="/test")


def _triage(settings: Any, topics: Any) -> Any:
    """Triage with the classifier and duplicate rule of `settings`."""
    from services.triage.classifier import Classifier
    from services.triage.entrypoint import Triage

    return Triage(
        classifier=Classifier(threshold=settings.review_threshold),
        topics=topics,
        duplicates=settings.duplicate_rule(),
    )


def _opened(incident: uuid.UUID, *, at: datetime, intake_id: uuid.UUID | None = None) -> Any:
    """A call about a house fire opened `incident`."""
    return IncidentOpenedV1(
        incident_id=incident,
        intake_id=intake_id or uuid.uuid4(),
        channel=Channel.CALL112,
        received_at=at,
        opened_at=at,
        text="kebakaran rumah",
        place=None,
    )


def _classified(
    incident: uuid.UUID,
    *,
    received: datetime,
    at: datetime,
    category: Category = Category.FIRE,
    sla_seconds: int = 60,
) -> Any:
    """Triage's verdict on `incident` (a P1 fire unless told otherwise)."""
    prank = category is Category.PRANK
    return IncidentClassifiedV1(
        incident_id=incident,
        category=category,
        priority=Priority.P4 if prank else Priority.P1,
        agency="POLRES" if prank else "DAMKAR",
        confidence=0.9,
        explanation="bercanda" if prank else "api",
        needs_review=False,
        sla_seconds=sla_seconds,
        text="kebakaran rumah",
        channel=Channel.CALL112,
        received_at=received,
        place=None,
        classified_at=at,
    )


def _dispatched(incident: uuid.UUID, *, unit: str, at: datetime) -> Any:
    """A fire truck's order to `incident`."""
    return UnitDispatchedV1(
        dispatch_id=uuid.uuid4(),
        incident_id=incident,
        unit_id=unit,
        unit_type=UnitType.FIRE_TRUCK,
        category=Category.FIRE,
        priority=Priority.P1,
        place=None,
        distance_km=None,
        eta_seconds=None,
        dispatched_at=at,
    )


async def test_a_batch_issuing_and_answering_a_work_order_and_moving_a_unit_lands_whole(
    pipeline: Pipeline,
) -> None:
    topics = pipeline.topics
    incident, order = uuid.uuid4(), uuid.uuid4()
    issued = WorkOrderIssuedV1(
        work_order_id=order,
        incident_id=incident,
        agency="DPUPR",
        category=Category.INFRASTRUCTURE,
        priority=Priority.P4,
        summary="jalan berlubang",
        issued_at=T0,
        due_at=T0 + timedelta(days=3),
    )
    answered = WorkOrderAnsweredV1(
        work_order_id=order,
        incident_id=incident,
        agency="DPUPR",
        response="ditambal besok",
        answered_by="petugas",
        answered_at=T0 + timedelta(hours=1),
    )
    dispatched = UnitDispatchedV1(
        dispatch_id=uuid.uuid4(),
        incident_id=incident,
        unit_id="AMB-9",
        unit_type=UnitType.AMBULANCE,
        category=Category.MEDICAL,
        priority=Priority.P1,
        place=None,
        distance_km=None,
        eta_seconds=300,
        dispatched_at=T0,
    )
    events = [new_event(p, id=uuid.uuid4(), source="/test") for p in (issued, answered, dispatched)]
    projector = Projector()
    pool = await _pool(pipeline)
    try:
        processor = BatchProcessor(
            stage="projector",
            pool=pool,
            topics=topics,
            handlers=PROJECTOR.handlers(*projector.handlers()),
            owned_topics=[],
            new_state=ReadModelWrites,
        )
        records = [
            _record(e, Outgoing.of(e, topics).topic, offset) for offset, e in enumerate(events)
        ]
        await processor.process(records)
        await processor.process(records)  # redelivered: nothing changes
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT answered_at, answered_by FROM work_orders WHERE work_order_id = $1", order
            )
            unit = await conn.fetchrow(
                "SELECT status, incident_id FROM units WHERE unit_id = 'AMB-9'"
            )
            lines = await conn.fetchval(
                "SELECT count(*) FROM timeline WHERE incident_id = $1", incident
            )
    finally:
        await pool.close()
    assert row is not None and row["answered_at"] == answered.answered_at
    assert row["answered_by"] == "petugas"
    assert unit is not None and (unit["status"], unit["incident_id"]) == ("dispatched", incident)
    assert lines == 3


async def test_an_incidents_alerts_in_one_batch_are_those_of_one_event_per_batch(
    pipeline: Pipeline,
) -> None:
    """The projector reads the latest alert of a batch's incidents once and follows it
    within the batch: a disaster classified, found no disaster, found one again, reached
    and resolved gives the same alerts (Alert, Cancel; a new Alert, its Update, its Cancel)
    in one batch as in a batch per event, and again nothing more."""
    topics = pipeline.topics

    def step(incident: uuid.UUID, status: IncidentStatus, minutes: int) -> tuple[Any, str]:
        changed = IncidentStatusChangedV1(
            incident_id=incident,
            from_status=None,
            to_status=status,
            changed_at=T0 + timedelta(minutes=minutes),
            reason="test",
        )
        return changed, topics.incident_events

    def review(incident: uuid.UUID, category: Category, minutes: int) -> tuple[Any, str]:
        reviewed = TriageReviewedV1(
            incident_id=incident,
            decision="recategorised",
            category=category,
            priority=Priority.P2,
            agency="BPBD",
            sla_seconds=300,
            previous_category=Category.DISASTER,
            previous_priority=Priority.P1,
            reviewed_by="petugas",
            reviewed_at=T0 + timedelta(minutes=minutes),
            text="banjir",
            channel=Channel.CALL112,
            received_at=T0,
            place=None,
        )
        return reviewed, topics.incident_events

    projector = Projector()
    pool = await _pool(pipeline)
    threads = []
    try:
        for split in ("one batch", "one per batch"):
            incident = uuid.uuid4()
            steps = [
                (
                    _classified(incident, received=T0, at=T0, category=Category.DISASTER),
                    topics.incident_events,
                ),
                review(incident, Category.INFRASTRUCTURE, 2),
                review(incident, Category.DISASTER, 3),
                step(incident, IncidentStatus.DISPATCHED, 4),
                step(incident, IncidentStatus.ON_SCENE, 20),
                step(incident, IncidentStatus.RESOLVED, 60),
            ]
            processor = BatchProcessor(
                stage="projector",
                pool=pool,
                topics=topics,
                handlers=PROJECTOR.handlers(*projector.handlers()),
                owned_topics=[],
                new_state=ReadModelWrites,
            )
            records = _records(steps)
            for batch in [[r] for r in records] if split == "one per batch" else [records]:
                await processor.process(batch)
            await processor.process(records)  # redelivered: nothing changes
            rows = await pool.fetch(
                "SELECT message FROM cap_alerts WHERE incident_id = $1 ORDER BY incident_seq",
                incident,
            )
            threads.append([CapAlert.model_validate(r["message"]) for r in rows])
    finally:
        await pool.close()
    for thread in threads:
        assert [a.msg_type for a in thread] == ["Alert", "Cancel", "Alert", "Update", "Cancel"]
        first, _, again, update, _ = (a.identifier for a in thread)
        assert [[r.identifier for r in a.references] for a in thread] == [
            [], [first], [], [again], [update, again]
        ]  # fmt: skip
    ids = {"identifier", "references", "incident_id"}  # all else is the same
    assert [a.model_dump(exclude=ids) for a in threads[0]] == [
        a.model_dump(exclude=ids) for a in threads[1]
    ]


async def test_a_write_that_fails_at_the_end_of_a_batch_costs_only_its_own_record(
    pipeline: Pipeline,
) -> None:
    """The batch is redone record by record, so the failing one is dead-lettered and the
    others land."""
    topics = pipeline.topics

    async def handler(uow: UnitOfWork[Deferred], event: Event) -> list[Outgoing]:
        payload = event.payload
        assert isinstance(payload, UnitDispatchedV1)
        uow.state.add(
            "INSERT INTO batch_probe (unit_id, eta) VALUES ($1, $2)",
            payload.unit_id,
            payload.eta_seconds,
        )
        return []

    def order(unit_id: str, eta: int) -> Event:
        payload = UnitDispatchedV1(
            dispatch_id=uuid.uuid4(),
            incident_id=uuid.uuid4(),
            unit_id=unit_id,
            unit_type=UnitType.POLICE,
            category=Category.CRIME,
            priority=Priority.P2,
            place=None,
            distance_km=None,
            eta_seconds=eta,
            dispatched_at=T0,
        )
        return new_event(payload, id=uuid.uuid4(), source="/test")

    pool = await _pool(pipeline)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "CREATE TABLE batch_probe (unit_id text PRIMARY KEY, eta int CHECK (eta < 1000))"
            )
        processor = BatchProcessor(
            stage="projector",
            pool=pool,
            topics=topics,
            handlers={UnitDispatchedV1: handler},
            new_state=Deferred,
        )
        events = [order("P-1", 60), order("P-2", 5000), order("P-3", 120)]
        await processor.process(
            [_record(e, topics.dispatch_orders, offset) for offset, e in enumerate(events)]
        )
        async with pool.acquire() as conn:
            landed = await conn.fetch("SELECT unit_id FROM batch_probe ORDER BY unit_id")
            dead = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE topic = $1", topics.deadletter
            )
    finally:
        await pool.close()
    assert [r["unit_id"] for r in landed] == ["P-1", "P-3"]
    assert dead == 1 and processor.dead_lettered == 1


async def test_a_stage_passes_over_other_stages_events_by_their_type_header_and_refuses_one_that_lies(
    pipeline: Pipeline,
) -> None:
    topics = pipeline.topics
    linked_type = event_type_for(CallLinkedV1).type
    opened_type = event_type_for(IncidentOpenedV1).type
    applied: dict[str, list[str]] = {"owner": [], "reader": []}

    def link(reason: str) -> Event:
        return new_event(
            CallLinkedV1(
                incident_id=uuid.uuid4(),
                intake_id=uuid.uuid4(),
                channel=Channel.CALL112,
                linked_at=T0,
                reason=reason,
            ),
            id=uuid.uuid4(),
            source="/test",
        )

    opened = new_event(_opened(uuid.uuid4(), at=T0), id=uuid.uuid4(), source="/test")

    def record(value: bytes, offset: int, said: str | None) -> Record:
        headers = (("content-type", b"x"),) + (
            () if said is None else ((TYPE_HEADER, said.encode()),)
        )
        return Record(topics.incident_events, 0, offset, None, value, headers)

    batch = [
        # Not even JSON, but its header names an event the stage does not handle.
        record(b"not json", 0, opened_type),
        record(encode_event(link("told")), 1, linked_type),
        # A link whose header says it is an opening, and an opening that says it is a link.
        record(encode_event(link("hidden")), 2, opened_type),
        record(encode_event(opened), 3, linked_type),
        record(encode_event(link("untold")), 4, None),  # an outside producer's: parsed
        record(encode_event(link("blank")), 5, ""),  # an empty header says nothing: parsed
    ]
    pool = await _pool(pipeline)
    processors = {}
    try:
        for stage, owned in (("owner", None), ("reader", [])):

            async def handler(
                conn: asyncpg.Connection, event: Event, stage: str = stage
            ) -> Sequence[Outgoing]:
                assert isinstance(event.payload, CallLinkedV1)
                applied[stage].append(event.payload.reason)
                return []

            processors[stage] = processor = BatchProcessor(
                stage=stage,
                pool=pool,
                topics=topics,
                handlers={CallLinkedV1: handler},
                inbox_key=lambda event, stage=stage: f"{stage}:{event.id}",  # type: ignore[misc]
                owned_topics=owned,
            )
            await processor.process(batch)
        async with pool.acquire() as conn:
            letters = [
                decode_event(row["value"]).payload
                for row in await conn.fetch(
                    "SELECT value FROM outbox WHERE topic = $1 ORDER BY seq", topics.deadletter
                )
            ]
    finally:
        await pool.close()
    # Both apply the links that are what they say, with or without the header.
    assert applied == {"owner": ["told", "untold", "blank"], "reader": ["told", "untold", "blank"]}
    # The topic's owner reads everything and dead-letters what it cannot trust.
    assert [(d.stage, d.error_type, d.source_offset) for d in letters] == [  # type: ignore[attr-defined]
        ("owner", "not_json", 0),
        ("owner", "type_mismatch", 2),
        ("owner", "type_mismatch", 3),
    ]
    # Another stage passes over what its header says it does not handle, unread; a record
    # that says it is a link is read, and refused when it is not.
    assert processors["reader"].skipped == 1 and processors["reader"].dead_lettered == 0


async def test_two_calls_about_one_fire_in_one_batch_give_one_incident_and_a_link(
    pipeline: Pipeline,
) -> None:
    """Triage reads a category's open incidents once per batch; an incident opened earlier
    in the batch must still take the batch's later calls about it."""
    from services.triage.bootstrap import TriageSettings

    topics = pipeline.topics
    events = [_fire_call(n) for n in range(2)]
    triage = _triage(TriageSettings(), topics)
    pool = await _pool(pipeline, "triage")
    try:
        processor = BatchProcessor(
            stage="triage",
            pool=pool,
            topics=topics,
            handlers={IntakeEnrichedV1: triage.on_intake_enriched},
            new_state=Correlation,
        )
        await processor.process(
            [_record(e, topics.intake_enriched, offset) for offset, e in enumerate(events)]
        )
        async with pool.acquire() as conn:
            incidents = await conn.fetchval("SELECT count(*) FROM incidents")
            linked = await conn.fetchval("SELECT count(*) FROM intakes")
            published = [
                type(decode_event(r["value"]).payload)
                for r in await conn.fetch("SELECT value FROM outbox ORDER BY seq")
            ]
    finally:
        await pool.close()
    assert incidents == 1 and linked == 2
    assert published.count(IncidentOpenedV1) == 1 and published.count(CallLinkedV1) == 1


async def test_incidents_a_batch_opens_are_read_back_and_ended_within_it(
    pipeline: Pipeline,
) -> None:
    """Triage sends the incidents a batch opens with the batch, yet reads them back when a
    later call of the batch needs the category read again, and ends them when the batch
    ends them: a call that repeats an incident opened in the batch joins it, and a call
    after that incident ended opens a new one. A status change that ends nothing (a unit
    dispatched) is passed over with no inbox row; a cancellation ends its incident."""
    from services.triage.bootstrap import TriageSettings

    topics = pipeline.topics
    settings = TriageSettings()
    window = timedelta(seconds=settings.duplicate_window_s)
    t0 = datetime.now(UTC) - 10 * window

    def resolve(opening: Event) -> Event:
        incident = derive_id(opening.payload.intake.intake_id, "incident")
        ended = IncidentResolvedV1(incident_id=incident, resolved_at=t0 + window, units=[])
        return new_event(ended, id=uuid.uuid4(), source="/test")

    def changed(opening: Event, to: IncidentStatus) -> Event:
        incident = derive_id(opening.payload.intake.intake_id, "incident")
        change = IncidentStatusChangedV1(
            incident_id=incident,
            from_status=None,
            to_status=to,
            changed_at=t0 + 2 * window,
            reason="test",
        )
        return new_event(change, id=uuid.uuid4(), source="/test")

    away = WONOTUNGGAL.model_copy(update={"lat": -6.8, "lon": 110.0})
    first = _fire_call(0, at=t0)
    far = _fire_call(1, at=t0 + 3 * window)  # beyond what was read: the category is read again
    repeat = _fire_call(2, at=t0 + window / 2)  # read again too, must find the first incident
    elsewhere = _fire_call(3, at=t0 + window / 2, place=away)
    after = _fire_call(4, at=t0 + window / 2)  # the first incident has ended: a new one
    cancelled = _fire_call(5, at=t0 + 5 * window)
    dispatched = changed(far, IncidentStatus.DISPATCHED)
    events = [first, far, repeat, elsewhere, resolve(elsewhere), resolve(first), after]
    cancel = changed(cancelled, IncidentStatus.CANCELLED)
    events += [dispatched, cancelled, cancel]
    batch = [
        _record(
            e,
            topics.intake_enriched
            if isinstance(e.payload, IntakeEnrichedV1)
            else topics.incident_events,
            n,
        )
        for n, e in enumerate(events)
    ]
    triage = _triage(settings, topics)
    pool = await _pool(pipeline, "triage")
    try:
        processor = BatchProcessor(
            stage="triage",
            pool=pool,
            topics=topics,
            handlers={
                IntakeEnrichedV1: triage.on_intake_enriched,
                IncidentResolvedV1: triage.on_incident_ended,
                IncidentStatusChangedV1: triage.on_incident_ended,
            },
            new_state=Correlation,
        )
        await processor.process(batch)
        async with pool.acquire() as conn:
            inbox = {r["message_key"] for r in await conn.fetch("SELECT message_key FROM inbox")}
            links = {
                r["intake_id"]: r["incident_id"]
                for r in await conn.fetch("SELECT intake_id, incident_id FROM intakes")
            }
            ended = {
                r["incident_id"]: r["ended_at"]
                for r in await conn.fetch("SELECT incident_id, ended_at FROM incidents")
            }
    finally:
        await pool.close()

    def of(e: Event) -> uuid.UUID:
        return links[e.payload.intake.intake_id]

    assert processor.dead_lettered == 0
    assert of(first) == of(repeat)
    assert len(ended) == len({of(first), of(far), of(elsewhere), of(after), of(cancelled)}) == 5
    assert ended[of(first)] == ended[of(elsewhere)] == t0 + window  # opened and ended here
    assert ended[of(far)] is None and ended[of(after)] is None
    assert ended[of(cancelled)] == t0 + 2 * window
    assert f"event:{dispatched.id}" not in inbox
    assert f"event:{cancel.id}" in inbox


@pytest.mark.parametrize("dispatch_first", [False, True])
async def test_a_dispatch_read_before_its_classification_still_meets_the_target(
    pipeline: Pipeline, dispatch_first: bool
) -> None:
    """The tracker reads classifications and dispatch orders from two topics, so one batch
    (or a rebalance) may bring the order first; the dispatch target is met either way."""

    topics = pipeline.topics
    incident = uuid.uuid4()
    received = datetime.now(UTC) - timedelta(minutes=5)  # the target is long past due
    opened = _opened(incident, at=received)
    classified = _classified(incident, received=received, at=received + timedelta(seconds=2))
    order = _dispatched(incident, unit="DAMKAR-1", at=received + timedelta(seconds=30))
    late = [(order, topics.dispatch_orders), (classified, topics.incident_events)]
    batch = [(opened, topics.incident_events), *(late if dispatch_first else late[::-1])]
    tracker = Tracker(topics=topics)
    pool = await _pool(pipeline, "tracker")
    try:
        processor = BatchProcessor(
            stage="tracker",
            pool=pool,
            topics=topics,
            handlers={
                IncidentOpenedV1: tracker.on_incident_opened,
                IncidentClassifiedV1: tracker.on_incident_classified,
                UnitDispatchedV1: tracker.on_unit_dispatched,
            },
            new_state=TrackerBatch,
        )
        await processor.process(_records(batch))
        async with pool.acquire() as conn, conn.transaction():
            breaches = await tracker.raise_sla_breaches(_uow(conn))
            timer = await conn.fetchrow("SELECT met_at, breached_at FROM sla_timers")
    finally:
        await pool.close()
    assert processor.dead_lettered == 0
    assert breaches == []
    assert timer is not None and timer["met_at"] == order.dispatched_at


async def test_sla_stops_give_the_same_timer_in_any_order(pipeline: Pipeline) -> None:
    """Start, a met stop and an earlier void of all targets, read in every order, one
    statement each or the stops of a batch in one: the timer ends the same (the earliest
    stop counts); of two stops of one target in one batch, the earlier counts."""
    import itertools

    from services.tracker import repository

    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    met = repository.SlaStop(uuid.UUID(int=0), "dispatch", t0 + timedelta(seconds=40), met=True)
    void = repository.SlaStop(uuid.UUID(int=0), "*", t0 + timedelta(seconds=20), met=False)
    sooner = repository.SlaStop(uuid.UUID(int=0), "dispatch", t0 + timedelta(seconds=30), met=True)
    steps: dict[str, list[repository.SlaStop]] = {
        "met": [met],
        "void": [void],
        "met+void": [met, void],
        "void+met": [void, met],
    }
    orders = [
        *itertools.permutations(("start", "met", "void")),
        *itertools.permutations(("start", "met+void")),
        *itertools.permutations(("start", "void+met")),
    ]

    async def timer_after(order: Sequence[str], stops: dict[str, list[Any]]) -> tuple[Any, Any]:
        incident = uuid.uuid4()
        async with pool.acquire() as conn, conn.transaction():
            for step in order:
                if step == "start":
                    timer = repository.SlaTimer(
                        incident_id=incident,
                        target="dispatch",
                        due_at=t0 + timedelta(minutes=1),
                        priority="P1",
                        channel="call112",
                        category="fire",
                        received_at=t0,
                    )
                    await repository.start_sla_timers(conn, [timer])
                else:
                    await repository.stop_sla_timers(
                        conn, [dataclasses.replace(s, incident_id=incident) for s in stops[step]]
                    )
            row = await conn.fetchrow(
                "SELECT met_at, voided_at FROM sla_timers WHERE incident_id = $1", incident
            )
        assert row is not None
        return row["met_at"], row["voided_at"]

    pool = await _pool(pipeline, "tracker")
    try:
        results = {await timer_after(order, steps) for order in orders}
        twice = {"met": [met, sooner], "met'": [sooner, met]}
        both = {
            await timer_after(order, twice)
            for order in [("start", "met"), ("met", "start"), ("start", "met'"), ("met'", "start")]
        }
    finally:
        await pool.close()
    assert results == {(None, t0 + timedelta(seconds=20))}
    assert both == {(t0 + timedelta(seconds=30), None)}


async def test_the_next_waiting_slot_comes_from_the_index_not_a_sort_of_the_queue(
    pipeline: Pipeline,
) -> None:
    """With thousands of slots waiting (a disaster, every unit out), the next one for a unit
    type is still the most urgent and oldest, and is read off an index rather than by
    sorting the whole queue each time a unit frees up."""
    from services.dispatcher import repository

    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    rng = random.Random(6)
    rows = [
        (
            uuid.uuid4(),
            slot,
            rng.choice(["ambulance", "fire_truck", "police"]),
            rng.choice(["P1", "P2", "P3"]),
            "fire",
            t0 + timedelta(seconds=rng.randrange(3600)),
        )
        for slot in range(3000)
    ]
    pool = await _pool(pipeline, "dispatcher")
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO pending (incident_id, slot, unit_type, priority, category, queued_at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                rows,
            )
            await conn.execute("ANALYZE pending")
            head = await repository.next_pending(conn, unit_type="police")
            third = await repository.next_pending(conn, unit_type="police", skip=2)
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN SELECT incident_id FROM pending WHERE unit_type = $1"
                    " ORDER BY priority, queued_at, incident_id, slot OFFSET 2 LIMIT 1"
                    " FOR UPDATE SKIP LOCKED",
                    "police",
                )
            )
    finally:
        await pool.close()
    police = sorted((r for r in rows if r[2] == "police"), key=lambda r: (r[3], r[5], r[0], r[1]))
    assert head is not None and (head.need.incident_id, head.need.slot) == police[0][:2]
    assert third is not None and (third.need.incident_id, third.need.slot) == police[2][:2]
    assert "pending_by_urgency" in plan and "Sort" not in plan, plan


async def test_the_next_waiting_slot_keeps_to_the_index_as_the_queue_grows_from_empty(
    pipeline: Pipeline,
) -> None:
    """A stage's connection that read its waiting list many times while the list was nearly
    empty (and analyzed so) still reads the next slot off the index once thousands wait:
    a plan cached for the small list would scan and sort the whole queue at each call."""
    from services.dispatcher import repository

    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    rng = random.Random(7)
    made: list[tuple[Any, ...]] = []

    def slots(count: int) -> list[tuple[Any, ...]]:
        made.extend(
            (
                uuid.uuid4(),
                0,
                rng.choice(["ambulance", "fire_truck", "police"]),
                rng.choice(["P1", "P2", "P3"]),
                "fire",
                t0 + timedelta(seconds=rng.randrange(3600)),
            )
            for _ in range(count)
        )
        return made[-count:]

    insert = (
        "INSERT INTO pending (incident_id, slot, unit_type, priority, category, queued_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
    )
    scans = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'pending'::regclass"
    pool = await _pool(pipeline, "dispatcher")
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(insert, slots(3))
            await conn.execute("ANALYZE pending")
            for _ in range(10):  # past the calls after which a prepared statement keeps a plan
                await repository.next_pending(conn, unit_type="police")
            await conn.executemany(insert, slots(3000))
            before = await conn.fetchval(scans)
            head = await repository.next_pending(conn, unit_type="police")
            for _ in range(4):
                await repository.next_pending(conn, unit_type="police")
            after = await conn.fetchval(scans)
    finally:
        await pool.close()
    police = min((r for r in made if r[2] == "police"), key=lambda r: (r[3], r[5], r[0], r[1]))
    assert head is not None and (head.need.incident_id, head.need.slot) == police[:2]
    assert after == before, f"{after - before} sequential scans of the waiting list"


async def test_a_numbers_calls_in_one_batch_count_as_they_would_one_by_one(
    pipeline: Pipeline,
) -> None:
    """The enricher reads a batch's numbers in one go and counts in memory: three calls from
    one number see 0, 1 and 2 earlier reports, a prank verdict read between them is seen by
    the calls after it (whether it comes before or after the incident's opening), and the
    stored counts are those of one call per batch; the same holds when a refused record
    makes the batch be redone record by record."""
    from services.common.gazetteer import load_gazetteer
    from services.common.processing import Rejected
    from services.enricher.entrypoint import Enricher
    from services.enricher.places import PlaceResolver
    from services.enricher.stage import ENRICHER

    topics = pipeline.topics
    enricher = Enricher(
        resolver=PlaceResolver(load_gazetteer(pipeline.settings.home.pack())),
        topics=topics,
        repeat_window=timedelta(hours=24),
        prank_threshold=3,
    )

    async def refuse(conn: asyncpg.Connection, event: Event) -> list[Outgoing]:
        raise Rejected("refused", "a record the stage refuses")

    def scenario(phone: str, *, refused: bool, prank_first: bool = False) -> list[tuple[Any, str]]:
        t0 = datetime.now(UTC) - timedelta(minutes=10)
        calls = [
            new_intake(channel=Channel.CALL112, text=f"kebakaran {n}", phone=phone).model_copy(
                update={"received_at": t0 + timedelta(minutes=n)}
            )
            for n in range(3)
        ]
        incident = uuid.uuid4()
        opened = _opened(incident, at=t0, intake_id=calls[0].intake_id)
        prank = _classified(incident, received=t0, at=t0, category=Category.PRANK, sla_seconds=0)
        other = new_intake(channel=Channel.SMS, text="banjir", phone=phone + "9")
        verdicts = [opened, prank] if not prank_first else [prank, opened]
        batch: list[tuple[Any, str]] = [
            (calls[0], topics.intake_received),
            (other, topics.intake_received),
            *((verdict, topics.incident_events) for verdict in verdicts),
            (calls[1], topics.intake_received),
            (calls[2], topics.intake_received),
        ]
        if refused:
            resolved = IncidentResolvedV1(incident_id=incident, resolved_at=t0, units=[])
            batch.insert(3, (resolved, topics.incident_events))
        return batch

    async def run(batches: list[list[tuple[Any, str]]]) -> list[tuple[int, int, bool]]:
        sent: list[Outgoing] = []
        processor = BatchProcessor(
            stage="enricher",
            pool=pool,
            topics=topics,
            handlers={
                IntakeReceivedV1: enricher.on_intake_received,
                IncidentOpenedV1: enricher.on_incident_opened,
                IncidentClassifiedV1: enricher.on_incident_classified,
                IncidentResolvedV1: refuse,
            },
            inbox_key=ENRICHER.inbox_key,
            new_state=Callers,
            publish=sent.extend,
        )
        for batch in batches:
            await processor.process(_records(batch))
        signals = [
            o.event.payload.signals
            for o in sent
            if isinstance(o.event.payload, IntakeEnrichedV1)
            and o.event.payload.intake.channel is Channel.CALL112
        ]
        return [(s.prior_reports, s.prior_pranks, s.repeat_caller) for s in signals]

    pool = await _pool(pipeline, "enricher")
    try:
        expected = [(0, 0, False), (1, 1, True), (2, 1, True)]
        cases = {
            "+6281100000001": [scenario("+6281100000001", refused=False)],
            "+6281100000002": [[step] for step in scenario("+6281100000002", refused=False)],
            "+6281100000003": [scenario("+6281100000003", refused=True)],
            # Replayed out of order, the verdict before the opening: counted all the same.
            "+6281100000004": [scenario("+6281100000004", refused=False, prank_first=True)],
            "+6281100000005": [
                [step] for step in scenario("+6281100000005", refused=False, prank_first=True)
            ],
        }
        for phone, batches in cases.items():
            assert await run(batches) == expected, phone
            counts = await pool.fetch(
                "SELECT phone, reports, pranks FROM callers WHERE phone LIKE $1 ORDER BY phone",
                phone + "%",
            )
            assert [tuple(r.values()) for r in counts] == [(phone, 3, 1), (phone + "9", 1, 0)]
    finally:
        await pool.close()


async def test_an_incidents_steps_in_one_batch_land_as_they_would_one_by_one(
    pipeline: Pipeline,
) -> None:
    """The tracker reads a batch's incidents in one go and writes their steps in one: from
    call to back in service, the status, the eTimes and the status changes it emits are
    those of one event per batch, also when a refused report makes the batch be redone
    record by record."""

    topics = pipeline.topics
    t0 = datetime.now(UTC) - timedelta(minutes=30)

    def life(incident: uuid.UUID, unit: str, *, refused: bool) -> list[tuple[Any, str]]:
        at = [t0 + timedelta(minutes=n) for n in range(10)]

        def report(status: UnitStatus, n: int, who: str = unit) -> tuple[Any, str]:
            return (
                UnitStatusChangedV1(
                    unit_id=who,
                    status=status,
                    previous_status=UnitStatus.DISPATCHED,
                    incident_id=incident if who == unit else None,
                    reported_at=at[n],
                ),
                topics.unit_status,
            )

        steps = [
            (_opened(incident, at=at[0]), topics.incident_events),
            (
                _classified(incident, received=at[0], at=at[1], sla_seconds=600),
                topics.incident_events,
            ),
            (_dispatched(incident, unit=unit, at=at[2]), topics.dispatch_orders),
            report(UnitStatus.ACKNOWLEDGED, 3),
            report(UnitStatus.EN_ROUTE, 4),
            report(UnitStatus.ON_SCENE, 5),
            report(UnitStatus.RETURNING, 6),
            report(UnitStatus.AVAILABLE, 7),
        ]
        if refused:  # a step naming no incident (the dispatcher never sends one): refused,
            # and the batch is redone record by record
            steps.insert(4, report(UnitStatus.EN_ROUTE, 4, who=unit + "-X"))
        return steps

    tracker = Tracker(topics=topics)
    pool = await _pool(pipeline, "tracker")
    outcomes = []
    try:
        for case, split in enumerate(("one batch", "one per batch", "refused")):
            incident, unit = uuid.uuid4(), f"DAMKAR-{case}"
            steps = life(incident, unit, refused=split == "refused")
            sent: list[Outgoing] = []
            processor = BatchProcessor(
                stage="tracker",
                pool=pool,
                topics=topics,
                handlers={
                    IncidentOpenedV1: tracker.on_incident_opened,
                    IncidentClassifiedV1: tracker.on_incident_classified,
                    UnitDispatchedV1: tracker.on_unit_dispatched,
                    UnitStatusChangedV1: tracker.on_unit_status,
                },
                new_state=TrackerBatch,
                publish=sent.extend,
            )
            batches = [[s] for s in steps] if split == "one per batch" else [steps]
            for batch in batches:
                await processor.process(_records(batch))
            row = await pool.fetchrow("SELECT * FROM incidents WHERE incident_id = $1", incident)
            assert row is not None
            stored = {k: v for k, v in row.items() if k not in ("incident_id", "updated_at")}
            changes = [
                o.event.payload.to_status.value
                for o in sent
                if isinstance(o.event.payload, IncidentStatusChangedV1)
            ]
            assert processor.dead_lettered == (1 if split == "refused" else 0), split
            outcomes.append((stored, changes))
    finally:
        await pool.close()
    stored, changes = outcomes[0]
    assert stored["status"] == "resolved" and stored["back_in_service_at"] == t0 + timedelta(
        minutes=7
    )
    assert stored["call_received_at"] == t0 and stored["on_scene_at"] == t0 + timedelta(minutes=5)
    assert changes == [
        "received",
        "classified",
        "dispatched",
        "acknowledged",
        "en_route",
        "on_scene",
        "resolved",
    ]
    assert all(outcome == outcomes[0] for outcome in outcomes[1:])


class _NoRoundTrips:
    """What a prepared batch's handlers get as their connection: any use fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a handler of a prepared batch used the connection ({name})")


async def test_a_prepared_tracker_batch_is_handled_without_a_round_trip_per_event(
    pipeline: Pipeline,
) -> None:
    """Once the tracker has prepared a batch (its incidents locked and read, and the orders
    of those incidents and of its units read), orders, reports, a cancellation and a unit
    back from an order an earlier batch closed are handled in memory, and the batch writes
    what a database-backed handling would have."""

    topics = pipeline.topics
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    at = [t0 + timedelta(minutes=n) for n in range(12)]
    a, b = uuid.uuid4(), uuid.uuid4()

    def report(unit: str, status: UnitStatus, n: int, incident: uuid.UUID | None) -> Any:
        return UnitStatusChangedV1(
            unit_id=unit,
            status=status,
            previous_status=UnitStatus.DISPATCHED,
            incident_id=incident,
            reported_at=at[n],
        )

    cancelled = DispatchCancelledV1(
        dispatch_id=uuid.uuid4(),
        incident_id=a,
        unit_id="DAMKAR-C",
        reason="ack timeout",
        unit_status_after=UnitStatus.OUT_OF_SERVICE,
        cancelled_at=at[4],
    )
    # An earlier batch: the engine sent to b reaches it and heads back (its order closes).
    earlier = [
        _opened(b, at=at[0]),
        _classified(b, received=at[0], at=at[1]),
        _dispatched(b, unit="DAMKAR-B", at=at[2]),
        report("DAMKAR-B", UnitStatus.ON_SCENE, 3, b),
        report("DAMKAR-B", UnitStatus.RETURNING, 4, b),
    ]
    batch = [
        _opened(a, at=at[0]),
        _classified(a, received=at[0], at=at[1]),
        _dispatched(a, unit="DAMKAR-A", at=at[2]),
        _dispatched(a, unit="DAMKAR-C", at=at[2]),
        report("DAMKAR-A", UnitStatus.ACKNOWLEDGED, 3, a),
        cancelled,
        report("DAMKAR-A", UnitStatus.ON_SCENE, 5, None),  # names no incident
        report("DAMKAR-A", UnitStatus.AVAILABLE, 6, None),
        report("DAMKAR-B", UnitStatus.AVAILABLE, 7, None),  # back from b
    ]
    tracker = Tracker(topics=topics)
    handlers = {
        IncidentOpenedV1: tracker.on_incident_opened,
        IncidentClassifiedV1: tracker.on_incident_classified,
        UnitDispatchedV1: tracker.on_unit_dispatched,
        DispatchCancelledV1: tracker.on_dispatch_cancelled,
        UnitStatusChangedV1: tracker.on_unit_status,
    }
    pool = await _pool(pipeline, "tracker")
    try:
        async with pool.acquire() as conn:
            for events in ([earlier[:3]], [earlier[3:]], [batch]):
                async with conn.transaction():
                    prepared = [new_event(p, id=uuid.uuid4(), source="/test") for p in events[0]]
                    held = TrackerBatch()
                    await held.prepare(conn, prepared)
                    changes = []
                    for event in prepared:
                        handler = handlers[type(event.payload)]
                        changes += await handler(_uow(_NoRoundTrips(), held), event)
                    await held.flush(conn)
        incidents = {
            r["incident_id"]: r
            for r in await pool.fetch("SELECT * FROM incidents WHERE incident_id = ANY($1)", [a, b])
        }
        orders = {
            (r["incident_id"], r["unit_id"]): (r["active"], r["reached_scene"])
            for r in await pool.fetch("SELECT * FROM assignments")
        }
        timer = await pool.fetchrow("SELECT met_at FROM sla_timers WHERE incident_id = $1", a)
    finally:
        await pool.close()
    statuses = [
        c.event.payload.to_status.value
        for c in changes
        if isinstance(c.event.payload, IncidentStatusChangedV1)
    ]
    assert statuses == [
        "received",
        "classified",
        "dispatched",
        "acknowledged",
        "on_scene",
        "resolved",
    ]
    assert incidents[a]["status"] == "resolved" and incidents[a]["resolved_at"] == at[6]
    assert incidents[a]["back_in_service_at"] == at[6]
    assert incidents[b]["status"] == "resolved" and incidents[b]["back_in_service_at"] == at[7]
    assert orders == {
        (a, "DAMKAR-A"): (False, True),
        (a, "DAMKAR-C"): (False, False),
        (b, "DAMKAR-B"): (False, True),
    }
    assert timer is not None and timer["met_at"] == at[2]


async def test_a_tracker_batch_holds_its_units_so_no_other_gives_them_orders_meanwhile(
    pipeline: Pipeline,
) -> None:
    """A batch finds the incidents its units are on before it locks and reads them; the
    units are locked first, so another instance's batch moving one of them to a new
    incident waits until the first commits instead of changing what it found."""

    topics = pipeline.topics
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    first, second = uuid.uuid4(), uuid.uuid4()
    mine, theirs = TrackerBatch(), Tracker(topics=topics)
    handlers = {
        UnitDispatchedV1: theirs.on_unit_dispatched,
        DispatchCancelledV1: theirs.on_dispatch_cancelled,
    }
    moved = [
        (
            DispatchCancelledV1(
                dispatch_id=uuid.uuid4(),
                incident_id=first,
                unit_id="DAMKAR-1",
                reason="incident cancelled",
                unit_status_after=UnitStatus.AVAILABLE,
                cancelled_at=t0 + timedelta(minutes=2),
            ),
            topics.dispatch_orders,
        ),
        (
            _dispatched(second, unit="DAMKAR-1", at=t0 + timedelta(minutes=2)),
            topics.dispatch_orders,
        ),
    ]
    pool = await _pool(pipeline, "tracker")
    probe = await asyncpg.connect(pipeline.settings.database_url())
    try:
        await pool.execute(
            "INSERT INTO assignments (incident_id, unit_id, dispatched_at) VALUES ($1, $2, $3)",
            first,
            "DAMKAR-1",
            t0,
        )
        other = BatchProcessor(
            stage="tracker", pool=pool, topics=topics, handlers=handlers, new_state=TrackerBatch
        )
        async with pool.acquire() as conn, conn.transaction():
            report = UnitStatusChangedV1(
                unit_id="DAMKAR-1",
                status=UnitStatus.EN_ROUTE,
                previous_status=UnitStatus.DISPATCHED,
                reported_at=t0 + timedelta(minutes=1),
            )
            await mine.prepare(conn, [new_event(report, id=uuid.uuid4(), source="/t")])
            waiting = asyncio.create_task(other.process(_records(moved)))

            async def other_waits() -> bool:
                return bool(await probe.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))

            await eventually(other_waits, timeout=10, what="the other batch waiting for the unit")
            order = await mine.assignments.active(conn, unit_id="DAMKAR-1", incident_id=None)
            assert order is not None and order.incident_id == first
            await mine.flush(conn)
        await waiting
        rows = await pool.fetch("SELECT incident_id, active FROM assignments ORDER BY active")
    finally:
        await probe.close()
        await pool.close()
    assert [(r["incident_id"], r["active"]) for r in rows] == [(first, False), (second, True)]


async def test_rows_collected_per_batch_go_in_one_statement_first_of_a_key_winning(
    pipeline: Pipeline,
) -> None:
    """`Rows` sends a batch's inserts as one statement over arrays; what lands is what one
    insert-if-absent per row, in order, would give (NULLs included)."""
    rows = Rows(
        "INSERT INTO rows_probe (k, v, at) SELECT * FROM unnest($1::text[], $2::int[], "
        "$3::timestamptz[]) ON CONFLICT (k) DO NOTHING"
    )
    calls = [("a", 1, T0), ("b", None, None), ("a", 2, T0), ("c", 3, T0 + timedelta(seconds=1))]
    pool = await _pool(pipeline)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE rows_probe (k text PRIMARY KEY, v int, at timestamptz)"
            )
            writes = Deferred()
            for call in calls:
                writes.add(rows, *call)
            await writes.flush(conn)
            landed = [
                tuple(r.values()) for r in await conn.fetch("SELECT * FROM rows_probe ORDER BY k")
            ]
            await writes.flush(conn)  # nothing left to send
    finally:
        await pool.close()
    assert landed == [("a", 1, T0), ("b", None, None), ("c", 3, T0 + timedelta(seconds=1))]


def _dispatcher(topics: Any) -> Any:
    """The dispatcher as configured by default (a P1 fire: two engines and an ambulance; a
    P1 medical call: an ALS ambulance, or any ambulance when none is free)."""
    from services.dispatcher.bootstrap import DispatcherSettings, build_dispatcher

    return build_dispatcher(topics, DispatcherSettings())


def _unit(unit_id: str, unit_type: UnitType, km_away: float, *capabilities: str) -> Any:
    """A unit based `km_away` north of the dispatcher's fallback point (Batang's centre)."""
    from schemas.common import Location
    from schemas.events import UnitRegisteredV1
    from services.dispatcher.bootstrap import BATANG_CENTRE

    lat, lon = BATANG_CENTRE

    return UnitRegisteredV1(
        unit_id=unit_id,
        unit_type=unit_type,
        agency="BPBD",
        base="Pos",
        location=Location(lat=lat + km_away / 111, lon=lon),
        capabilities=list(capabilities),
        registered_at=T0,
    )


async def test_a_batch_of_claims_and_reports_dispatches_as_it_would_one_by_one(
    pipeline: Pipeline,
) -> None:
    """The dispatcher locks a batch's unit types once and reads its reporting units' types
    in one go: two collapses, two fires, an engine clearing and a new one registering give the
    same orders (an ALS ambulance before a nearer plain one for a collapse, a plain one when
    no ALS one is free, the nearest of any kind for a fire, the waiting slots filled as units free up) in one batch, one
    event per batch, and a batch redone record by record."""
    from schemas.commands import CancelDispatchV1
    from schemas.events import IncidentEscalatedV1

    topics = pipeline.topics
    dispatcher = _dispatcher(topics)
    # The batch happens a few minutes after T0, so its reports are of plausible times.
    later = T0 + timedelta(minutes=3)
    pool = await _pool(pipeline, "dispatcher")
    outcomes = []
    try:
        for split in ("one batch", "one per batch", "refused"):
            await pool.execute("TRUNCATE units, dispatches, pending, passed_over")
            fleet = [
                _unit("FT-1", UnitType.FIRE_TRUCK, 1),
                _unit("FT-2", UnitType.FIRE_TRUCK, 2),
                _unit("AMB-PLAIN", UnitType.AMBULANCE, 1),
                _unit("AMB-ALS", UnitType.AMBULANCE, 5, "ALS"),
                _unit("AMB-FAR", UnitType.AMBULANCE, 9),
            ]
            for unit in fleet:
                await dispatcher.on_unit_registered(
                    _uow(pool, dispatcher.new_batch(), now=later),
                    new_event(unit, id=uuid.uuid4(), source="/test"),
                )
            collapse, first, fall, second = (uuid.uuid4() for _ in range(4))
            tag = {collapse: "collapse", first: "first", fall: "fall", second: "second"}
            steps: list[tuple[Any, str]] = [
                (
                    _classified(collapse, received=T0, at=T0, category=Category.MEDICAL),
                    topics.incident_events,
                ),
                (_classified(first, received=T0, at=T0), topics.incident_events),
                (
                    _classified(fall, received=T0, at=T0, category=Category.MEDICAL),
                    topics.incident_events,
                ),
                (_classified(second, received=T0, at=T0), topics.incident_events),
                (
                    UnitStatusReportedV1(
                        unit_id="FT-1",
                        status=UnitStatus.AVAILABLE,
                        incident_id=first,
                        reported_at=T0 + timedelta(minutes=1),
                    ),
                    topics.unit_status,
                ),
                (_unit("FT-3", UnitType.FIRE_TRUCK, 9), topics.unit_status),
                (  # a unit registered earlier in the batch is known to it
                    UnitStatusReportedV1(
                        unit_id="FT-3",
                        status=UnitStatus.EN_ROUTE,
                        incident_id=second,
                        reported_at=T0 + timedelta(minutes=2),
                    ),
                    topics.unit_status,
                ),
            ]
            if split == "refused":  # no such order: refused, the batch is redone record by record
                steps.insert(
                    2,
                    (
                        CancelDispatchV1(
                            incident_id=first,
                            unit_id="FT-9",
                            reason="test",
                            requested_by="supervisor",
                            requested_at=T0,
                        ),
                        topics.dispatch_commands,
                    ),
                )
            sent: list[Outgoing] = []
            processor = BatchProcessor(
                stage="dispatcher",
                pool=pool,
                topics=topics,
                handlers={
                    IncidentClassifiedV1: dispatcher.on_incident_classified,
                    UnitStatusReportedV1: dispatcher.on_unit_status,
                    type(fleet[0]): dispatcher.on_unit_registered,
                    CancelDispatchV1: dispatcher.on_cancel_dispatch,
                },
                new_state=dispatcher.new_batch,
                clock=lambda: later,
                publish=sent.extend,
            )
            batches = [[s] for s in steps] if split == "one per batch" else [steps]
            for batch in batches:
                await processor.process(_records(batch))
            orders = [
                (tag[p.incident_id], p.unit_id)
                for p in (o.event.payload for o in sent)
                if isinstance(p, UnitDispatchedV1)
            ]
            waited = sum(isinstance(o.event.payload, IncidentEscalatedV1) for o in sent)
            units = await pool.fetch("SELECT unit_id, status FROM units ORDER BY unit_id")
            assert processor.dead_lettered == (1 if split == "refused" else 0), split
            outcomes.append((orders, waited, [tuple(u.values()) for u in units]))
    finally:
        await pool.close()
    orders, waited, _ = outcomes[0]
    assert orders == [
        ("collapse", "AMB-ALS"),
        ("first", "FT-1"),
        ("first", "FT-2"),
        ("first", "AMB-PLAIN"),
        ("fall", "AMB-FAR"),  # no ALS ambulance is free: any ambulance beats none
        ("second", "FT-1"),
        ("second", "FT-3"),
    ]
    assert waited == 3  # the second fire's engines until they free up, and its ambulance
    assert ("FT-3", "en_route") in outcomes[0][2]
    assert all(outcome == outcomes[0] for outcome in outcomes[1:]), outcomes


async def _free(conn: asyncpg.Connection, *types: str) -> list[bool]:
    """Whether each unit type's claim lock is free (taken and let go at once if so)."""
    return [
        bool(r[0])
        for r in await conn.fetch(
            "SELECT pg_try_advisory_xact_lock(hashtext('siaga.dispatch.' || t))"
            " FROM unnest($1::text[]) AS t",
            list(types),
        )
    ]


async def test_a_dispatcher_batch_holds_the_types_its_commands_registrations_and_cancelled_incidents_free(
    pipeline: Pipeline,
) -> None:
    """Besides its run cards and reports, a batch locks up front the types of the units its
    commands and registrations name and of the open orders of the incidents it cancels,
    so that it takes no type lock later, when the ack-timeout job may hold one."""
    from schemas.commands import CancelDispatchV1

    dispatcher = _dispatcher(pipeline.topics)
    robbery = uuid.uuid4()

    def event(payload: Any) -> Event:
        return new_event(payload, id=uuid.uuid4(), source="/t")

    pool = await _pool(pipeline, "dispatcher")
    probe = await asyncpg.connect(pipeline.settings.database_url())
    try:
        for unit in (_unit("POL-1", UnitType.POLICE, 1), _unit("DAMKAR-9", UnitType.FIRE_TRUCK, 1)):
            await dispatcher.on_unit_registered(_uow(pool, dispatcher.new_batch()), event(unit))
        await dispatcher.on_incident_classified(
            _uow(pool, dispatcher.new_batch()),
            event(_classified(robbery, received=T0, at=T0, category=Category.CRIME)),
        )
        batch = [
            IncidentStatusChangedV1(
                incident_id=robbery,
                from_status=IncidentStatus.DISPATCHED,
                to_status=IncidentStatus.CANCELLED,
                changed_at=T0,
                reason="false alarm",
            ),
            CancelDispatchV1(
                incident_id=uuid.uuid4(),
                unit_id="DAMKAR-9",
                reason="wrong address",
                requested_by="supervisor",
                requested_at=T0,
            ),
            _unit("AMB-7", UnitType.AMBULANCE, 2),
        ]
        async with pool.acquire() as conn, conn.transaction():
            await dispatcher.new_batch().prepare(conn, [event(p) for p in batch])
            held = await _free(probe, "police", "fire_truck", "ambulance", "rescue")
    finally:
        await probe.close()
        await pool.close()
    assert held == [False, False, False, True]


async def test_a_batchs_hold_on_the_fleet_is_its_own_transactions(pipeline: Pipeline) -> None:
    """The claim locks a batch took are held until its transaction ends, are taken again by
    any other connection (a timer job's) rather than assumed, and are forgotten with a
    rolled-back transaction; the batch processor gives each transaction a state of its
    own, so none outlives the transaction it was made for."""
    from services.dispatcher.repository import Fleet

    dispatcher = _dispatcher(pipeline.topics)
    fleet = Fleet()
    pool = await _pool(pipeline, "dispatcher")
    probe = await asyncpg.connect(pipeline.settings.database_url())
    try:
        await dispatcher.on_unit_registered(
            _uow(pool, dispatcher.new_batch()),
            new_event(_unit("AMB-9", UnitType.AMBULANCE, 1), id=uuid.uuid4(), source="/t"),
        )
        async with pool.acquire() as batch, pool.acquire() as timer:
            tx = batch.transaction()
            await tx.start()
            await fleet.hold(batch, unit_types=["police"], unit_ids=["AMB-9", "NOBODY"])
            assert await _free(probe, "police", "ambulance", "fire_truck") == [False, False, True]
            assert await fleet.unit_type_of(batch, unit_id="AMB-9") == "ambulance"
            assert await fleet.unit_type_of(batch, unit_id="NOBODY") is None
            fleet.registered(batch, unit_id="AMB-9", unit_type="fire_truck")
            assert await fleet.unit_type_of(batch, unit_id="AMB-9") == "fire_truck"
            async with timer.transaction():
                waiting = asyncio.create_task(fleet.lock(timer, unit_type="police"))
                done, _ = await asyncio.wait({waiting}, timeout=0.3)
                assert not done  # the timer waits for the batch's lock, it does not assume it
                await tx.rollback()
                fleet.discard()
                await waiting
            async with batch.transaction():
                await fleet.lock(batch, unit_type="ambulance")  # taken anew, not remembered
                assert await _free(probe, "ambulance") == [False]

        made: list[Any] = []

        class Watch:
            """A batch state noting how often it was prepared."""

            def __init__(self) -> None:
                self.prepared = 0
                made.append(self)

            async def prepare(self, conn: asyncpg.Connection, events: Any) -> None:
                self.prepared += 1

            async def flush(self, conn: asyncpg.Connection) -> None:
                pass

        given: list[Any] = []

        async def refuse(uow: UnitOfWork[Any], event: Event) -> list[Outgoing]:
            given.append(uow.state)
            raise ValueError("refused")

        processor = BatchProcessor(
            stage="dispatcher",
            pool=pool,
            topics=pipeline.topics,
            handlers={UnitStatusReportedV1: refuse},
            new_state=Watch,
        )
        report = UnitStatusReportedV1(unit_id="AMB-9", status=UnitStatus.EN_ROUTE, reported_at=T0)
        await processor.process(_records([(report, pipeline.topics.unit_status)]))
        assert processor.dead_lettered == 1
        # the batch's transaction and the record's redo each had a state of their own,
        # prepared once, and it is the one its handler was given
        assert len(made) == 2 and made[0] is not made[1]
        assert [w.prepared for w in made] == [1, 1]
        assert given == made
    finally:
        await probe.close()
        await pool.close()


async def test_the_ack_timeout_job_locks_unit_types_before_orders_as_a_batch_does(
    pipeline: Pipeline,
) -> None:
    """A batch holds its unit types and may then lock orders of that type (ending a
    cancelled incident's orders); the job that withdraws unacknowledged orders meanwhile
    waits for the type before it locks any order, so the two do not deadlock, and once the
    batch commits the job withdraws the order."""
    from services.dispatcher import repository

    dispatcher = _dispatcher(pipeline.topics)
    incident = uuid.uuid4()
    pool = await _pool(pipeline, "dispatcher")
    probe = await asyncpg.connect(pipeline.settings.database_url())
    try:
        await dispatcher.on_unit_registered(
            _uow(pool, dispatcher.new_batch()),
            new_event(_unit("DAMKAR-9", UnitType.FIRE_TRUCK, 1), id=uuid.uuid4(), source="/t"),
        )
        classified = _classified(incident, received=T0, at=T0)
        await dispatcher.on_incident_classified(
            _uow(pool, dispatcher.new_batch()), new_event(classified, id=uuid.uuid4(), source="/t")
        )
        await pool.execute("UPDATE dispatches SET ack_due_at = now() - interval '1 minute'")

        async def expire() -> Sequence[Outgoing]:
            async with pool.acquire() as conn, conn.transaction():
                return await dispatcher.expire_unacknowledged(_uow(conn, dispatcher.new_batch()))

        async def job_waits() -> bool:
            return bool(await probe.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))

        held = dispatcher.new_batch()
        async with pool.acquire() as batch, batch.transaction():
            await held.fleet.hold(batch, unit_types=["fire_truck"], unit_ids=[])
            job = asyncio.create_task(expire())
            await eventually(job_waits, timeout=10, what="the job waiting for the type")
            orders = await repository.active_orders(batch, incident_id=incident)
            assert [o.unit_id for o in orders] == ["DAMKAR-9"]
        out = await job
    finally:
        await probe.close()
        await pool.close()
    withdrawn = [o.event.payload for o in out if isinstance(o.event.payload, DispatchCancelledV1)]
    assert [(w.unit_id, w.unit_status_after) for w in withdrawn] == [
        ("DAMKAR-9", UnitStatus.OUT_OF_SERVICE)
    ]


async def test_a_freed_unit_serves_one_waiting_slot_without_looking_up_the_next(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With robberies waiting for police (two officers each), each officer who joins serves
    the oldest waiting slot, and the queue is looked up once per officer: once that officer
    is taken, the dispatcher does not lock the next waiting slot only to find no one free
    for it."""
    from services.dispatcher import repository

    dispatcher = _dispatcher(pipeline.topics)
    robberies = [uuid.uuid4() for _ in range(3)]
    looked_up: list[str] = []
    next_pending = repository.next_pending

    async def counted(conn: asyncpg.Connection, *, unit_type: str, skip: int = 0) -> Any:
        looked_up.append(unit_type)
        return await next_pending(conn, unit_type=unit_type, skip=skip)

    def event(payload: Any) -> Event:
        return new_event(payload, id=uuid.uuid4(), source="/t")

    pool = await _pool(pipeline, "dispatcher")
    try:
        for n, robbery in enumerate(robberies):
            at = T0 + timedelta(seconds=n)
            await dispatcher.on_incident_classified(
                _uow(pool, dispatcher.new_batch()),
                event(_classified(robbery, received=at, at=at, category=Category.CRIME)),
            )
        waiting = [
            r["incident_id"]
            for r in await pool.fetch(
                "SELECT incident_id FROM pending WHERE unit_type = 'police' "
                "ORDER BY priority, queued_at, incident_id, slot"
            )
        ]
        monkeypatch.setattr(repository, "next_pending", counted)
        served = []
        for n in range(len(waiting) + 1):
            out = await dispatcher.on_unit_registered(
                _uow(pool, dispatcher.new_batch()), event(_unit(f"POL-NEW-{n}", UnitType.POLICE, 1))
            )
            served.append([o.event.payload.incident_id for o in out])
    finally:
        await pool.close()
    assert len(waiting) >= 4  # the test fleet's two officers cannot cover three robberies
    assert served == [[incident] for incident in waiting] + [[]]
    assert looked_up == ["police"] * len(served)
