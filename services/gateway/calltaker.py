"""The call-taker's intake form: triage's preview while the call-taker types, and the
intake published from the browser (the producer client, attributed to the person)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError

from schemas.common import MAX_NAME, MAX_TEXT, Caller
from schemas.errors import first_error
from schemas.events import IntakeReceivedV1
from schemas.vocabulary import Channel
from services.common.settings import CommonSettings
from services.gateway.app import gateway_of
from services.gateway.http import Refusal
from services.gateway.intake import Submitted
from services.gateway.pages import action_session, page_session, render
from services.gateway.people import Role
from services.triage.offline import OfflineTriage

TAKERS = (Role.CALL_TAKER, Role.SUPERVISOR)


class Draft(BaseModel):
    """What the call-taker has typed so far."""

    channel: Channel = Channel.CALL112
    text: str = Field(default="", max_length=MAX_TEXT)
    place_hint: str | None = Field(default=None, max_length=MAX_NAME)


class Entry(Draft):
    """An intake as the call-taker submits it."""

    phone: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=MAX_NAME)


def preview(triage: OfflineTriage, draft: Draft) -> dict[str, Any]:
    """What triage would decide of the draft: category, priority, agency, place, questions."""
    return triage.triage(
        text=draft.text, channel=draft.channel, place_hint=(draft.place_hint or None)
    )


async def _body(request: Request, model: type[Draft]) -> Any:
    try:
        return model.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        raise Refusal(400, f"not a valid entry: {str(exc).splitlines()[0]}") from None


def intake_routes(common: CommonSettings) -> Any:
    """The form at /intake, its preview and its submission (call-takers and supervisors)."""
    triage = OfflineTriage.from_settings(common)  # the gazetteer and model, loaded once

    def routes(app: FastAPI) -> None:
        @app.get("/intake", include_in_schema=False)
        async def form(request: Request) -> HTMLResponse:
            """The intake form."""
            session = await page_session(request, TAKERS)
            return render(request, "intake.html", session=session, channels=list(Channel))

        @app.post("/intake/preview", include_in_schema=False)
        async def show_preview(request: Request) -> JSONResponse:
            """Triage's decision on what is typed so far."""
            await action_session(request, TAKERS, csrf=None)
            return JSONResponse(preview(triage, await _body(request, Draft)))

        @app.post("/intake", include_in_schema=False)
        async def submit(request: Request) -> JSONResponse:
            """Publish the intake, attributed to the call-taker (its `operator_id`)."""
            session = await action_session(request, TAKERS, csrf=None)
            entry: Entry = await _body(request, Entry)
            gateway = gateway_of(request)
            try:
                intake = IntakeReceivedV1(
                    intake_id=uuid.uuid4(),
                    channel=entry.channel,
                    received_at=gateway.clock(),
                    caller=Caller(phone=entry.phone or None, name=entry.name or None),
                    text=entry.text,
                    place_hint=entry.place_hint or None,
                    operator_id=session.person.name,
                )
            except ValidationError as exc:
                where, message = first_error(exc)
                raise Refusal(400, f"invalid {where}: {message}") from None
            await gateway.submit(
                Submitted(intake=intake, source="/siaga/gateway/intake-form"),
                key_name=f"person:{session.person.name}",
            )
            return JSONResponse({"intake_id": str(intake.intake_id)}, status_code=202)

    return routes
