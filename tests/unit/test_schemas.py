"""Contracts: the envelope, decoding failures, committed JSON Schemas, versions and ids."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from schemas import registry
from schemas.envelope import MAX_EVENT_BYTES, DecodeError, decode_event, encode_event, new_event
from schemas.events import IntakeReceivedV1
from schemas.generate import JSON_DIR, render_all
from schemas.ids import derive_id
from schemas.topics import Topics
from schemas.vocabulary import Channel


def _intake(**overrides: object) -> IntakeReceivedV1:
    data: dict[str, object] = {
        "intake_id": uuid.uuid4(),
        "channel": "call112",
        "received_at": datetime.now(UTC),
        "caller": {"phone": "+6281234567890"},
        "text": "kebakaran di Batang",
    }
    data.update(overrides)
    return IntakeReceivedV1.model_validate(data)


def test_committed_json_schemas_are_current() -> None:
    rendered = render_all()
    on_disk = {p.name: p.read_text() for p in JSON_DIR.glob("*.json")}
    stale = sorted(n for n in rendered if on_disk.get(n) != rendered[n])
    extra = sorted(set(on_disk) - set(rendered))
    assert not stale and not extra, f"run `make schemas`: stale {stale}, extra {extra}"


def test_every_event_type_has_a_schema_file_and_a_topic() -> None:
    topics = Topics(prefix="batang")
    for event_type in registry.EVENT_TYPES:
        assert (JSON_DIR / event_type.schema_file).exists()
        assert event_type.topic(topics).startswith("batang.")
        assert event_type.type.endswith(f".v{event_type.version}")


def test_envelope_round_trip_is_cloudevents_structured_mode() -> None:
    intake = _intake()
    event = new_event(
        intake,
        id=derive_id(intake.intake_id, "received"),
        source="/test",
        correlationid=str(intake.intake_id),
    )
    raw = encode_event(event)
    body = json.loads(raw)
    assert body["specversion"] == "1.0"
    assert body["type"] == "siaga.intake.received.v1"
    assert body["subject"] == str(intake.intake_id)
    assert body["datacontenttype"] == "application/json"
    assert body["dataschema"].endswith("siaga.intake.received.v1.schema.json")
    assert body["correlationid"] == str(intake.intake_id)
    assert "causationid" not in body
    assert body["data"]["place_hint"] is None  # payload nulls are kept
    decoded = decode_event(raw)
    assert decoded.payload == intake
    assert decoded.envelope.id == event.envelope.id


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (None, "empty"),
        (b"\xff\xfe not json", "not_json"),
        (b"[1, 2, 3]", "bad_envelope"),
        (b'{"specversion": "1.0"}', "bad_envelope"),
        (b"[" * 150_000 + b"]" * 150_000, "oversize"),
        (b"[" * 5000 + b"]" * 5000, "not_json"),
    ],
)
def test_undecodable_messages_say_why(raw: bytes | None, kind: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_event(raw)
    assert caught.value.kind == kind


def test_unknown_type_and_version_and_bad_payload_are_refused() -> None:
    event = new_event(_intake(), id="x", source="/test")
    body = json.loads(encode_event(event))
    for type_ in ("siaga.intake.received.v9", "siaga.something.else.v1"):
        with pytest.raises(DecodeError) as caught:
            decode_event(json.dumps({**body, "type": type_}).encode())
        assert caught.value.kind == "unknown_type"
    body["data"]["caller"]["phone"] = "0812-not-e164"
    with pytest.raises(DecodeError) as caught:
        decode_event(json.dumps(body).encode())
    assert caught.value.kind == "bad_payload" and "phone" in caught.value.reason


def test_oversize_limit_is_about_bytes() -> None:
    event = new_event(_intake(text="x" * 3000), id="x", source="/test")
    assert len(encode_event(event)) < MAX_EVENT_BYTES


def test_an_old_version_is_upcast_before_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A v0 intake had a flat `phone`; the upcaster moves it into `caller`."""

    def upcast_v0_v1(data: dict) -> dict:
        data = dict(data)
        data["caller"] = {"phone": data.pop("phone"), "name": None}
        return data

    monkeypatch.setitem(
        registry.UPCASTERS, "siaga.intake.received.v0", ("siaga.intake.received.v1", upcast_v0_v1)
    )
    intake = _intake()
    body = json.loads(encode_event(new_event(intake, id="x", source="/test")))
    body["type"] = "siaga.intake.received.v0"
    body["data"]["phone"] = body["data"].pop("caller")["phone"]
    decoded = decode_event(json.dumps(body).encode())
    assert decoded.envelope.type == "siaga.intake.received.v1"
    assert decoded.payload == intake


def test_derived_ids_repeat_for_the_same_cause_and_role_only() -> None:
    cause = uuid.uuid4()
    assert derive_id(cause, "incident") == derive_id(str(cause), "incident")
    assert derive_id(cause, "incident") != derive_id(cause, "enriched")
    assert derive_id(cause, "incident") != derive_id(uuid.uuid4(), "incident")


def test_channels_of_design_are_all_known() -> None:
    assert {c.value for c in Channel} == {
        "call112",
        "psc119",
        "whatsapp",
        "instagram",
        "youtube",
        "web",
        "sms",
    }


def test_an_escaped_nul_is_refused_but_an_escaped_backslash_is_not() -> None:
    event = new_event(_intake(text="ok"), id="x", source="/test")
    body = encode_event(event)
    with pytest.raises(DecodeError) as caught:
        decode_event(body.replace(b'"text":"ok"', b'"text":"o\\u0000k"'))
    assert "NUL" in caught.value.reason
    assert decode_event(body.replace(b'"text":"ok"', b'"text":"o\\\\u0000k"')).payload
