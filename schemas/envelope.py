"""The CloudEvents 1.0 envelope (JSON structured mode) and its strict decoder."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)

from schemas.common import Contract
from schemas.registry import (
    EVENT_TYPES,
    UPCASTERS,
    EventType,
    event_type_for,
    model_for_type,
    upcast,
)

CONTENT_TYPE = "application/cloudevents+json"
# The event's `type`, repeated in a record header by Siaga's producers, so a stage can pass
# over another stage's events on a shared topic without parsing them. Optional: a record
# without it is parsed, and one whose header disagrees with its body is refused.
TYPE_HEADER = "ce_type"
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()
MAX_EVENT_BYTES = 256 * 1024
SCHEMA_BASE = "https://siaga.dev/schemas/"


class CloudEvent(BaseModel):
    """CloudEvents 1.0 attributes plus Siaga's `correlationid` and `causationid` extensions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = Field(default="1.0", description="CloudEvents version")
    id: str = Field(description="Unique per event; deterministic from its cause", max_length=128)
    source: str = Field(description="Who emitted it, e.g. /siaga/triage", max_length=256)
    type: str = Field(description="Event name and major version", max_length=128)
    time: AwareDatetime = Field(description="When the fact happened")
    subject: str | None = Field(
        default=None, description="Id of the thing it is about", max_length=128
    )
    datacontenttype: Literal["application/json"] = Field(default="application/json")
    dataschema: str | None = Field(
        default=None, description="URI of the payload's JSON Schema", max_length=256
    )
    data: dict[str, Any] = Field(description="The payload")
    correlationid: str | None = Field(
        default=None, description="Id of the intake that started the chain", max_length=128
    )
    causationid: str | None = Field(
        default=None, description="Id of the event that caused this one", max_length=128
    )


# An escaped NUL: `\u0000` preceded by an even number of backslashes.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_OPTIONAL_ATTRIBUTES = ("subject", "dataschema", "correlationid", "causationid")


class DecodeError(ValueError):
    """A message that cannot be an event of ours; `reason` is one line for the dead-letter."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


P = TypeVar("P", bound=Contract, covariant=True)


@dataclass(frozen=True)
class Event(Generic[P]):
    """A decoded event: its envelope and its typed payload (`Event[IncidentClassifiedV1]` is
    what a handler of classifications is given)."""

    envelope: CloudEvent
    payload: P

    @property
    def id(self) -> str:
        """The envelope id."""
        return self.envelope.id


def _one_line(error: ValidationError) -> str:
    parts = []
    for err in error.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = error.error_count() - 3
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _typed_envelope(event_type: EventType) -> type[CloudEvent]:
    """The envelope of one current event type, its `data` that type's payload."""
    name = event_type.model.__name__ + "Event"
    fields: dict[str, Any] = {
        "type": (Literal[event_type.type], ...),
        "data": (event_type.model, ...),
    }
    return create_model(name, __base__=CloudEvent, **fields)


# The envelope of each current payload: a new event carries its payload as it is, and a
# received one is read (envelope and payload) in one pass, chosen by its `type`. Anything
# that refuses, an older version included, is decoded again in two passes, which upcasts
# it or says exactly what is wrong. Both are built on first use, not at import: a client
# that sends one kind of event (`siaga report`) builds one envelope, not every decoder.
_ENVELOPES: dict[type[Contract], type[CloudEvent] | None] = {}
_DECODERS: list[TypeAdapter[CloudEvent]] = []


def _envelope_for(model: type[Contract]) -> type[CloudEvent] | None:
    """The typed envelope of a current payload model, or None for an old version."""
    try:
        return _ENVELOPES[model]
    except KeyError:
        pass
    event_type = event_type_for(model)
    typed = None if event_type.type in UPCASTERS else _typed_envelope(event_type)
    _ENVELOPES[model] = typed
    return typed


def _current() -> TypeAdapter[CloudEvent]:
    """The one-pass decoder of every current event type."""
    if not _DECODERS:
        envelopes = [_envelope_for(t.model) for t in EVENT_TYPES if t.type not in UPCASTERS]
        _DECODERS.append(
            TypeAdapter(
                Annotated[  # type: ignore[arg-type]
                    Union[tuple(e for e in envelopes if e is not None)],  # noqa: UP007
                    Field(discriminator="type"),
                ]
            )
        )
    return _DECODERS[0]


