"""The AsyncAPI 3.0 document of Siaga's topics and events, generated from the contracts.

Everything in it comes from the single sources: the topics and their prefix
(`schemas/topics.py`), the event types with their versions, topics and subjects
(`schemas/registry.py`), the envelope and payload models (pydantic's JSON Schema, the same
as `schemas/json/`), the stages' declarations of what they read (`services/<stage>/stage.py`),
and, here, who sends what (`SENDERS`, held to the code by `tests/unit/test_asyncapi.py`).

It is generated directly rather than by FastStream's generator: FastStream documents a
subscriber by its handler's signature, one message per channel, with no headers, no record
key and its own correlation header, and it knows nothing of the clients that send with
plain aiokafka; docs/asyncapi.md says why in full.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema

from schemas import commands as cmd
from schemas import events as ev
from schemas.common import Contract
from schemas.envelope import CONTENT_TYPE, SCHEMA_BASE, TYPE_HEADER, CloudEvent
from schemas.registry import EVENT_TYPES, UPCASTERS, EventType, event_type_for
from schemas.topics import Topics

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"
# Set on a message `siaga dlq redrive` sent back to its topic (services/common/deadletter.py).
REDRIVE_HEADER = "siaga-redrive-of"


@dataclass(frozen=True)
class Sender:
    """Who puts events on the log, besides dead letters: a stage or a client."""

    name: str
    description: str
    sends: tuple[type[Contract], ...]


# What supervisors, call-takers and agencies send, from the command line or the centre's page.
SUPERVISOR_COMMANDS: tuple[type[Contract], ...] = (
    cmd.CancelDispatchV1,
    cmd.ReassignDispatchV1,
    cmd.CancelIncidentV1,
    cmd.CloseIncidentV1,
    cmd.AnswerWorkOrderV1,
    cmd.CloseWorkOrderV1,
    cmd.ReviewTriageV1,
)

# Who sends what. A stage's reads are its declaration (`Stage.consumes`); its sends are
# here, and a unit test holds them to the payloads each package constructs. Every stage
# also sends `DeadLetterV1` (see `stage_senders`).
SENDERS: tuple[Sender, ...] = (
    Sender(
        "operator",
        "Call-takers' `siaga report`, the demo of `siaga up --demo`, and any outside Kafka "
        "client that submits an intake (the one contract outside clients publish)",
        (ev.IntakeReceivedV1,),
    ),
    Sender(
        "enricher",
        "The enricher stage: place, coordinates and caller history of each intake",
        (ev.IntakeEnrichedV1,),
    ),
    Sender(
        "triage",
        "The triage stage: incidents opened, duplicate calls linked, classification, reviews",
        (ev.IncidentOpenedV1, ev.CallLinkedV1, ev.IncidentClassifiedV1, ev.TriageReviewedV1),
    ),
    Sender(
        "dispatcher",
        "The dispatcher stage: unit orders and their withdrawal, escalation, checked unit "
        "reports, agency work orders and their reminders",
        (
            ev.UnitDispatchedV1,
            ev.DispatchCancelledV1,
            ev.IncidentEscalatedV1,
            ev.UnitStatusChangedV1,
            ev.WorkOrderIssuedV1,
            ev.WorkOrderReminderSentV1,
            ev.WorkOrderEscalatedV1,
            ev.WorkOrderAnsweredV1,
            ev.WorkOrderClosedV1,
        ),
    ),
    Sender(
        "tracker",
        "The tracker stage: the incident lifecycle and SLA breaches",
        (ev.IncidentStatusChangedV1, ev.IncidentResolvedV1, ev.SlaBreachedV1),
    ),
    Sender("projector", "The projector stage: the read model (it sends dead letters only)", ()),
    Sender(
        "gateway",
        "The gateway stage: intakes submitted over HTTP (CloudEvents, the channels' "
        "webhooks, Open311, the intake form), the status reports crews press on the unit "
        "page (`/unit`) or send with a key (`POST /units/{id}/status`, as `siaga unit status` "
        "does with a stack running), and the command-centre page's commands of call-takers, supervisors "
        "and agencies, in the person's name",
        (
            ev.IntakeReceivedV1,
            ev.UnitStatusReportedV1,
            *SUPERVISOR_COMMANDS,
        ),
    ),
    Sender(
        "field_unit",
        "A field unit's `siaga unit status` (a crew's tablet): its status reports",
        (ev.UnitStatusReportedV1,),
    ),
    Sender(
        "fleet",
        "`siaga up`, `siaga init` and `siaga unit add/move`: the fleet's registrations and moves",
        (ev.UnitRegisteredV1, ev.UnitMovedV1),
    ),
    Sender(
        "supervisor",
        "Supervisors, call-takers and agencies (`siaga dispatch`, `siaga incident "
        "cancel/close/review`, `siaga workorder`): commands",
        SUPERVISOR_COMMANDS,
    ),
    Sender(
        "alerts",
        "BPBD officers' `siaga alert issue/update/cancel`: public alerts (CAP 1.2), which the "
        "gateway serves with those the projector derives from disaster incidents",
        (ev.AlertIssuedV1,),
    ),
    Sender(
        "ops",
        "The ops team's `siaga dlq redrive`: the note of each redrive (the original message "
        "goes back to its topic as it was, with the `siaga-redrive-of` header)",
        (ev.DeadLetterRedrivenV1,),
    ),
)

# Readers outside the stages, by name: what they read.
CLIENT_READERS: dict[str, tuple[str, tuple[type[Contract], ...]]] = {
    "field_unit": (
        "`siaga unit watch UNIT`: a crew's orders and their withdrawal",
        (ev.UnitDispatchedV1, ev.DispatchCancelledV1),
    ),
}


@dataclass(frozen=True)
class Reader:
    """A stage as the document needs it: what it reads, its group, what it dead-letters."""

    name: str
    reads: tuple[type[Contract], ...]
    group_id: str | None
    owned_topics: tuple[str, ...]


def stage_readers(topics: Topics) -> list[Reader]:
    """The stages' declarations (imported on demand: they load the stages' plumbing)."""
    from services.stages import STAGES, declaration

    readers = []
    for name in STAGES:
        stage = declaration(name)
        readers.append(
            Reader(name, stage.consumes, stage.group_id(topics), tuple(stage.owned_topics(topics)))
        )
    return readers


def topic_names(topics: Topics) -> dict[str, tuple[str, str]]:
    """Topics attribute -> (topic name, its description), in pipeline order."""
    found = {
        attr: (str(getattr(topics, attr)), (prop.__doc__ or "").strip())
        for attr, prop in vars(Topics).items()
        if isinstance(prop, property)
    }
    by_name = {name: attr for attr, (name, _) in found.items()}
    return {by_name[name]: found[by_name[name]] for name in topics.all()}


# ---------------------------------------------------------------- payload schemas


def _envelope_model(event_type: EventType) -> type[BaseModel]:
    """The envelope of one event type, its `type` fixed and its `data` the payload model:
    what a record of that type holds (the same as the decoder's one-pass envelope)."""
    fields: dict[str, Any] = {
        "type": (Literal[event_type.type], ...),
        "data": (event_type.model, ...),
    }
    return create_model(
        f"{event_type.model.__name__}Event",
        __base__=CloudEvent,
        __doc__=f"A `{event_type.type}` event in its CloudEvents envelope.",
        **fields,
    )


def _schemas(types: Iterable[EventType]) -> tuple[dict[str, str], dict[str, Any]]:
    """CloudEvents type -> name of its envelope schema, and every schema under
    `components/schemas` (pydantic names them, one name per distinct model)."""
    ordered = list(types)
    mode: Literal["validation"] = "validation"
    envelopes = [(_envelope_model(t), mode) for t in ordered]
    keys, top = models_json_schema(envelopes, ref_template="#/components/schemas/{model}")
    names = {}
    for event_type, envelope in zip(ordered, envelopes, strict=True):
        names[event_type.type] = keys[envelope]["$ref"].rsplit("/", 1)[1]
    return names, top.get("$defs", {})


# ---------------------------------------------------------------- messages


def _subject_path(event_type: EventType) -> str:
    """The payload field the record key and the envelope's `subject` come from (as
    `schemas.envelope.new_event` sets it)."""
    field = event_type.model.model_fields[event_type.subject_field]
    if isinstance(field.annotation, type) and issubclass(field.annotation, Contract):
        return f"{event_type.subject_field}.intake_id"
    return event_type.subject_field


def _key(event_type: EventType, topics: Topics) -> dict[str, Any]:
    """The Kafka record key's schema and meaning."""
    if event_type.topic(topics) == topics.deadletter:
        return {
            "type": ["string", "null"],
            "description": "The key of the original message that was dead-lettered (as it "
            "was; null when it had none), so a redrive keeps its order",
        }
    path = _subject_path(event_type)
    thing = path.rsplit(".", 1)[-1].removesuffix("_id")
    key: dict[str, Any] = {
        "type": "string",
        "description": f"`data.{path}` of the event, also its CloudEvents `subject`: the "
        f"events of one {thing} stay in order in one partition",
    }
    model: Any = event_type.model
    for part in path.split("."):
        annotation = model.model_fields[part].annotation
        model = annotation
    if annotation is uuid.UUID:
        key["format"] = "uuid"
    return key


def _message(event_type: EventType, schema_name: str, topics: Topics) -> dict[str, Any]:
    doc = (event_type.model.__doc__ or "").strip()
    message: dict[str, Any] = {
        "name": event_type.model.__name__,
        "title": event_type.type,
        "summary": doc.splitlines()[0] if doc else event_type.type,
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "properties": {
                "content-type": {
                    "type": "string",
                    "const": CONTENT_TYPE,
                    "description": "CloudEvents Kafka binding, structured mode: the value "
                    "is the whole event as JSON",
                },
                TYPE_HEADER: {
                    "type": "string",
                    "const": event_type.type,
                    "description": "The event's `type`, repeated so a reader can pass over "
                    "types it does not handle without parsing the value. Optional; if "
                    "present it must equal the value's `type`, or the record is a dead "
                    "letter (`type_mismatch`)",
                },
                REDRIVE_HEADER: {
                    "type": "string",
                    "description": "Only on a message `siaga dlq redrive` sent back: the id "
                    "of the dead letter it came from",
                },
            },
        },
        "payload": {"$ref": f"#/components/schemas/{schema_name}"},
        "correlationId": {
            "description": "The id of the intake that started the chain",
            "location": "$message.payload#/correlationid",
        },
        "bindings": {"kafka": {"key": _key(event_type, topics), "bindingVersion": KAFKA_BINDING}},
    }
    if event_type.type in UPCASTERS:
        newer, _ = UPCASTERS[event_type.type]
        message["description"] = (
            f"Superseded by `{newer}`: readers still accept it and upcast it on read."
        )
    if event_type.model is ev.IntakeReceivedV1:
        message["examples"] = [_intake_example(event_type)]
    return message


