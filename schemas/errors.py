"""A validation error told in one line: where its first error lies and what it says."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def first_error(exc: ValidationError, *, where: str = "") -> tuple[str, str]:
    """The dotted path of the first error (`where` when it has none, as a whole-model
    error has) and its message: each caller words the line its reader expects."""
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    return path or where, str(first["msg"])
