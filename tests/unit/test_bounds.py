"""Every text field and list of every event is bounded, so no message can grow a row
without limit (the envelope as a whole is bounded by `MAX_EVENT_BYTES`)."""

from __future__ import annotations

import types
import typing

from annotated_types import MaxLen
from pydantic import BaseModel

from schemas.envelope import CloudEvent
from schemas.registry import EVENT_TYPES


def _unbounded(model: type[BaseModel], seen: set[type]) -> list[str]:
    if model in seen:
        return []
    seen.add(model)
    found = []
    for name, field in model.model_fields.items():
        union = typing.get_origin(field.annotation) in (typing.Union, types.UnionType)
        kinds = set(typing.get_args(field.annotation)) if union else {field.annotation}
        bounded = any(isinstance(m, MaxLen) for m in field.metadata)
        for kind in kinds:
            origin = typing.get_origin(kind) or kind
            if origin in (str, list) and not bounded and name not in ("data",):
                found.append(f"{model.__name__}.{name}")
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found += _unbounded(kind, seen)
            for inner in typing.get_args(kind):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    found += _unbounded(inner, seen)
    return found


def test_every_text_and_list_field_has_a_maximum_length() -> None:
    seen: set[type] = set()
    found = _unbounded(CloudEvent, seen)
    for event_type in EVENT_TYPES:
        found += _unbounded(event_type.model, seen)
    assert found == []
