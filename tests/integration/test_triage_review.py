"""A call-taker's review of triage, on the real broker and PostgreSQL: a P1 on uncertain
evidence goes out at once and waits in the review queue with its key questions; the answer
(lower, confirm, or a category for a report held for review) is a command in the log, the
incident changes everywhere, and a review of an unknown incident is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.commands import ReviewTriageV1
from schemas.events import (
    DeadLetterV1,
    IncidentClassifiedV1,
    TriageReviewedV1,
    UnitDispatchedV1,
)
from schemas.vocabulary import Category, Channel, Priority
from services.clients.operator import new_intake, submit
from tests.conftest import Pipeline, eventually

pytestmark = pytest.mark.integration


async def _queue(pipeline: Pipeline) -> list[dict[str, Any]]:
    rows = await pipeline.fetch(
        "SELECT incident_id, needs_review, needs_confirmation, questions::text AS questions"
        " FROM readmodel.review_queue"
    )
    return [dict(r) for r in rows]


async def _of(pipeline: Pipeline, topic: str, kind: type, incident_id: Any) -> list[Any]:
    return [
        e.payload
        for e in await pipeline.events(topic)
        if isinstance(e.payload, kind) and getattr(e.payload, "incident_id", None) == incident_id
    ]


async def test_a_p1_to_confirm_is_sent_at_once_queued_with_questions_and_lowered_by_a_call_taker(
    pipeline: Pipeline,
) -> None:
    intake = new_intake(
        channel=Channel.PSC119,
        text="pak tolong bapak saya sesak napas di desa Sempu Limpung",
        phone="+6281355550001",
    )
    await submit(pipeline.settings, intake)
    incident = await pipeline.incident_for_intake(intake.intake_id, with_units=1)
    incident_id = incident.incident_id
    assert (incident.category, incident.priority) == ("medical", "P1")
    assert incident.needs_confirmation and not incident.needs_review
    assert any("bernapas" in q for q in incident.questions)
    assert incident.units[0].unit_type == "ambulance"  # no wait for the review

    async def queued() -> list[dict[str, Any]] | None:
        rows = [r for r in await _queue(pipeline) if r["incident_id"] == incident_id]
        return rows or None

    row = (await eventually(queued, what="the P1 in the review queue"))[0]
    assert row["needs_confirmation"] and "bernapas" in row["questions"]

    # The call-taker asks; the patient speaks whole sentences: lowered to P2.
    command = ReviewTriageV1(
        incident_id=incident_id,
        priority=Priority.P2,
        note="bisa bicara satu kalimat, bibir tidak biru",
        requested_by="ct-7",
        requested_at=datetime.now(UTC),
    )
    sent = await pipeline.command(command)

    async def lowered() -> dict[str, Any] | None:
        rows = await pipeline.fetch(
            "SELECT priority, review_decision, reviewed_by, needs_confirmation, sla_seconds"
            " FROM readmodel.incidents WHERE incident_id = $1 AND reviewed_at IS NOT NULL",
            incident_id,
        )
        return dict(rows[0]) if rows else None

    after = await eventually(lowered, what="the review in the read model")
    assert after == {
        "priority": "P2",
        "review_decision": "lowered",
        "reviewed_by": "ct-7",
        "needs_confirmation": False,
        "sla_seconds": 300,
    }
    assert await queued() is None
    # In the log: the command, and triage's event caused by it.
    topics = pipeline.topics
    commands = await _of(pipeline, topics.dispatch_commands, ReviewTriageV1, incident_id)
    assert commands == [command]
    reviewed = await _of(pipeline, topics.incident_events, TriageReviewedV1, incident_id)
    assert len(reviewed) == 1
    assert (reviewed[0].previous_priority, reviewed[0].priority) == (Priority.P1, Priority.P2)
    events = [e for e in await pipeline.events(topics.incident_events) if e.payload == reviewed[0]]
    assert events[0].envelope.causationid == sent[0].id
    timeline = await pipeline.fetch(
        "SELECT summary FROM readmodel.timeline WHERE incident_id = $1", incident_id
    )
    assert any("lowered by ct-7" in r["summary"] for r in timeline)
    # The ambulance already sent stays on its way; nothing more is sent.
    orders = await _of(pipeline, topics.dispatch_orders, UnitDispatchedV1, incident_id)
    assert len(orders) == 1


async def test_a_report_held_for_review_is_dispatched_once_a_call_taker_names_it(
    pipeline: Pipeline,
) -> None:
    intake = new_intake(
        channel=Channel.CALL112, text="pak ada itu di sana, Limpung", phone="+6281355550002"
    )
    await submit(pipeline.settings, intake)
    incident = await pipeline.incident_for_intake(intake.intake_id, with_units=0)
    assert incident.needs_review
    await pipeline.command(
        ReviewTriageV1(
            incident_id=incident.incident_id,
            category=Category.MEDICAL,
            priority=Priority.P1,
            note="ayahnya pingsan di teras",
            requested_by="ct-2",
            requested_at=datetime.now(UTC),
        )
    )
    served = await pipeline.incident_for_intake(intake.intake_id, with_units=1)
    assert (served.category, served.priority) == ("medical", "P1")
    assert served.units[0].unit_type == "ambulance"
    decided = await pipeline.fetchval(
        "SELECT review_decision FROM readmodel.incidents WHERE incident_id = $1",
        incident.incident_id,
    )
    assert decided == "recategorised"


async def test_a_review_of_an_incident_triage_never_opened_is_refused_and_changes_nothing(
    pipeline: Pipeline,
) -> None:
    import uuid

    stranger = uuid.uuid4()
    await pipeline.command(
        ReviewTriageV1(
            incident_id=stranger,
            priority=Priority.P4,
            requested_by="ct-9",
            requested_at=datetime.now(UTC),
        )
    )

    async def refused() -> list[DeadLetterV1] | None:
        dead = [
            e.payload
            for e in await pipeline.events(pipeline.topics.deadletter)
            if isinstance(e.payload, DeadLetterV1) and e.payload.stage == "triage"
        ]
        return dead or None

    dead = await eventually(refused, what="the refused review dead-lettered")
    assert dead[0].reason.startswith("unknown_incident")
    assert not await pipeline.fetch(
        "SELECT 1 FROM readmodel.incidents WHERE incident_id = $1", stranger
    )
    classified = [
        e
        for e in await pipeline.events(pipeline.topics.incident_events)
        if isinstance(e.payload, IncidentClassifiedV1 | TriageReviewedV1)
    ]
    assert classified == []
