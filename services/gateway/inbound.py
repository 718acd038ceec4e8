"""Citizens' messages from the channels' webhooks, read into intakes (pure functions).

A WhatsApp Business Cloud API post (`object: whatsapp_business_account`) carries entries
of changes; a change of field `messages` may hold messages (with the senders' contacts)
and delivery statuses. A Twilio-style SMS post is a form. Each message becomes one intake
whose id is derived from the channel's message id, so the channel's retries are one
intake. What cannot be read as a report is still kept: a photo, a voice note or a
message type we do not know becomes an intake with its caption or an empty text (a
silent emergency is not dropped), and the reply asks the citizen to write and share the
place. Only reactions and system notices (a number changed) are no report at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from schemas.common import EARLIEST, MAX_NAME, MAX_TEXT, Caller, Location
from schemas.events import IntakeReceivedV1
from schemas.ids import derive_id
from schemas.vocabulary import Channel
from services.common.text import clip

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Not a citizen's report: a reaction to one of our replies, a notice that a user changed
# their number.
NOT_REPORTS = frozenset({"reaction", "system"})
# Types whose object may carry a caption the citizen typed.
CAPTIONED = ("image", "video", "document", "sticker", "audio", "voice")
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@dataclass(frozen=True)
class Inbound:
    """A citizen's message as an intake, where to answer it (None: nowhere), and what the
    reply should ask for (the text was empty or unreadable; no place came with it)."""

    intake: IntakeReceivedV1
    address: str | None
    missing_text: bool
    missing_place: bool


@dataclass
class WhatsAppPost:
    """What a WhatsApp webhook post held: its messages, and how many delivery statuses and
    other items (not reports, or unreadable without an id) it also had."""

    messages: list[Inbound] = field(default_factory=list)
    statuses: int = 0
    ignored: int = 0


def intake_id_for(channel: Channel, message_id: str) -> UUID:
    """The intake id of a channel's message: the same message, the same intake."""
    return derive_id(f"{channel.value}:{message_id}", "intake")


def e164(number: str) -> str | None:
    """A sender's number as E.164 (`+` and digits), or None when it is no phone number (a
    short code, a name)."""
    number = number.strip()
    candidate = number if number.startswith("+") else "+" + number
    return candidate if _E164.match(candidate) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _received_at(timestamp: Any, now: datetime) -> datetime:
    """The channel's time of the message (Unix seconds), unless missing or implausible
    (then: now; the enricher also takes a clock ahead of ours back to its own)."""
    try:
        at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return now
    return at if EARLIEST <= at <= now else now


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _location(raw: dict[str, Any]) -> Location | None:
    """The shared position, when it is one (a number in range for each coordinate)."""
    lat, lon = _number(raw.get("latitude")), _number(raw.get("longitude"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Location(lat=lat, lon=lon)


def _message_text(message: dict[str, Any], kind: str) -> str:
    """What the citizen wrote: a text's body, a button's or a list's title, a caption."""
    if kind == "text":
        return _str(_dict(message.get("text")).get("body"))
    if kind == "interactive":
        interactive = _dict(message.get("interactive"))
        reply = _dict(interactive.get("button_reply")) or _dict(interactive.get("list_reply"))
        return _str(reply.get("title"))
    if kind == "button":
        return _str(_dict(message.get("button")).get("text"))
    if kind in CAPTIONED:
        return _str(_dict(message.get(kind)).get("caption"))
    return ""


def _whatsapp_message(
    message: dict[str, Any], names: dict[str, str], *, now: datetime
) -> Inbound | None:
    message_id, sender = _str(message.get("id")), _str(message.get("from"))
    if not message_id:
        return None  # without an id, no retry could be told from a new report
    kind = _str(message.get("type"))
    place = _dict(message.get("location")) if kind == "location" else {}
    location = _location(place) if place else None
    hint = ", ".join(p for p in (_str(place.get("name")), _str(place.get("address"))) if p)
    text = _message_text(message, kind)
    phone = e164(sender) if sender else None
    name = names.get(sender) or (next(iter(names.values())) if len(names) == 1 else None)
    intake = IntakeReceivedV1(
        intake_id=intake_id_for(Channel.WHATSAPP, message_id),
        channel=Channel.WHATSAPP,
        received_at=_received_at(message.get("timestamp"), now),
        caller=Caller(phone=phone, name=clip(name, MAX_NAME) if name else None),
        text=clip(text, MAX_TEXT),
        place_hint=clip(hint, MAX_NAME) if hint else None,
        location=location,
    )
    return Inbound(
        intake=intake,
        address=sender or None,
        missing_text=not text,
        missing_place=location is None and not hint,
    )


def _changes(payload: Any) -> Iterator[dict[str, Any]]:
    """The `value` of each change of field `messages` in a post."""
    body = _dict(payload)
    if body.get("object") != "whatsapp_business_account":
        return
    for entry in _list(body.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            if change.get("field") == "messages":
                yield _dict(change.get("value"))


def whatsapp_post(payload: Any, *, now: datetime) -> WhatsAppPost:
    """Every citizen message in a WhatsApp webhook post (JSON already parsed), in order."""
    post = WhatsAppPost()
    for value in _changes(payload):
        names = {}
        for contact in _list(value.get("contacts")):
            contact = _dict(contact)
            wa_id, name = (
                _str(contact.get("wa_id")),
                _str(_dict(contact.get("profile")).get("name")),
            )
            if wa_id and name:
                names[wa_id] = name
        post.statuses += len(_list(value.get("statuses")))
        for message in _list(value.get("messages")):
            message = _dict(message)
            if _str(message.get("type")) in NOT_REPORTS:
                post.ignored += 1
                continue
            found = _whatsapp_message(message, names, now=now)
            if found is None:
                post.ignored += 1
            else:
                post.messages.append(found)
    return post


def first_values(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A form's parameters by name (the first value of a name sent twice)."""
    found: dict[str, str] = {}
    for name, value in params:
        found.setdefault(name, value)
    return found


def sms_message(params: Iterable[tuple[str, str]], *, now: datetime) -> Inbound | None:
    """The citizen's SMS in a Twilio-style form post (`MessageSid`, `From`, `Body`); None
    for a post that is no incoming message (a delivery status callback, no message id)."""
    form = first_values(params)
    message_id = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    if not message_id or ("Body" not in form and "MessageStatus" in form):
        return None
    sender = form.get("From", "").strip()
    text = form.get("Body", "").strip()
    intake = IntakeReceivedV1(
        intake_id=intake_id_for(Channel.SMS, message_id),
        channel=Channel.SMS,
        received_at=now,
        caller=Caller(phone=e164(sender) if sender else None),
        text=clip(text, MAX_TEXT),
    )
    return Inbound(intake=intake, address=sender or None, missing_text=not text, missing_place=True)
