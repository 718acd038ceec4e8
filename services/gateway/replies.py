"""What Siaga tells a citizen on their channel, and how each channel's send API is asked
(pure functions: texts in Bahasa Indonesia, the report number, the send requests, the
retry schedule and what a send's answer means)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import SecretStr

from schemas.vocabulary import Channel
from services.gateway.settings import SmsSettings, WhatsAppSettings

# The longest body each channel takes: WhatsApp's text message, and the SMS gateway's
# (Twilio joins up to 1600 characters from segments).
MAX_BODY = {Channel.WHATSAPP: 4096, Channel.SMS: 1600}
CHANNEL_NAME = {Channel.WHATSAPP: "WhatsApp", Channel.SMS: "SMS"}
EMERGENCY = "Bila ada bahaya bagi nyawa, segera telepon 112."


class Kind(StrEnum):
    """Why a reply is sent."""

    RECEIPT = "receipt"  # the report arrived: its number and what happens next
    ANSWER = "answer"  # the agency's first response (WorkOrderAnsweredV1)
    CLOSURE = "closure"  # the agency finished it (WorkOrderClosedV1)


def report_number(intake_id: UUID) -> str:
    """The report's number as a citizen reads it out: the first eight hex digits of its
    intake id, `7F3A-12C9` (short enough to say, enough to find it among a year's reports
    together with the caller's number; `gateway.conversations.reference` holds it)."""
    digits = intake_id.hex[:8].upper()
    return f"{digits[:4]}-{digits[4:]}"


def _ask(channel: Channel, *, missing_text: bool, missing_place: bool) -> str | None:
    """What the receipt asks for, when the message lacked it."""
    if missing_text and missing_place:
        return (
            "Pesan Anda belum dapat kami baca sebagai tulisan: mohon tuliskan apa yang "
            "terjadi dan di mana lokasinya."
        )
    if missing_text:
        return "Mohon tuliskan juga apa yang terjadi."
    if missing_place and channel is Channel.WHATSAPP:
        return (
            "Bila belum, kirimkan lokasi kejadian (Lampirkan > Lokasi) atau sebutkan nama "
            "desa/kecamatan dan patokannya."
        )
    if missing_place:
        return "Bila belum, sebutkan lokasi kejadian: nama desa/kecamatan dan patokannya."
    return None


def receipt_text(
    channel: Channel, *, reference: str, missing_text: bool, missing_place: bool
) -> str:
    """The reply to a report on arrival: its number, what happens next, what it lacked."""
    lines = [f"Terima kasih, laporan Anda sudah kami terima dengan nomor {reference}."]
    ask = _ask(channel, missing_text=missing_text, missing_place=missing_place)
    if ask:
        lines.append(ask)
    lines.append(
        "Petugas Command Center meneruskannya ke instansi yang berwenang; kabar berikutnya "
        f"kami kirim lewat {CHANNEL_NAME[channel]} ini dengan nomor laporan tersebut."
    )
    lines.append(EMERGENCY)
    return "\n".join(lines)


def notice_text(kind: Kind, *, reference: str, agency: str, text: str) -> str:
    """The reply when the agency answers the report or closes it, in its own words."""
    if kind is Kind.ANSWER:
        return f"Tanggapan {agency} atas laporan {reference}:\n{text}"
    if kind is Kind.CLOSURE:
        return (
            f"Laporan {reference} telah diselesaikan oleh {agency}:\n{text}\n"
            "Terima kasih atas laporan Anda."
        )
    raise ValueError(f"no notice text for a {kind.value}")


def template_params(kind: Kind, *, reference: str, agency: str, text: str) -> tuple[str, ...]:
    """A notice as the three parameters of a WhatsApp message template (its number, what
    happened, the agency's words), for `SIAGA_WHATSAPP_NOTICE_TEMPLATE`: a parameter is
    one line, so the words are joined on one, and cut to fit."""
    headline = f"Tanggapan {agency}" if kind is Kind.ANSWER else f"Diselesaikan oleh {agency}"
    words = " ".join(text.split())
    return reference, headline, words if len(words) <= 1000 else words[:999] + "…"


class NotConfigured(Exception):
    """A channel's send API lacks a setting; the message names the variables."""


@dataclass(frozen=True)
class Outbound:
    """One request to a send API."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None


def _clip(body: str, channel: Channel) -> str:
    limit = MAX_BODY[channel]
    return body if len(body) <= limit else body[: limit - 1] + "…"


def basic_auth(user: str, password: SecretStr) -> str:
    """An `Authorization` header of HTTP basic authentication."""
    pair = f"{user}:{password.get_secret_value()}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _whatsapp_content(
    settings: WhatsAppSettings, body: str, params: tuple[str, ...] | None
) -> dict[str, Any]:
    """A free-form text; a notice as the configured template, which WhatsApp delivers
    after the 24 hours since the citizen last wrote, when it takes no free-form text."""
    if params and settings.notice_template:
        parameters = [{"type": "text", "text": p} for p in params]
        return {
            "type": "template",
            "template": {
                "name": settings.notice_template,
                "language": {"code": settings.template_language},
                "components": [{"type": "body", "parameters": parameters}],
            },
        }
    return {"type": "text", "text": {"preview_url": False, "body": _clip(body, Channel.WHATSAPP)}}


def whatsapp_request(
    settings: WhatsAppSettings, *, to: str, body: str, params: tuple[str, ...] | None = None
) -> Outbound:
    """A message to the WhatsApp user `to` (their wa_id) through the Cloud API: POST
    {base}/{phone number id}/messages with the Bearer token."""
    if settings.access_token is None or not settings.phone_number_id:
        raise NotConfigured(
            "WhatsApp send API not configured: set SIAGA_WHATSAPP_ACCESS_TOKEN and "
            "SIAGA_WHATSAPP_PHONE_NUMBER_ID"
        )
    return Outbound(
        url=f"{settings.api_base_url.rstrip('/')}/{settings.phone_number_id}/messages",
        headers={"Authorization": f"Bearer {settings.access_token.get_secret_value()}"},
        json={
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            **_whatsapp_content(settings, body, params),
        },
    )


def sms_request(settings: SmsSettings, *, to: str, body: str) -> Outbound:
    """An SMS to `to` through a Twilio-style API: a form POST of To, From and Body to
    {base}/Accounts/{sid}/Messages.json, with the account sid and auth token as basic auth."""
    missing = [
        name
        for name, value in (
            ("SIAGA_SMS_API_BASE_URL", settings.api_base_url),
            ("SIAGA_SMS_ACCOUNT_SID", settings.account_sid),
            ("SIAGA_SMS_AUTH_TOKEN", settings.auth_token),
            ("SIAGA_SMS_FROM_NUMBER", settings.from_number),
        )
        if not value
    ]
    if missing:
        raise NotConfigured(f"SMS send API not configured: set {', '.join(missing)}")
    assert settings.api_base_url and settings.account_sid and settings.auth_token
    assert settings.from_number
    return Outbound(
        url=f"{settings.api_base_url.rstrip('/')}/Accounts/{settings.account_sid}/Messages.json",
        headers={"Authorization": basic_auth(settings.account_sid, settings.auth_token)},
        form={"To": to, "From": settings.from_number, "Body": _clip(body, Channel.SMS)},
    )


def request_for(
    channel: Channel,
    *,
    whatsapp: WhatsAppSettings,
    sms: SmsSettings,
    to: str,
    body: str,
    params: tuple[str, ...] | None = None,
) -> Outbound:
    """The send request of a reply on its channel."""
    if channel is Channel.WHATSAPP:
        return whatsapp_request(whatsapp, to=to, body=body, params=params)
    if channel is Channel.SMS:
        return sms_request(sms, to=to, body=body)
    raise NotConfigured(f"no send API for the {channel.value} channel")


class Outcome(StrEnum):
    """What a send's answer means for the reply."""

    SENT = "sent"
    RETRY = "retry"  # the API is down, slow or busy: try again later
    REFUSED = "refused"  # the API refused this message: trying again would not help


def outcome(status: int | None) -> Outcome:
    """The outcome of an HTTP status (None: no answer at all, a timeout or no connection)."""
    if status is None or status in (408, 425, 429) or status >= 500:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.SENT
    return Outcome.REFUSED


def retry_delay(attempts: int, *, base_s: float, max_s: float) -> float:
    """Seconds to wait after the `attempts`-th failed try: doubling from `base_s`, at most
    `max_s`."""
    return min(max_s, base_s * 2 ** max(0, attempts - 1))