def _intake_example(event_type: EventType) -> dict[str, Any]:
    """One intake as an outside client sends it (docs/architecture.md has it for kcat)."""
    intake_id = "5b7f7f3e-8a55-4d3e-9d7e-2b1f0a7c9e11"
    return {
        "name": "call112",
        "summary": "A 112 call about a house fire, as any Kafka client sends it",
        "headers": {"content-type": CONTENT_TYPE, TYPE_HEADER: event_type.type},
        "payload": {
            "specversion": "1.0",
            "id": "kcat-1",
            "source": "kcat://desk-3",
            "type": event_type.type,
            "time": "2026-11-23T10:00:00+07:00",
            "subject": intake_id,
            "datacontenttype": "application/json",
            "dataschema": SCHEMA_BASE + event_type.schema_file,
            "data": {
                "intake_id": intake_id,
                "channel": "call112",
                "received_at": "2026-11-23T10:00:00+07:00",
                "caller": {"phone": "+6281234567890", "name": None},
                "text": "kebakaran rumah di Gringsing",
                "place_hint": None,
                "location": None,
                "operator_id": None,
            },
        },
    }


# ---------------------------------------------------------------- operations


def _operation(
    action: str,
    who: str,
    attr: str,
    types: list[EventType],
    *,
    description: str,
    group_id: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{attr}"},
        "title": f"{who} {action}s on {attr}",
        "description": description,
        "messages": [{"$ref": f"#/channels/{attr}/messages/{t.type}"} for t in types],
    }
    if group_id is not None:
        operation["bindings"] = {
            "kafka": {
                "groupId": {"type": "string", "const": group_id},
                "bindingVersion": KAFKA_BINDING,
            }
        }
    return operation


