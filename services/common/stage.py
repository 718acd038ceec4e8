"""A stage declared once: the events it consumes, the topics it owns and its inbox key; its
subscriptions, consumer group, dead-letter ownership and handler map follow from that."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass

from schemas.common import Contract
from schemas.envelope import Event
from schemas.registry import event_type_for
from schemas.topics import Topics
from services.common.processing import Handler, event_key


class StageDeclarationError(TypeError):
    """A stage's handlers do not match what it declares it consumes."""


@dataclass(frozen=True)
class Stage:
    """What a stage is: its name, the payload types it consumes, and the topics (by their
    `Topics` attribute) whose undecodable messages it dead-letters; every topic has one
    owner, so the ops team sees each bad message once. `inbox_key` names what the inbox
    records of an event, so that a redelivered one is applied once (its envelope id unless
    the stage says otherwise)."""

    name: str
    consumes: tuple[type[Contract], ...]
    owns: tuple[str, ...] = ()
    inbox_key: Callable[[Event], str] = event_key

    def subscriptions(self, topics: Topics) -> list[str]:
        """The topics the stage reads: those its consumed events travel on, in pipeline order."""
        wanted = {event_type_for(model).topic(topics) for model in self.consumes}
        return [topic for topic in topics.all() if topic in wanted]

    def owned_topics(self, topics: Topics) -> list[str]:
        """The topics whose undecodable messages this stage dead-letters."""
        return [str(getattr(topics, name)) for name in self.owns]

    def group_id(self, topics: Topics) -> str:
        """The stage's consumer group."""
        return f"{topics.prefix}.{self.name}"

    def handlers(self, *handlers: Handler) -> dict[type[Contract], Handler]:
        """The handler map, each handler under the payload type(s) its `event` parameter
        names; a handler of an undeclared type, a declared type without a handler, or one
        with two handlers is a `StageDeclarationError` when the stage is built."""
        found: dict[type[Contract], Handler] = {}
        for handler in handlers:
            for model in payload_types(handler):
                if model not in self.consumes:
                    raise StageDeclarationError(
                        f"{self.name}: {_name(handler)} handles {model.__name__}, "
                        "which the stage does not declare it consumes"
                    )
                if model in found:
                    raise StageDeclarationError(
                        f"{self.name}: {model.__name__} has two handlers, "
                        f"{_name(found[model])} and {_name(handler)}"
                    )
                found[model] = handler
        missing = [m.__name__ for m in self.consumes if m not in found]
        if missing:
            raise StageDeclarationError(f"{self.name}: no handler for {', '.join(missing)}")
        return found


def payload_types(handler: Handler) -> tuple[type[Contract], ...]:
    """The payload types a handler takes, read from its `event: Event[...]` annotation (a
    union names several)."""
    parameters = list(inspect.signature(handler).parameters.values())
    if len(parameters) < 2:
        raise StageDeclarationError(f"{_name(handler)}: a handler takes (conn, event)")
    hints = typing.get_type_hints(handler)
    annotation = hints.get(parameters[-1].name)
    if typing.get_origin(annotation) is not Event:
        raise StageDeclarationError(
            f"{_name(handler)}: its event parameter must be annotated Event[SomePayload]"
        )
    (argument,) = typing.get_args(annotation)
    if typing.get_origin(argument) in (typing.Union, types.UnionType):
        models = typing.get_args(argument)
    else:
        models = (argument,)
    for model in models:
        if not (isinstance(model, type) and issubclass(model, Contract)):
            raise StageDeclarationError(f"{_name(handler)}: {model!r} is not an event payload")
    return tuple(models)


def _name(handler: Handler) -> str:
    """A handler's name for messages."""
    return getattr(handler, "__qualname__", repr(handler))
