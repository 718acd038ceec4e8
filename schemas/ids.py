"""Deterministic ids: an output's id is derived from its cause, so reprocessing repeats it."""

from __future__ import annotations

import uuid

SIAGA_NAMESPACE = uuid.UUID("6f1b0c3e-5b8a-4c2e-9a59-3d1f7c2b9e10")


def derive_id(cause: uuid.UUID | str, role: str) -> uuid.UUID:
    """The uuid5 of a causing id and the role of what it causes (e.g. `incident`)."""
    return uuid.uuid5(SIAGA_NAMESPACE, f"{cause}/{role}")