def _by_topic(
    models: Iterable[type[Contract]], topics: Topics, attrs: dict[str, tuple[str, str]]
) -> dict[str, list[EventType]]:
    """Topics attribute -> the event types among `models` on it, in pipeline then registry
    order."""
    wanted = {event_type_for(m) for m in models}
    grouped: dict[str, list[EventType]] = {}
    for attr, (name, _) in attrs.items():
        found = [t for t in EVENT_TYPES if t in wanted and t.topic(topics) == name]
        if found:
            grouped[attr] = found
    return grouped


def _operations(
    topics: Topics, attrs: dict[str, tuple[str, str]], readers: list[Reader]
) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    stage_names = {r.name for r in readers}
    for sender in SENDERS:
        sends = sender.sends + ((ev.DeadLetterV1,) if sender.name in stage_names else ())
        for attr, types in _by_topic(sends, topics, attrs).items():
            what = (
                "dead letters: what it could not process, with the reason"
                if (attr == "deadletter" and sender.name in stage_names)
                else ", ".join(t.model.__name__ for t in types)
            )
            operations[f"{sender.name}.send.{attr}"] = _operation(
                "send", sender.name, attr, types, description=f"{sender.description}. Sends {what}."
            )
    for reader in readers:
        for attr, types in _by_topic(reader.reads, topics, attrs).items():
            owner = attrs[attr][0] in reader.owned_topics
            note = (
                " It dead-letters what on this topic cannot be decoded (not JSON, wrong "
                "envelope, unknown type or version, fails its schema, oversize)."
                if owner
                else " It passes over, unread, records whose `ce_type` header names a type "
                "it does not read."
            )
            operations[f"{reader.name}.receive.{attr}"] = _operation(
                "receive",
                reader.name,
                attr,
                types,
                description=f"The {reader.name} stage, consumer group `{reader.group_id}`, "
                f"reads {', '.join(t.model.__name__ for t in types)}.{note}",
                group_id=reader.group_id,
            )
    for name, (description, reads) in CLIENT_READERS.items():
        for attr, types in _by_topic(reads, topics, attrs).items():
            operations[f"{name}.receive.{attr}"] = _operation(
                "receive", name, attr, types, description=f"{description}."
            )
    return operations