def decode_event(raw: bytes | None, *, expect: type[Contract] | None = None) -> Event:
    """Parse bytes into an Event, or raise DecodeError saying exactly why not. `expect`
    names the payload a reader nearly always meets (the spool holds intakes): only its
    envelope is built for the first pass, and anything else is read all the same."""
    if raw is None:
        raise DecodeError("empty", "message has no value")
    if len(raw) > MAX_EVENT_BYTES:
        raise DecodeError("oversize", f"{len(raw)} bytes exceeds {MAX_EVENT_BYTES}")
    if b"\\u0000" in raw and _JSON_NUL.search(raw):
        # Valid JSON, but no PostgreSQL text column can hold it: refuse at the door.
        raise DecodeError("bad_payload", "NUL character (\\u0000) in a string")
    try:
        typed = _envelope_for(expect) if expect is not None else None
        if typed is not None:
            envelope = typed.model_validate_json(raw)
        else:
            envelope = (_DECODERS[0] if _DECODERS else _current()).validate_json(raw)
    except (ValidationError, RecursionError, ValueError):
        return _decode_in_two_passes(raw)
    payload = envelope.data
    assert isinstance(payload, Contract)
    return Event(envelope=envelope, payload=payload)


def _decode_in_two_passes(raw: bytes) -> Event:
    """The envelope first, then its payload once upcast to the current version."""
    try:
        envelope = CloudEvent.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise DecodeError("not_json", "value is not valid JSON") from None
        raise DecodeError("bad_envelope", _one_line(exc)) from None
    except (RecursionError, ValueError) as exc:
        raise DecodeError("not_json", str(exc)[:200]) from None
    type_, data = upcast(envelope.type, envelope.data)
    event_type = model_for_type(type_)
    if event_type is None:
        raise DecodeError("unknown_type", f"unknown event type or version {envelope.type!r}")
    try:
        payload = event_type.model.model_validate(data)
    except ValidationError as exc:
        raise DecodeError("bad_payload", f"{type_}: {_one_line(exc)}") from None
    if type_ != envelope.type:
        envelope = envelope.model_copy(update={"type": type_})
    return Event(envelope=envelope, payload=payload)


def new_event(
    payload: Contract,
    *,
    id: uuid.UUID | str,
    source: str,
    time: datetime | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
) -> Event:
    """Wrap a payload in an envelope; `subject` and `dataschema` follow from its type."""
    event_type = event_type_for(type(payload))
    subject = getattr(payload, event_type.subject_field)
    if isinstance(subject, Contract):  # enriched intake: subject is the inner intake id
        subject = getattr(subject, "intake_id", None)
    attributes: dict[str, Any] = {
        "id": str(id),
        "source": source,
        "type": event_type.type,
        "time": time or datetime.now(UTC),
        "subject": None if subject is None else str(subject),
        "dataschema": SCHEMA_BASE + event_type.schema_file,
        "correlationid": correlationid,
        "causationid": causationid,
    }
    typed = _envelope_for(type(payload))
    if typed is not None:
        # The payload is valid: taken as it is, and dumped once, with its envelope.
        envelope = typed.model_validate({**attributes, "data": payload})
    else:
        envelope = CloudEvent(**attributes, data=payload.model_dump(mode="json"))
    return Event(envelope=envelope, payload=payload)


def encode_event(event: Event) -> bytes:
    """The event as CloudEvents JSON structured-mode bytes."""
    envelope = event.envelope
    absent = {name for name in _OPTIONAL_ATTRIBUTES if getattr(envelope, name) is None}
    return envelope.model_dump_json(exclude=absent).encode()


def record_headers(event: Event) -> list[tuple[str, bytes]]:
    """The headers a producer sends with an encoded event: its content type and its type."""
    return [("content-type", _CONTENT_TYPE_BYTES), (TYPE_HEADER, event.envelope.type.encode())]


def event_type_of(event: Event) -> EventType:
    """The registry entry of a decoded event."""
    return event_type_for(type(event.payload))
