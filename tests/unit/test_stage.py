"""Each stage declared once: its topics, dead-letter ownership and handler map follow."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from schemas.envelope import Event
from schemas.events import IncidentOpenedV1, IncidentResolvedV1, IntakeReceivedV1
from schemas.topics import Topics
from services.common.outbox import Outgoing
from services.common.stage import Stage, StageDeclarationError, payload_types
from services.dispatcher.entrypoint import Dispatcher
from services.enricher.entrypoint import Enricher
from services.projector.entrypoint import Projector
from services.stages import STAGES, declaration, group_id, subscriptions
from services.tracker.entrypoint import Tracker
from services.triage.entrypoint import Triage

T = Topics(prefix="x")
# The pipeline's topology, as a reader of DESIGN.md expects it: what each stage reads, and
# the topics whose undecodable messages it (alone) dead-letters.
TOPOLOGY = {
    "enricher": (["x.intake.received", "x.incident.events"], ["x.intake.received"]),
    "triage": (
        ["x.intake.enriched", "x.incident.events", "x.dispatch.commands"],
        ["x.intake.enriched"],
    ),
    "dispatcher": (["x.incident.events", "x.dispatch.commands", "x.unit.status"], []),
    "tracker": (
        ["x.incident.events", "x.dispatch.orders", "x.dispatch.commands", "x.unit.status"],
        ["x.incident.events", "x.dispatch.orders", "x.unit.status", "x.dispatch.commands"],
    ),
    # The projector shows every event; no command changes the read model by itself. It
    # alone reads the public alerts, so it dead-letters what on their topic is bad.
    "projector": (
        [
            "x.intake.received",
            "x.intake.enriched",
            "x.incident.events",
            "x.dispatch.orders",
            "x.unit.status",
            "x.alerts",
            "x.deadletter",
        ],
        ["x.alerts"],
    ),
    # The gateway follows which incident its intakes joined and the agencies' answers
    # (the replies to citizens on their channels).
    "gateway": (["x.incident.events", "x.dispatch.orders"], []),
}
HANDLER_CLASSES = {
    "enricher": Enricher,
    "triage": Triage,
    "dispatcher": Dispatcher,
    "tracker": Tracker,
}


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_reads_and_owns_what_its_declaration_says(stage: str) -> None:
    reads, owns = TOPOLOGY[stage]
    assert subscriptions(stage, T) == reads
    assert declaration(stage).owned_topics(T) == owns
    assert group_id(stage, T) == f"x.{stage}"


def test_every_topic_but_the_dead_letters_has_exactly_one_owner() -> None:
    owners = [t for s in STAGES for t in declaration(s).owned_topics(T)]
    assert sorted(owners) == sorted(set(T.all()) - {T.deadletter})


@pytest.mark.parametrize("stage", sorted(HANDLER_CLASSES))
def test_a_stage_has_one_handler_for_each_event_it_declares(stage: str) -> None:
    handlers = [
        getattr(HANDLER_CLASSES[stage], name)
        for name in dir(HANDLER_CLASSES[stage])
        if name.startswith("on_")
    ]
    mapping = declaration(stage).handlers(*handlers)
    assert set(mapping) == set(declaration(stage).consumes)


def test_the_projector_has_a_handler_for_each_event_it_declares() -> None:
    declared = declaration("projector")
    assert set(declared.handlers(*Projector().handlers())) == set(declared.consumes)


async def _opened(conn: object, event: Event[IncidentOpenedV1]) -> Sequence[Outgoing]:
    return ()


async def _ended(
    conn: object, event: Event[IncidentOpenedV1 | IncidentResolvedV1]
) -> Sequence[Outgoing]:
    return ()


async def _untyped(conn: object, event: Event) -> Sequence[Outgoing]:  # type: ignore[type-arg]
    return ()


def test_a_handler_is_registered_under_the_payloads_its_signature_names() -> None:
    assert payload_types(_opened) == (IncidentOpenedV1,)
    assert payload_types(_ended) == (IncidentOpenedV1, IncidentResolvedV1)
    stage = Stage("s", consumes=(IncidentOpenedV1, IncidentResolvedV1))
    assert stage.handlers(_ended) == {IncidentOpenedV1: _ended, IncidentResolvedV1: _ended}


@pytest.mark.parametrize(
    ("consumes", "handlers", "says"),
    [
        ((IncidentOpenedV1,), (_ended,), "does not declare it consumes"),
        ((IncidentOpenedV1, IntakeReceivedV1), (_opened,), "no handler for IntakeReceivedV1"),
        ((IncidentOpenedV1, IncidentResolvedV1), (_opened, _ended), "two handlers"),
        ((IncidentOpenedV1,), (_untyped,), "must be annotated Event[SomePayload]"),
    ],
)
def test_a_stage_whose_handlers_do_not_match_its_declaration_is_not_built(
    consumes: tuple[type, ...], handlers: tuple[object, ...], says: str
) -> None:
    with pytest.raises(StageDeclarationError, match=says.replace("[", r"\[").replace("]", r"\]")):
        Stage("s", consumes=consumes).handlers(*handlers)  # type: ignore[arg-type]
