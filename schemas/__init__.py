"""Siaga's event contracts: the CloudEvents envelope, payload models, topic names and versions."""

from schemas.envelope import CloudEvent, DecodeError, decode_event, encode_event, new_event
from schemas.registry import EVENT_TYPES, EventType, event_type_for, model_for_type
from schemas.topics import Topics

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
