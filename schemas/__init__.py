"""Siaga's event contracts: the CloudEvents envelope, payload models, topic names and versions."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.envelope import CloudEvent, DecodeError, decode_event, encode_event, new_event
    from schemas.registry import EVENT_TYPES, EventType, event_type_for, model_for_type
    from schemas.topics import Topics

# Names are loaded on first use: the payload models take a tenth of a second to build, and
# a command that only needs topic names or the vocabulary (`siaga incident show`) need not.
_WHERE = {
    "CloudEvent": "schemas.envelope",
    "DecodeError": "schemas.envelope",
    "decode_event": "schemas.envelope",
    "encode_event": "schemas.envelope",
    "new_event": "schemas.envelope",
    "EVENT_TYPES": "schemas.registry",
    "EventType": "schemas.registry",
    "event_type_for": "schemas.registry",
    "model_for_type": "schemas.registry",
    "Topics": "schemas.topics",
}

__all__ = [
    "EVENT_TYPES",
    "CloudEvent",
    "DecodeError",
    "EventType",
    "Topics",
    "decode_event",
    "encode_event",
    "event_type_for",
    "model_for_type",
    "new_event",
]


def __getattr__(name: str) -> Any:
    """A public name of the package, imported from its module when first asked for."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'schemas' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
