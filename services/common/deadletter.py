"""Dead letters: a message a stage cannot process is kept whole with its reason."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from schemas.envelope import new_event
from schemas.events import MAX_HEADERS, DeadLetterV1
from schemas.ids import derive_id
from schemas.topics import Topics
from services.common.outbox import Outgoing
from services.common.records import Record

MAX_REASON = 500
# Keeps a dead letter well under the broker's message limit and our own decode limit,
# so a dead letter of a huge message can itself be read back and redriven.
MAX_ORIGINAL = 96 * 1024
# Header on a message `siaga dlq redrive` sent back: the id of the dead letter it came from.
REDRIVE_HEADER = "siaga-redrive-of"


# A dead letter must itself stay publishable and decodable (< 256 KiB) whatever the
# original carried: keys are kept up to 4 KiB, 64 headers up to 512 bytes each.
_KEPT_KEY = 4 * 1024
_KEPT_HEADER = 512


def _b64(value: bytes | None, limit: int) -> str | None:
    """Base64 of the first `limit` bytes (None stays None)."""
    return None if value is None else base64.b64encode(value[:limit]).decode()


def redrive_of(payload: DeadLetterV1) -> str | None:
    """The dead letter whose redriven copy failed again to give this one, if any."""
    for key, value in payload.original_headers:
        if key == REDRIVE_HEADER:
            return base64.b64decode(value).decode("utf-8", errors="replace")[:128]
    return None


def dead_letter(record: Record, *, stage: str, kind: str, reason: str, topics: Topics) -> Outgoing:
    """The dead-letter event for a consumer record, keyed like the original."""
    position = f"{record.topic}:{record.partition}:{record.offset}"
    value: bytes = record.value or b""
    payload = DeadLetterV1(
        stage=stage,
        reason=f"{kind}: {reason}"[:MAX_REASON],
        error_type=kind,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        original_key_b64=_b64(record.key, _KEPT_KEY),
        original_headers=[
            (k[:256], _b64(v, _KEPT_HEADER) or "") for k, v in record.headers[:MAX_HEADERS]
        ],
        original_value_b64=base64.b64encode(value[:MAX_ORIGINAL]).decode(),
        original_size=len(value),
        original_truncated=len(value) > MAX_ORIGINAL,
        dead_lettered_at=datetime.now(UTC),
    )
    event = new_event(
        payload, id=derive_id(position, f"deadletter/{stage}"), source=f"/siaga/{stage}"
    )
    return Outgoing(event=event, topic=topics.deadletter, key=record.key)
