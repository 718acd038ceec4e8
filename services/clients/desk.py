"""A call-taker's report handed to the running stack's gateway, with the standard library
only: no event models, broker client or settings are loaded, so `siaga report` answers in
a tenth of a second. The gateway checks the intake with the same model and keeps it in
its outbox before it answers; when it cannot be asked, the caller falls back to the
spooled broker path (`services.clients.operator`), which builds the same event.
"""

from __future__ import annotations

import http.client
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from schemas.ids import derive_id
from services.common import locate

SOURCE = "/siaga/operator"
INTAKE_TYPE = "siaga.intake.received.v1"
SCHEMA = "https://siaga.dev/schemas/siaga.intake.received.v1.schema.json"
CONTENT_TYPE = "application/cloudevents+json"
KEY_NAME = "siaga-desk"
"""The name of the key `siaga up` makes for this machine's command line (in `stack.json`)."""


@dataclass(frozen=True)
class Desk:
    """Where this home's running stack takes reports over HTTP, and the key it gave."""

    url: str
    key: str


def desk_of_stack(stack: dict[str, Any], *, bootstrap: str | None) -> Desk | None:
    """The stack's gateway and desk key, when `stack.json` names both and the command is
    not pointed at another broker (`SIAGA_KAFKA_BOOTSTRAP` elsewhere means that one)."""
    url, key = stack.get("gateway_url"), stack.get("desk_key")
    if not isinstance(url, str) or not isinstance(key, str) or not url or not key:
        return None
    if bootstrap is not None and bootstrap != stack.get("kafka_bootstrap"):
        return None
    return Desk(url=url, key=key)


def find_desk() -> Desk | None:
    """This home's desk, from `stack.json` and the environment, or None."""
    stack = locate.read_stack(locate.home_folder())
    return desk_of_stack(stack, bootstrap=locate.env("SIAGA_KAFKA_BOOTSTRAP"))


def _instant(moment: datetime) -> str:
    """RFC 3339 in UTC as the event models write it (`Z`, microseconds only when set)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def intake_document(
    *,
    intake_id: uuid.UUID,
    channel: str,
    text: str,
    received_at: datetime,
    phone: str | None = None,
    name: str | None = None,
    place_hint: str | None = None,
    location: tuple[float, float, float | None] | None = None,
    operator_id: str | None = None,
) -> bytes:
    """The intake's CloudEvent, byte for byte what `operator.intake_event` encodes for the
    same values (a test holds the two together)."""
    time = _instant(received_at)
    where = None
    if location is not None:
        lat, lon, accuracy = location
        where = {"lat": lat, "lon": lon, "accuracy_m": accuracy}
    document = {
        "specversion": "1.0",
        "id": str(derive_id(intake_id, "received")),
        "source": SOURCE,
        "type": INTAKE_TYPE,
        "time": time,
        "subject": str(intake_id),
        "datacontenttype": "application/json",
        "dataschema": SCHEMA,
        "data": {
            "intake_id": str(intake_id),
            "channel": channel,
            "received_at": time,
            "caller": {"phone": phone, "name": name},
            "text": text,
            "place_hint": place_hint,
            "location": where,
            "operator_id": operator_id,
        },
        "correlationid": str(intake_id),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Answer:
    """What the gateway said: `taken` (kept, or kept before) with its JSON answer,
    `refused` with its reason (it never will take it), or neither (not asked: the caller
    falls back to the broker path)."""

    taken: bool = False
    refused: str | None = None
    said: dict[str, Any] | None = None
    code: int | None = None  # the HTTP status, when the gateway answered


# A clear no: the request itself is wrong (400, 413) or the fleet's rules refuse it (409).
_REFUSED = (400, 409, 413)


def _post(desk: Desk, path: str, body: bytes, content_type: str, timeout_s: float) -> Answer:
    """POST `body` to the gateway. Anything but a clear yes or a clear no (a refused
    connection, a timeout, a 5xx, a key the gateway no longer knows, a rate limit) is
    neither, and the command goes the broker's way, which spools a report first."""
    parts = urlsplit(desk.url)
    if parts.scheme != "http" or not parts.hostname:
        return Answer()
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout_s)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": content_type, "Authorization": f"Bearer {desk.key}"},
        )
        response = conn.getresponse()
        answer = response.read()
    except (OSError, http.client.HTTPException):
        return Answer()
    finally:
        conn.close()
    said = _json_object(answer)
    if 200 <= response.status < 300:
        return Answer(taken=True, said=said, code=response.status)
    if response.status in _REFUSED:
        reason = said.get("error")
        if not isinstance(reason, str) or not reason:
            reason = f"the gateway refused it ({response.status})"
        return Answer(refused=reason, code=response.status)
    return Answer()


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        found = json.loads(body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def hand_over(desk: Desk, document: bytes, *, timeout_s: float = 3.0) -> Answer:
    """POST an intake's CloudEvent to `/events`; a refusal worded as the broker path words
    it (`invalid caller.phone: ...`, without the CloudEvent's `data.`)."""
    answer = _post(desk, "/events", document, CONTENT_TYPE, timeout_s)
    if answer.refused is not None:
        reason = answer.refused.replace("invalid data.", "invalid ", 1)
        return Answer(refused=reason, code=answer.code)
    return answer


def report_status(
    desk: Desk,
    *,
    unit_id: str,
    status: str,
    incident_id: str | None = None,
    location: tuple[float, float] | None = None,
    note: str | None = None,
    reported_at: str | None = None,
    timeout_s: float = 5.0,
) -> Answer:
    """POST a unit's status to `/units/{unit_id}/status`, where the gateway checks it by
    the dispatcher's rule (waiting up to 2 s for the board to catch up with an order);
    `reported_at` (ISO 8601 with its offset) is the crew's time, the gateway's when None."""
    body: dict[str, Any] = {"status": status, "incident_id": incident_id, "note": note}
    if reported_at is not None:
        body["reported_at"] = reported_at
    if location is not None:
        body["location"] = {"lat": location[0], "lon": location[1]}
    path = f"/units/{quote(unit_id, safe='')}/status"
    return _post(desk, path, json.dumps(body).encode(), "application/json", timeout_s)