# ---------------------------------------------------------------- the document

_DESCRIPTION = """\
Every fact of a Siaga deployment is an event on one of these Kafka topics.

- **Value**: one CloudEvents 1.0 event in JSON structured mode (`specversion, id, source, \
type, time, subject, datacontenttype, dataschema, data`, plus `correlationid` and \
`causationid`). `type` names the event and its major version; `data` is the payload. \
Each message below is one `type`, with its envelope and payload schemas.
- **Key**: the event's `subject` (an incident id, an intake id or a unit id: see each \
message's Kafka binding), so every event of one thing stays in order in one partition.
- **Headers**: `content-type: application/cloudevents+json` and `ce_type` (the `type` again) \
are sent by Siaga's producers; both are optional for a sender.
- **Delivery**: at least once. A reader must be idempotent by the event's `id`; Siaga's \
ids are derived from their cause, so a repeat carries the same `id`.
- **Versions**: a breaking change is a new major version; readers accept the old one \
during a migration. A reader should pass over a `type` it does not know.
- **Mistakes**: a message a stage cannot read (not JSON, fails its schema, unknown type, \
over 256 KiB) goes to the dead-letter topic with the reason; nothing is dropped silently.

The one contract outside systems publish is `siaga.intake.received.v1` on the intake \
topic (or POST it to the gateway). Topic names start with the deployment's prefix \
(`SIAGA_TOPIC_PREFIX`) so several regencies can share one cluster.
"""


