"""The desk client's hand-made CloudEvent is the event models' own, byte for byte, and the
stack's gateway is used only when `stack.json` and the environment agree on it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.common import Location
from schemas.envelope import decode_event, encode_event
from schemas.events import IntakeReceivedV1
from schemas.vocabulary import Channel
from services.clients.desk import Desk, desk_of_stack, intake_document
from services.clients.operator import intake_event, new_intake

WHEN = [
    datetime(2026, 12, 5, 15, 51, 54, 299739, tzinfo=UTC),
    datetime(2026, 12, 5, 15, 51, 54, tzinfo=UTC),  # no microseconds: none written
    datetime(2026, 12, 5, 22, 51, 54, 1, tzinfo=timezone(timedelta(hours=7))),
]
CASES = [
    {"channel": "call112", "text": "kebakaran rumah, ada orang di dalam"},
    {"channel": "sms", "text": "", "phone": "+6281234567890"},
    {
        "channel": "whatsapp",
        "text": 'Ada "kecelakaan" 🚑 di Jl. Ahmad Yani\\ ada yg gk gerak\n\tcepat',
        "phone": "+6281234567890",
        "name": "Bu Sri Rahayu",
        "place_hint": "Kandeman, dekat SPBU",
        "location": (-6.912345, 109.7298, 12.5),
        "operator_id": "op-07",
    },
    {"channel": "psc119", "text": "sesak napas", "location": (-7.0, 110.0, None)},
]


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize("case", CASES)
def test_the_document_is_the_models_event_to_the_byte(case: dict, when: datetime) -> None:
    intake_id = uuid.uuid4()
    document = intake_document(intake_id=intake_id, received_at=when, **case)
    location = case.get("location")
    intake = new_intake(
        channel=Channel(case["channel"]),
        text=case["text"],
        phone=case.get("phone"),
        name=case.get("name"),
        place_hint=case.get("place_hint"),
        location=None
        if location is None
        else Location(lat=location[0], lon=location[1], accuracy_m=location[2]),
        operator_id=case.get("operator_id"),
        intake_id=intake_id,
    ).model_copy(update={"received_at": when.astimezone(UTC)})
    assert document == encode_event(intake_event(intake))
    # And what the spool's drainer or the gateway reads back is the same intake.
    assert decode_event(document, expect=IntakeReceivedV1).payload == intake


STACK = {"gateway_url": "http://127.0.0.1:8080", "desk_key": "sgk_x", "kafka_bootstrap": "b:1"}


def test_the_stacks_gateway_is_the_desk() -> None:
    assert desk_of_stack(STACK, bootstrap=None) == Desk("http://127.0.0.1:8080", "sgk_x")
    assert desk_of_stack(STACK, bootstrap="b:1") == Desk("http://127.0.0.1:8080", "sgk_x")


@pytest.mark.parametrize(
    ("stack", "bootstrap"),
    [
        ({}, None),  # no stack runs here
        ({**STACK, "desk_key": None}, None),  # a stack from before the desk key
        ({**STACK, "gateway_url": ""}, None),
        (STACK, "elsewhere:9092"),  # the command is pointed at another broker
    ],
)
def test_no_desk_without_a_stack_that_names_one(stack: dict, bootstrap: str | None) -> None:
    assert desk_of_stack(stack, bootstrap=bootstrap) is None
