"""NENA's EIDO schema, read from `../shared/specs/nena_eido/openapi.yaml`, as a validator
for the documents `services.gateway.eido` builds, and the checks every such document
must pass: valid, strictly valid (no property the schema does not declare) and every
reference to a component pointing at a component of the right kind in the document."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT.parent / "shared" / "specs" / "nena_eido" / "openapi.yaml"
SPEC_ABSENT = (
    None
    if SPEC.is_file()
    else f"{SPEC} not present: the NENA EIDO spec is read from ../shared, never copied here"
)
EIDO_PATH = "/EIDO/{IncidentId}"

# Which components each kind of reference may point at (a new kind fails `check` until
# it is named here, so no reference goes unchecked).
REFERENCE_KINDS = {
    "updatedByAgencyReference": "agencyComponent",
    "agencyReference": "agencyComponent",
    "updatedByAgentReference": "agentComponent",
    "agentReference": "agentComponent",
    "notesReference": "notesComponent",
    "locationReference": "locationComponent",
    "unitDestinationReference": "locationComponent",
    "unitLocationReference": "locationComponent",
    "emergencyResourceReference": "emergencyResourceComponent",
}


@cache
def load_spec() -> dict[str, Any]:
    """The spec, with upstream's one typo mended: `minItems: 1,` (AgentType), which YAML
    reads as the string "1," and no JSON Schema validator accepts."""
    text = SPEC.read_text(encoding="utf-8")
    mended = re.sub(r"^(\s*minItems: \d+),[ \t]*$", r"\1", text, flags=re.MULTILINE)
    return dict(yaml.safe_load(mended))


def root_schema_ref(spec: dict[str, Any]) -> str:
    """The schema of the answer to `GET /EIDO/{IncidentId}`: the EIDO's root type."""
    answer = spec["paths"][EIDO_PATH]["get"]["responses"]["200"]["content"]
    return str(answer["application/json"]["schema"]["$ref"])


def _strict(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec where a component type declares every property it may have, so a misspelt
    or invented property fails (the spec's own types allow any). A type used as an
    `allOf` part (the prologue) is left open: its whole is what is closed."""
    strict = copy.deepcopy(spec)
    schemas = strict["components"]["schemas"]
    parts = {
        part["$ref"].rsplit("/", 1)[-1]
        for schema in schemas.values()
        for part in schema.get("allOf", ())
        if "$ref" in part
    }
    for name, schema in schemas.items():
        if name not in parts and ("allOf" in schema or "properties" in schema):
            schema["unevaluatedProperties"] = False
    return strict


@cache
def validator(*, strict: bool) -> Draft202012Validator:
    """A validator of the EIDO's root type. The registry holds the spec alone and has no
    way to fetch anything: a `$ref` that points outside the spec cannot resolve and fails
    the validation. The spec's schema keywords (type, properties, required, items, enum,
    allOf, format, minItems) mean the same in draft 2020-12 as in OpenAPI 3.0; its `$ref`s
    have only descriptions beside them."""
    spec = load_spec()
    base = SPEC.as_uri()
    contents = _strict(spec) if strict else spec
    registry: Registry[Any] = Registry().with_resource(base, DRAFT202012.create_resource(contents))
    return Draft202012Validator(
        {"$ref": base + root_schema_ref(spec)}, registry=registry, format_checker=FormatChecker()
    )


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def check_references(doc: dict[str, Any]) -> None:
    """Every component id is unique, and every reference points at a component of the
    kind its name says, in this document."""
    ids = [o["$id"] for o in _objects(doc) if "$id" in o]
    assert len(ids) == len(set(ids)), f"duplicate component ids: {sorted(ids)}"
    for owner in _objects(doc):
        for key, value in owner.items():
            if not key.endswith(("Reference", "References")):
                continue
            assert key in REFERENCE_KINDS, f"a reference of a kind not checked: {key}"
            kind = REFERENCE_KINDS[key]
            targets = {c["$id"] for c in doc.get(kind, ())}
            for ref in value if isinstance(value, list) else [value]:
                assert ref["$ref"] in targets, f"{key} -> {ref['$ref']}: not in {kind}"


def check(doc: dict[str, Any]) -> None:
    """Valid against the EIDO schema, strictly, with every reference inside the document."""
    assert "date-time" in FormatChecker().checkers, "times would go unchecked"
    validator(strict=False).validate(doc)
    validator(strict=True).validate(doc)
    check_references(doc)