def build(topics: Topics | None = None, *, version: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the deployment whose topics are `topics`."""
    topics = topics or Topics()
    attrs = topic_names(topics)
    readers = stage_readers(topics)
    schema_names, schemas = _schemas(EVENT_TYPES)
    messages = {t.type: _message(t, schema_names[t.type], topics) for t in EVENT_TYPES}
    channels: dict[str, Any] = {}
    for attr, (name, description) in attrs.items():
        on_topic = [t for t in EVENT_TYPES if t.topic(topics) == name]
        channels[attr] = {
            "address": name,
            "title": name,
            "description": description,
            "servers": [{"$ref": "#/servers/kafka"}],
            "messages": {t.type: {"$ref": f"#/components/messages/{t.type}"} for t in on_topic},
            "bindings": {"kafka": {"topic": name, "bindingVersion": KAFKA_BINDING}},
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"Siaga events ({topics.prefix})",
            "version": version or _project_version(),
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "The deployment's Kafka cluster (`SIAGA_KAFKA_BOOTSTRAP`, or "
                "`kafka_bootstrap` in `.siaga/stack.json` of a running `siaga up`)",
                "variables": {
                    "bootstrap": {
                        "default": "localhost:9092",
                        "description": "host:port of a broker",
                    }
                },
            }
        },
        "channels": channels,
        "operations": _operations(topics, attrs, readers),
        "components": {"messages": messages, "schemas": schemas},
    }


def _project_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("siaga")
    except PackageNotFoundError:
        return "0.0.0"


# ---------------------------------------------------------------- rendering


def render(document: dict[str, Any], fmt: str) -> str:
    """The document as JSON or YAML text."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return "\n".join(_yaml(document, 0)) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


# A key written plain, without quotes: nothing a YAML reader would take for another type.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _key_text(key: str) -> str:
    if _PLAIN_KEY.fullmatch(key) and key.lower() not in _YAML_WORDS:
        return key
    return json.dumps(key, ensure_ascii=False)


def _scalar(value: Any) -> str:
    """A JSON value as a YAML flow scalar (JSON's strings are YAML double-quoted scalars)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no JSON form")
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        # YAML 1.1 readers take `1e-05` for a string: give the mantissa its dot.
        return f"{mantissa}.0e{exponent}" if exponent and "." not in mantissa else text
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(value, ensure_ascii=False)


def _literal(text: str, indent: int) -> list[str] | None:
    """A text of several lines as a literal block (`|`), when it can be one exactly."""
    body = text[:-1] if text.endswith("\n") else text
    lines = body.split("\n")
    if (
        len(lines) < 2
        or body.endswith("\n")
        or lines[0][:1] in (" ", "")
        or any(not line.isprintable() or line != line.rstrip() for line in lines)
    ):
        return None
    pad = " " * indent
    return ["|" if text.endswith("\n") else "|-"] + [pad + line if line else "" for line in lines]


def _nested(value: Any) -> bool:
    return isinstance(value, dict | list) and bool(value)


def _yaml(value: Any, indent: int) -> list[str]:
    """Block-style YAML of a JSON value; strings quoted as JSON, or literal blocks."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            head = f"{pad}{_key_text(str(key))}:"
            block = _literal(item, indent + 2) if isinstance(item, str) else None
            if _nested(item):
                lines.append(head)
                lines.extend(_yaml(item, indent + 2))
            elif block is not None:
                lines.append(f"{head} {block[0]}")
                lines.extend(block[1:])
            else:
                lines.append(f"{head} {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if _nested(item):
                inner = _yaml(item, indent + 2)
                lines.append(f"{pad}- {inner[0][indent + 2 :]}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return lines
