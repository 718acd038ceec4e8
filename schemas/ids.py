"""Deterministic ids: an output's id is derived from its cause, so reprocessing repeats it."""

from __future__ import annotations

import hashlib
import uuid

SIAGA_NAMESPACE = uuid.UUID("6f1b0c3e-5b8a-4c2e-9a59-3d1f7c2b9e10")
_NAMESPACE_BYTES = SIAGA_NAMESPACE.bytes


def derive_id(cause: uuid.UUID | str, role: str) -> uuid.UUID:
    """The uuid5 of a causing id and the role of what it causes (e.g. `incident`)."""
    # uuid.uuid5's own steps, with the namespace's bytes taken once: every event derives ids.
    digest = hashlib.sha1(_NAMESPACE_BYTES + f"{cause}/{role}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=5)
