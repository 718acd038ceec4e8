"""The citizen channels' webhooks: WhatsApp (Meta's Cloud API) and SMS (Twilio-style).

A post is believed only with a good signature over what arrived (nothing unsigned is
ever taken: without its secret a channel's posts are all refused). Each message becomes
an intake, made durable with its conversation and receipt in one transaction before the
answer; a post that could not be made durable answers 503, so the channel sends it again
(the message id decides the intake id: a resend is one intake). The replies themselves
go out later, from the reply sender, so a send API that is down holds nothing up here.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import SecretStr

from services.common.logging import get_logger
from services.gateway.app import Gateway, gateway_of
from services.gateway.conversations import Conversation
from services.gateway.http import Refusal
from services.gateway.inbound import TWIML_EMPTY, Inbound, sms_message, whatsapp_post
from services.gateway.intake import Submitted
from services.gateway.replies import receipt_text, report_number
from services.gateway.signatures import (
    SMS_SIGNATURE,
    WHATSAPP_SIGNATURE,
    sms_signed,
    verification_challenge,
    whatsapp_signed,
)

log = get_logger("gateway.webhooks")

WHATSAPP_SOURCE = "/siaga/gateway/whatsapp"
SMS_SOURCE = "/siaga/gateway/sms"


def _conversation(inbound: Inbound) -> Conversation | None:
    if inbound.address is None:
        return None
    intake = inbound.intake
    reference = report_number(intake.intake_id)
    receipt = receipt_text(
        intake.channel,
        reference=reference,
        missing_text=inbound.missing_text,
        missing_place=inbound.missing_place,
    )
    return Conversation(
        channel=intake.channel, address=inbound.address, reference=reference, receipt=receipt
    )


async def take(gateway: Gateway, inbound: Inbound, *, source: str) -> bool:
    """Make one citizen message durable as an intake with its conversation; a failure is
    a 503, so the channel sends the post again."""
    try:
        return await gateway.submit(
            Submitted(intake=inbound.intake, source=source),
            key_name=None,
            conversation=_conversation(inbound),
        )
    except Exception as exc:  # whatever kept it from being durable: the channel retries
        log.error(
            "channel message not stored, the channel is asked to send it again",
            channel=inbound.intake.channel.value,
            intake_id=str(inbound.intake.intake_id),
            error=f"{type(exc).__name__}: {exc}",
        )
        raise Refusal(503, "the report could not be stored now; send it again") from None


def _secret(value: SecretStr | None, name: str, channel: str) -> str:
    """A channel's configured secret; without it every post is refused (503: the channel
    keeps its messages and sends them again once the secret is set)."""
    secret = value.get_secret_value() if value is not None else ""
    if not secret:
        log.error("webhook refused: its secret is not set", channel=channel, setting=name)
        raise Refusal(503, f"the {channel} webhook is not configured")
    return secret


def _signature_refusal(header: str | None, channel: str) -> Refusal:
    log.warning("webhook refused: signature missing or wrong", channel=channel)
    if not header:
        return Refusal(401, "signature missing")
    return Refusal(403, "signature does not match")


def _whatsapp_routes(app: FastAPI) -> None:
    @app.get("/webhooks/whatsapp", response_class=PlainTextResponse, tags=["channels"])
    async def whatsapp_verify(request: Request) -> PlainTextResponse:
        """Meta's verification handshake: the challenge back when the verify token is ours."""
        token = gateway_of(request).whatsapp.verify_token
        challenge = verification_challenge(
            request.query_params, verify_token=token.get_secret_value() if token else None
        )
        if challenge is None:
            if token is None:
                log.error("whatsapp verification refused: SIAGA_WHATSAPP_VERIFY_TOKEN is not set")
            return PlainTextResponse("verification refused", status_code=403)
        return PlainTextResponse(challenge)

    @app.post("/webhooks/whatsapp", tags=["channels"])
    async def whatsapp_webhook(request: Request) -> Response:
        """Messages from WhatsApp users (and delivery statuses, ignored), signed by Meta."""
        gateway = gateway_of(request)
        secret = _secret(gateway.whatsapp.app_secret, "SIAGA_WHATSAPP_APP_SECRET", "whatsapp")
        body = await request.body()
        header = request.headers.get(WHATSAPP_SIGNATURE)
        if not whatsapp_signed(body, header, app_secret=secret):
            raise _signature_refusal(header, "whatsapp")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("whatsapp webhook: a signed post that is not JSON, nothing taken")
            return Response(status_code=200)
        post = whatsapp_post(payload, now=gateway.clock())
        new = 0
        for inbound in post.messages:
            new += await take(gateway, inbound, source=WHATSAPP_SOURCE)
        log.info(
            "whatsapp post",
            messages=len(post.messages),
            new=new,
            statuses=post.statuses,
            ignored=post.ignored,
        )
        return Response(status_code=200)


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "not a form (application/x-www-form-urlencoded)") from None


def _sms_routes(app: FastAPI) -> None:
    @app.post("/webhooks/sms", tags=["channels"])
    async def sms_webhook(request: Request) -> Response:
        """An SMS from a citizen, posted as a form by a Twilio-style gateway and signed."""
        gateway = gateway_of(request)
        token = _secret(gateway.sms.auth_token, "SIAGA_SMS_AUTH_TOKEN", "sms")
        params = _form(await request.body())
        url = gateway.sms.webhook_url or str(request.url)
        header = request.headers.get(SMS_SIGNATURE)
        if not sms_signed(url, params, header, auth_token=token):
            raise _signature_refusal(header, "sms")
        inbound = sms_message(params, now=gateway.clock())
        if inbound is None:
            log.info("sms post without a message (a status callback?), nothing taken")
        else:
            new = await take(gateway, inbound, source=SMS_SOURCE)
            log.info("sms post", new=new, intake_id=str(inbound.intake.intake_id))
        return Response(TWIML_EMPTY, media_type="text/xml")


def webhook_routes(app: FastAPI) -> None:
    """The router of the channels' webhooks: `GET|POST /webhooks/whatsapp`, `POST
    /webhooks/sms`."""
    _whatsapp_routes(app)
    _sms_routes(app)
