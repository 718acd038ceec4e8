"""Contracts: the envelope, decoding failures, committed JSON Schemas, versions and ids."""

from __future__ import annotations

import enum
import json
import types
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError

from schemas import envelope, registry
from schemas.common import plausible_time
from schemas.envelope import MAX_EVENT_BYTES, DecodeError, decode_event, encode_event, new_event
from schemas.events import IntakeReceivedV1
from schemas.generate import JSON_DIR, render_all
from schemas.ids import SIAGA_NAMESPACE, derive_id
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


def test_derived_ids_are_the_uuid5_of_cause_and_role() -> None:
    # Ids already stored were made by uuid.uuid5: a faster derivation must give the same.
    for cause in [uuid.uuid4() for _ in range(50)] + ["a-command-id", "é"]:
        assert derive_id(cause, "opened") == uuid.uuid5(SIAGA_NAMESPACE, f"{cause}/opened")


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


def _sample(tp: Any) -> Any:
    """A value of type `tp`: every optional field filled unless its constraints refuse it."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _sample(args[0])
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in args if a is not type(None)))
    if origin is typing.Literal:
        return args[0]
    if origin is tuple and Ellipsis not in args:
        return tuple(_sample(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return origin([_sample(args[0])])
    if origin is dict:
        return {}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        extra = tp.model_config.get("json_schema_extra")
        if isinstance(extra, dict) and extra.get("examples"):
            # a model whose fields constrain each other (a CAP alert) gives its own example
            return tp.model_validate(extra["examples"][0])
        data = {name: _sample(field.annotation) for name, field in tp.model_fields.items()}
        try:
            return tp.model_validate(data)
        except ValidationError as exc:  # a constrained optional field (a phone): left empty
            for error in exc.errors():
                data[str(error["loc"][0])] = None
            return tp.model_validate(data)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    now = datetime.now(UTC)
    simple = {uuid.UUID: uuid.uuid4(), datetime: now, AwareDatetime: now, str: "x", int: 1}
    return simple.get(tp, 0.5 if tp is float else True)


@pytest.mark.parametrize("event_type", registry.EVENT_TYPES, ids=lambda t: t.type)
def test_every_current_event_decodes_in_one_pass_as_in_two(
    event_type: registry.EventType,
) -> None:
    """Envelope and payload validated in one pass give what the envelope first and the
    payload after give, and a payload that breaks its schema is refused alike."""
    payload = _sample(event_type.model)
    raw = encode_event(
        new_event(payload, id=uuid.uuid4(), source="/test", correlationid="c", causationid="d")
    )
    one, two = decode_event(raw), envelope._decode_in_two_passes(raw)
    assert type(one.payload) is event_type.model and one.payload == two.payload == payload
    assert one.envelope.model_dump(exclude={"data"}) == two.envelope.model_dump(exclude={"data"})
    assert encode_event(one) == raw
    assert json.loads(raw)["data"] == payload.model_dump(mode="json")

    body = json.loads(raw)
    body["data"][next(iter(body["data"]))] = {"not": "this"}
    bad = json.dumps(body).encode()
    with pytest.raises(DecodeError) as refused:
        decode_event(bad)
    with pytest.raises(DecodeError) as reference:
        envelope._decode_in_two_passes(bad)
    assert (refused.value.kind, refused.value.reason) == (
        reference.value.kind,
        reference.value.reason,
    )
    assert refused.value.kind == "bad_payload"


def _time_paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where a JSON payload holds a time (an ISO 8601 string with its offset)."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _time_paths(v, (*path, k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _time_paths(v, (*path, i))]
    if isinstance(data, str) and len(data) >= 19 and data[10:11] == "T":
        try:
            datetime.fromisoformat(data)
        except ValueError:
            return []
        return [path]
    return []


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part] if isinstance(data, dict | list) else getattr(data, part)
    return data


@pytest.mark.parametrize(
    ("local", "hours", "plausible"),
    [
        ("2000-01-01T00:00", 0, True),
        ("1999-12-31T23:59", 0, False),
        ("2000-01-01T06:00", 7, False),  # 1999-12-31T23:00 UTC
        ("1999-12-31T20:00", -5, True),  # 2000-01-01T01:00 UTC
        ("2001-01-01T00:00", 23, True),
        ("2099-12-31T23:59", 0, True),
        ("2100-01-01T00:00", 0, False),
        ("2099-12-31T20:00", -5, False),  # 2100-01-01T01:00 UTC
        ("2100-01-01T03:00", 7, True),  # 2099-12-31T20:00 UTC
        ("2098-12-31T23:00", -23, True),
        ("2026-12-06T08:00", None, True),  # naive: read as UTC
        ("2100-01-01T00:00", None, False),
    ],
)
def test_a_time_is_plausible_by_its_utc_instant_near_the_century_ends(
    local: str, hours: int | None, plausible: bool
) -> None:
    """The range is of UTC instants: a local time near either end counts by its offset."""
    tz = None if hours is None else timezone(timedelta(hours=hours))
    at = datetime.fromisoformat(local).replace(tzinfo=tz)
    if plausible:
        assert plausible_time(at) == at.replace(tzinfo=tz or UTC)
    else:
        with pytest.raises(ValueError, match="a time between 2000 and 2099"):
            plausible_time(at)


@pytest.mark.parametrize("event_type", registry.EVENT_TYPES, ids=lambda t: t.type)
def test_no_event_holds_a_naive_time(event_type: registry.EventType) -> None:
    """Each time of a payload, sent without its offset, is read as UTC, or refused where a
    sender must give its offset (AwareInstant); never kept naive."""
    sample = _sample(event_type.model).model_dump(mode="json")
    paths = _time_paths(sample)
    assert paths or not any("_at" in name for name in event_type.model.model_fields)
    for path in paths:
        data = json.loads(json.dumps(sample))
        written = datetime.fromisoformat(_at(data, path)).astimezone(UTC)
        target = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = written.replace(tzinfo=None).isoformat()
        try:
            read = event_type.model.model_validate(data)
        except ValidationError as exc:
            assert [e["loc"] for e in exc.errors()] == [path], exc
            continue
        value = _at(read, path)
        assert value.tzinfo is not None and value == written, (path, value)


@pytest.mark.parametrize("event_type", registry.EVENT_TYPES, ids=lambda t: t.type)
def test_a_reader_that_expects_intakes_reads_every_event_as_any_reader_does(
    event_type: registry.EventType,
) -> None:
    """`expect` (the spool's hint) only chooses the first decoder: any event, an intake
    or not, decodes to the same payload and bytes, and a bad one is refused alike."""
    payload = _sample(event_type.model)
    raw = encode_event(new_event(payload, id=uuid.uuid4(), source="/test", correlationid="c"))
    hinted, plain = decode_event(raw, expect=IntakeReceivedV1), decode_event(raw)
    assert hinted.payload == plain.payload == payload
    assert encode_event(hinted) == encode_event(plain) == raw

    body = json.loads(raw)
    body["data"][next(iter(body["data"]))] = {"not": "this"}
    bad = json.dumps(body).encode()
    with pytest.raises(DecodeError) as refused:
        decode_event(bad, expect=IntakeReceivedV1)
    with pytest.raises(DecodeError) as reference:
        decode_event(bad)
    assert (refused.value.kind, refused.value.reason) == (
        reference.value.kind,
        reference.value.reason,
    )
