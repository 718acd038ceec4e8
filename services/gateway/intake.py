"""Intake over HTTP: a CloudEvent (structured or binary mode) becomes an intake on the log.

The sender's CloudEvent is read for its payload only: the event that goes on the log is
Siaga's own, with the id derived from the intake id (as `siaga report` makes it), so a
sender that posts the same intake twice, even under two event ids, makes one intake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from schemas.envelope import CONTENT_TYPE, Event
from schemas.errors import first_error
from schemas.events import IntakeReceivedV1
from services.clients.operator import intake_event

INTAKE_TYPE = "siaga.intake.received.v1"
_REQUIRED = ("specversion", "id", "source", "type")


class Refused(ValueError):
    """A request the gateway will not turn into an intake; the message says why in a line."""


@dataclass(frozen=True)
class Submitted:
    """An intake a client sent, and where it says it came from (its CloudEvent `source`)."""

    intake: IntakeReceivedV1
    source: str


def _json_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _attributes_ok(attributes: Mapping[str, Any]) -> None:
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise Refused(f"missing CloudEvents attribute(s): {', '.join(missing)}")
    if attributes["specversion"] != "1.0":
        raise Refused(f"specversion {attributes['specversion']!r}: only 1.0 is spoken here")
    if attributes["type"] != INTAKE_TYPE:
        raise Refused(f"type {attributes['type']!r}: only {INTAKE_TYPE} is accepted here")
    source = attributes["source"]
    if not isinstance(source, str) or len(source) > 256:
        raise Refused("source must be a URI-reference of at most 256 characters")


def _intake(data: Any) -> IntakeReceivedV1:
    if not isinstance(data, dict):
        raise Refused("data must be a JSON object: the intake")
    try:
        return IntakeReceivedV1.model_validate(data)
    except ValidationError as exc:
        where, message = first_error(exc, where="data")
        raise Refused(f"invalid data.{where}: {message}") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(f"not JSON: {exc}") from None


def from_structured(body: bytes) -> Submitted:
    """An intake from a structured-mode CloudEvent (`application/cloudevents+json`)."""
    envelope = _json(body)
    if not isinstance(envelope, dict):
        raise Refused("a structured-mode CloudEvent is a JSON object")
    _attributes_ok(envelope)
    content_type = envelope.get("datacontenttype")
    if content_type is not None and _json_type(str(content_type)) != "application/json":
        raise Refused(f"datacontenttype {content_type!r}: the intake is application/json")
    if "data_base64" in envelope:
        raise Refused("data_base64: send the intake as JSON in `data`")
    return Submitted(intake=_intake(envelope.get("data")), source=envelope["source"])


def from_binary(headers: Mapping[str, str], body: bytes) -> Submitted:
    """An intake from a binary-mode CloudEvent: attributes in `ce-*` headers, data the body."""
    attributes = {name: headers.get(f"ce-{name}") for name in _REQUIRED}
    _attributes_ok(attributes)
    return Submitted(intake=_intake(_json(body)), source=str(attributes["source"]))


def from_request(content_type: str, headers: Mapping[str, str], body: bytes) -> Submitted:
    """Structured or binary mode, as the request's content type says."""
    media = _json_type(content_type)
    if media == CONTENT_TYPE:
        return from_structured(body)
    if media == "application/json" or media.endswith("+json"):
        if "ce-specversion" not in headers:
            raise Refused(
                "binary mode needs ce-specversion, ce-id, ce-source and ce-type headers; "
                f"structured mode is sent as {CONTENT_TYPE}"
            )
        return from_binary(headers, body)
    raise Refused(f"content type {content_type or '(none)'!r}: send {CONTENT_TYPE} or JSON")


def event_for(submitted: Submitted) -> Event:
    """The event Siaga logs for a submitted intake (its id derived from the intake id)."""
    return intake_event(submitted.intake, source=submitted.source)


async def accept_intake(
    conn: asyncpg.Connection, *, event: Event, now: datetime, key_name: str | None
) -> bool:
    """Record an intake, in the caller's transaction; False when its id was accepted
    before (the caller then neither keeps nor sends anything more of it)."""
    intake = event.payload
    assert isinstance(intake, IntakeReceivedV1)
    new = await conn.fetchval(
        """
        INSERT INTO intakes (intake_id, channel, accepted_at, key_name)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (intake_id) DO NOTHING
        RETURNING true
        """,
        intake.intake_id,
        intake.channel.value,
        now,
        key_name,
    )
    return bool(new)
