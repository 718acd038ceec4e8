"""What every `siaga` module uses to register its commands: the parser that fails in one
line, the argument types, and the command groups (`siaga unit ...`)."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from typing import Any, NoReturn


class UsageError(Exception):
    """A bad argument: one line for the user, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose error is a UsageError (one line, exit code 2), not an exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def group(sub: Any, name: str, *, help: str, dest: str) -> Any:
    """A command that only groups others (`siaga unit status`): its own subparsers."""
    return sub.add_parser(name, help=help).add_subparsers(
        dest=dest, required=True, parser_class=Parser
    )


def id_of(what: str) -> Callable[[str], str]:
    """An argument type: a UUID, or one line saying it is not `what`."""

    def parse(text: str) -> str:
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an {what}: {text!r}") from None

    return parse


an_id = id_of("incident or intake id")


def positive(text: str) -> int:
    """An argument type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value
