"""`siaga asyncapi`: the AsyncAPI 3.0 document of Siaga's topics and events."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from schemas.envelope import CONTENT_TYPE, TYPE_HEADER, decode_event
from schemas.events import DeadLetterV1, IntakeReceivedV1
from schemas.registry import EVENT_TYPES, event_type_for
from schemas.topics import Topics
from services.ops.asyncapi import SENDERS, build, render
from services.stages import STAGES, declaration

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("siaga", "pekalongan.prod")


@cache
def document(prefix: str) -> dict[str, Any]:
    return build(Topics(prefix), version="0.1.0")


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """The node a local `$ref` points at (KeyError when it points nowhere)."""
    assert ref.startswith("#/"), f"not a reference inside the document: {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


# ---------------------------------------------------------------- valid


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_part_is_complete_and_every_ref_resolves_inside_the_document(prefix: str) -> None:
    doc = document(prefix)
    for ref in refs(doc):
        resolve(doc, ref)  # raises if it points nowhere
    topics = Topics(prefix)
    assert sorted(c["address"] for c in doc["channels"].values()) == sorted(topics.all())
    for message in doc["components"]["messages"].values():
        assert resolve(doc, message["payload"]["$ref"])["type"] == "object"
        assert message["headers"]["type"] == "object"
        assert message["contentType"] == CONTENT_TYPE
        assert "key" in message["bindings"]["kafka"]
    for op_id, operation in doc["operations"].items():
        assert operation["action"] in ("send", "receive"), op_id
        channel_ref = operation["channel"]["$ref"]
        assert operation["messages"], op_id
        for message in operation["messages"]:
            # Messages of the operation's own channel.
            assert message["$ref"].startswith(channel_ref + "/messages/"), (op_id, message)


# ---------------------------------------------------------------- every event type


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_event_type_appears_with_its_topic_and_key(prefix: str) -> None:
    doc = document(prefix)
    topics = Topics(prefix)
    by_address = {c["address"]: c for c in doc["channels"].values()}
    assert set(doc["components"]["messages"]) == {t.type for t in EVENT_TYPES}
    for event_type in EVENT_TYPES:
        channel = by_address[event_type.topic(topics)]
        assert channel["address"].startswith(prefix + ".")
        assert channel["messages"][event_type.type] == {
            "$ref": f"#/components/messages/{event_type.type}"
        }
        message = doc["components"]["messages"][event_type.type]
        envelope = resolve(doc, message["payload"]["$ref"])
        assert envelope["properties"]["type"]["const"] == event_type.type
        data = resolve(doc, envelope["properties"]["data"]["$ref"])
        assert data["title"] == event_type.model.__name__
        assert message["headers"]["properties"][TYPE_HEADER]["const"] == event_type.type
        key = message["bindings"]["kafka"]["key"]
        if event_type.topic(topics) == topics.deadletter:
            assert "original message" in key["description"]
        else:
            assert f"`data.{event_type.subject_field}" in key["description"]
        assert event_type.type not in prefix  # names of types never take the prefix


def test_the_key_is_the_subject_a_producer_sets() -> None:
    """What the document calls the key is what `new_event` puts in `subject`, which the
    outbox uses as the key: the enriched intake's inner intake id, an incident's id."""
    doc = document("siaga")
    enriched = doc["components"]["messages"]["siaga.intake.enriched.v1"]
    assert enriched["bindings"]["kafka"]["key"]["description"].startswith("`data.intake.intake_id`")
    assert enriched["bindings"]["kafka"]["key"]["format"] == "uuid"
    classified = doc["components"]["messages"]["siaga.incident.classified.v1"]
    assert classified["bindings"]["kafka"]["key"]["description"].startswith("`data.incident_id`")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_payload_schemas_are_the_committed_json_schemas(prefix: str) -> None:
    """The payloads in the document are the schemas committed under `schemas/json/` (the
    same pydantic models), once every reference is written out in place."""
    doc = document(prefix)
    schemas = doc["components"]["schemas"]
    for event_type in EVENT_TYPES:
        committed = json.loads((ROOT / "schemas" / "json" / event_type.schema_file).read_text())
        envelope = resolve(doc, doc["components"]["messages"][event_type.type]["payload"]["$ref"])
        ours = resolve(doc, envelope["properties"]["data"]["$ref"])
        assert inline(ours, schemas) == inline(committed, committed.get("$defs", {})), (
            event_type.type
        )


def inline(node: Any, defs: dict[str, Any]) -> Any:
    """A schema with each `$ref` replaced by what it names (siblings kept)."""
    if isinstance(node, list):
        return [inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: inline(v, defs)
        for k, v in node.items()
        if k not in ("$ref", "$defs", "$id", "x-cloudevents-type")
    }
    if "$ref" in node:
        out = {**inline(defs[node["$ref"].rsplit("/", 1)[1]], defs), **out}
    return out


def test_the_intake_example_is_what_siaga_accepts() -> None:
    """A client copying the document's example sends an intake the stages decode, and it
    validates against the message's own payload schema."""
    doc = document("siaga")
    message = doc["components"]["messages"]["siaga.intake.received.v1"]
    (example,) = message["examples"]
    schema = {**message["payload"], "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(example["payload"])
    event = decode_event(json.dumps(example["payload"]).encode())
    assert isinstance(event.payload, IntakeReceivedV1)
    assert example["headers"][TYPE_HEADER] == event.envelope.type


# ---------------------------------------------------------------- who sends and reads


def test_the_stages_reads_are_their_declarations() -> None:
    doc = document("siaga")
    topics = Topics()
    for stage in STAGES:
        declared = declaration(stage)
        ops = {k: v for k, v in doc["operations"].items() if k.startswith(f"{stage}.receive.")}
        read = {ref["$ref"].rsplit("/", 1)[1] for op in ops.values() for ref in op["messages"]}
        assert read == {event_type_for(m).type for m in declared.consumes}, stage
        for op in ops.values():
            group = op["bindings"]["kafka"]["groupId"]["const"]
            assert group == declared.group_id(topics)
        # Every stage can dead-letter what it reads.
        assert f"{stage}.send.deadletter" in doc["operations"]


def test_every_event_type_has_a_sender_and_a_reader() -> None:
    doc = document("siaga")
    sent, read = set(), set()
    for op in doc["operations"].values():
        types = {ref["$ref"].rsplit("/", 1)[1] for ref in op["messages"]}
        (sent if op["action"] == "send" else read).update(types)
    assert sent == {t.type for t in EVENT_TYPES}
    assert read == {t.type for t in EVENT_TYPES}


PAYLOADS = {t.model.__name__ for t in EVENT_TYPES}


def constructed(path: Path) -> set[str]:
    """Names of the payload classes a module constructs (`IncidentClassifiedV1(...)`, or
    from what a client sent: `IntakeReceivedV1.model_validate(...)`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("model_validate", "model_validate_json") and isinstance(
                func, ast.Attribute
            ):
                name = getattr(func.value, "id", "")
            if name in PAYLOADS:
                names.add(name)
    return names


def constructed_in(*parts: str, exclude: tuple[str, ...] = ()) -> set[str]:
    found: set[str] = set()
    for part in parts:
        where = ROOT / "services" / part
        files = [where] if where.suffix == ".py" else sorted(where.rglob("*.py"))
        for path in files:
            if path.relative_to(ROOT / "services").as_posix() not in exclude:
                found |= constructed(path)
    return found


def declared(sender: str) -> set[str]:
    (found,) = [s for s in SENDERS if s.name == sender]
    return {m.__name__ for m in found.sends}


# Where each sender's events are built. The starter fleet's registrations are built in
# the dispatcher's package but sent by `siaga up` / `siaga init`; `siaga unit status`
# builds a report to check it before the field-unit client sends it.
SOURCES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "enricher": (("enricher",), ()),
    "triage": (("triage",), ()),
    "dispatcher": (("dispatcher",), ("dispatcher/fleet.py",)),
    "tracker": (("tracker",), ()),
    "projector": (("projector",), ()),
    "gateway": (("gateway",), ()),
    "operator": (("clients/operator.py",), ()),
    "field_unit": (("clients/field_unit.py",), ()),
    "fleet": (("dispatcher/fleet.py", "cli/units.py"), ()),
    "supervisor": (("cli/supervisor.py", "cli/incidents.py", "cli/commands.py"), ()),
    "ops": (("ops",), ()),
    "alerts": (("cli/alerts.py",), ()),
}


@pytest.mark.parametrize("sender", [s.name for s in SENDERS])
def test_who_sends_what_is_what_the_code_builds(sender: str) -> None:
    parts, exclude = SOURCES[sender]
    built = constructed_in(*parts, exclude=exclude)
    if sender == "fleet":
        built -= {"UnitStatusReportedV1"}  # unit status's check, sent by field_unit
    assert built == declared(sender)


def test_every_payload_the_code_builds_has_a_sender() -> None:
    everything = constructed_in(".") - {DeadLetterV1.__name__}
    assert everything <= set().union(*(declared(s.name) for s in SENDERS))
    assert {s.name for s in SENDERS} == set(SOURCES)


# ---------------------------------------------------------------- rendering and the CLI


@pytest.mark.parametrize("prefix", PREFIXES)
def test_yaml_is_the_same_document_as_json(prefix: str) -> None:
    doc = document(prefix)
    assert json.loads(render(doc, "json")) == doc
    assert yaml.safe_load(render(doc, "yaml")) == doc


@pytest.mark.parametrize(
    "value",
    [
        {"a": "two\nlines\n", "b": "x\n\ny", "c": " lead\nx", "d": "trail \nx", "e": "\n"},
        {"yes": 1, "on": "off", "$ref": "#/x", "key: colon": "- dash", "n": None, "t": True},
        {"nested": [[1, [2]], {"k": [{}, []]}], "small": 1e-05, "neg": -0.5, "empty": ""},
        {"tab": "a\tb\nc", "unicode": "Kabupaten Batang — ꦧꦠꦁ", "hash": "# not a comment"},
    ],
)
def test_yaml_reads_back_as_written(value: dict[str, Any]) -> None:
    assert yaml.safe_load(render(value, "yaml")) == value


def siaga(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    environ.update(SIAGA_HOME=str(home), **env)
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=60,
    )


def test_the_cli_writes_the_document_for_the_prefix_of_the_settings(tmp_path: Path) -> None:
    out = tmp_path / "siaga.asyncapi.yaml"
    done = siaga("asyncapi", "--out", str(out), home=tmp_path, SIAGA_TOPIC_PREFIX="pkl")
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stderr and done.stdout == ""
    written = yaml.safe_load(out.read_text())  # yaml, from the file's suffix
    assert written["channels"]["intake_received"]["address"] == "pkl.intake.received"
    out = tmp_path / "doc.txt"
    done = siaga("asyncapi", "--out", str(out), "--format", "json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["channels"]["deadletter"]["address"] == "siaga.deadletter"


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("asyncapi", "--format", "xml"), {}),
        (("asyncapi", "--out", "/no/such/folder/doc.json"), {}),
        (("asyncapi",), {"SIAGA_TOPIC_PREFIX": "two words"}),
    ],
)
def test_the_cli_refuses_bad_input_with_one_line_and_exit_2(
    args: tuple[str, ...], env: dict[str, str], tmp_path: Path
) -> None:
    done = siaga(*args, home=tmp_path, **env)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siaga"), done.stderr
    assert done.stdout == ""
