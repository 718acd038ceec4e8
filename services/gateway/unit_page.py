"""The field unit's page (`/unit`): a crew's phone shows its unit's order and reports its
status; the dispatcher checks each report as it checks every unit report."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.common import AwareInstant, Location
from schemas.errors import first_error
from schemas.events import UnitStatusReportedV1
from schemas.vocabulary import UnitStatus
from services.clients.field_unit import judge_on_board, status_event
from services.common.logging import get_logger
from services.common.outbox import Outgoing, write_outbox
from services.common.readable import wib_time
from services.dispatcher.runcards import TravelSpeeds
from services.dispatcher.unit_reports import Refused, check_report, state_on_board
from services.gateway.app import Gateway, Router, gateway_of, key_with
from services.gateway.http import Refusal
from services.gateway.keys import ApiKey, Scope
from services.gateway.pages import (
    STRINGS,
    TEMPLATES,
    action_session,
    language,
    page_session,
    render,
)
from services.gateway.people import Person, Role
from services.gateway.unit_view import BUTTONS, UnitView, unit_view
from services.projector.queries import board_unit, find_incident

log = get_logger("gateway.unit")
# What the page's script says by itself (the rest comes rendered from the server).
SCRIPT_STRINGS = (
    "unit_offline",
    "unit_sending",
    "unit_sent",
    "unit_confirmed",
    "unit_unconfirmed",
    "unit_not_sent",
    "unit_refused",
    "session_ended",
    "sign_in",
)


class StatusReport(BaseModel):
    """What the page sends when the crew presses a status."""

    model_config = ConfigDict(extra="forbid")

    unit_id: str = Field(max_length=64)
    status: UnitStatus
    position: Location | None = None  # the phone's, when the browser may tell it


class KeyedStatusReport(BaseModel):
    """A unit's status from a client with a key of scope `unit` (`siaga unit status`, a
    fleet's tablets): the incident it names, else its order's."""

    model_config = ConfigDict(extra="forbid")

    status: UnitStatus
    incident_id: UUID | None = None
    location: Location | None = None
    note: str | None = Field(default=None, max_length=200)
    # The crew's own time makes the report's event id: a client that gives up waiting and
    # sends the same report another way (`siaga unit status` to the broker) with the same
    # time has it counted once.
    reported_at: AwareInstant | None = None


UNIT_KEY = key_with(Scope.UNIT)


def _unit_of(person: Person) -> str:
    assert person.unit_id is not None  # a unit's person always has one (check_person)
    return person.unit_id


async def current_view(request: Request, unit_id: str, *, speeds: TravelSpeeds) -> UnitView:
    """The unit's page as the read model has it now, in the request's language."""
    gateway = gateway_of(request)
    async with gateway.reads.acquire() as conn:
        unit = await board_unit(conn, unit_id)
        incident = None
        if unit is not None and unit.incident_id is not None:
            incident = await find_incident(conn, str(unit.incident_id))
    lang = language(request)
    return unit_view(
        unit_id, unit, incident, now=gateway.clock(), speeds=speeds, t=STRINGS[lang], lang=lang
    )


def order_html(view: UnitView, lang: str) -> str:
    """The part of the page that changes: status, order and buttons."""
    return TEMPLATES.get_template("unit_order.html").render(view=view, t=STRINGS[lang])


async def _report_body(request: Request) -> StatusReport:
    try:
        return StatusReport.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError) as exc:
        first = first_error(exc)[1] if isinstance(exc, ValidationError) else "not JSON"
        raise Refusal(400, f"a report is {{unit_id, status, position?}}: {first}") from None


async def publish_report(
    gateway: Gateway, person: Person, body: StatusReport
) -> UnitStatusReportedV1:
    """Check the crew's report as the dispatcher will (on the board, a moment behind it),
    then publish it through the gateway's outbox, attributed to the person."""
    unit_id = _unit_of(person)
    if body.unit_id != unit_id:
        raise Refusal(403, f"{person.name} reports for unit {unit_id} only")
    if body.status not in BUTTONS:
        raise Refusal(400, f"a crew reports one of {', '.join(s.value for s in BUTTONS)}")
    async with gateway.reads.acquire() as conn:
        unit = await board_unit(conn, unit_id)
    if unit is None:
        raise Refusal(409, f"unit {unit_id} is not in the fleet")
    state = state_on_board(unit)
    if state.status is body.status:
        raise Refusal(409, f"unit {unit_id} is {body.status.value} already")
    now = gateway.clock()
    report = UnitStatusReportedV1(
        unit_id=unit_id,
        status=body.status,
        incident_id=state.incident_id,
        reported_at=now,
        location=body.position,
        note=f"reported by {person.name} on the unit page",
    )
    verdict = check_report(state, report, now=now)
    if isinstance(verdict, Refused):
        raise Refusal(409, verdict.reason)
    await send_report(gateway, report)
    return report


async def send_report(gateway: Gateway, report: UnitStatusReportedV1) -> None:
    """Publish a checked report through the gateway's outbox (durable once this returns)."""
    outgoing = [Outgoing.of(status_event(report), gateway.topics)]
    async with gateway.pool.acquire() as conn, conn.transaction():
        await write_outbox(conn, outgoing)
    gateway.relay.send_committed(outgoing)
    log.info("unit report sent", unit_id=report.unit_id, status=report.status.value)


async def publish_keyed_report(
    gateway: Gateway, unit_id: str, body: KeyedStatusReport, *, key: ApiKey
) -> UnitStatusReportedV1:
    """Check a keyed client's report as `siaga unit status` always has (the dispatcher's
    rule on the board, a refusal read again while the board catches up), then send it."""
    reported_at = body.reported_at or gateway.clock()
    async with gateway.reads.acquire() as conn:
        incident_id, refusal = await judge_on_board(
            conn,
            unit_id=unit_id,
            status=body.status,
            incident_id=body.incident_id,
            clock=gateway.clock,
            reported_at=reported_at,
        )
    if refusal is not None:
        raise Refusal(409, refusal)
    report = UnitStatusReportedV1(
        unit_id=unit_id,
        status=body.status,
        incident_id=incident_id,
        reported_at=reported_at,
        location=body.location,
        note=body.note,
    )
    await send_report(gateway, report)
    log.info("keyed unit report", unit_id=unit_id, key=key.name)
    return report


def _accepted(report: UnitStatusReportedV1) -> JSONResponse:
    return JSONResponse(
        {
            "unit_id": report.unit_id,
            "status": report.status.value,
            "incident_id": str(report.incident_id) if report.incident_id else None,
        },
        status_code=202,
    )


def unit_routes(speeds: TravelSpeeds) -> Router:
    """`GET /unit` (the page), `GET /unit/state` (what it polls), `POST /unit/status`."""

    def routes(app: FastAPI) -> None:
        @app.get("/unit", include_in_schema=False)
        async def unit_page(request: Request) -> HTMLResponse:
            """The crew's page: its unit's order and the statuses it may report."""
            session = await page_session(request, [Role.UNIT])
            lang = language(request)
            view = await current_view(request, _unit_of(session.person), speeds=speeds)
            return render(
                request,
                "unit.html",
                session=session,
                view=view,
                order_html=order_html(view, lang),
                script_strings={k: STRINGS[lang][k] for k in SCRIPT_STRINGS},
            )

        @app.get("/unit/state", include_in_schema=False)
        async def unit_state(request: Request) -> JSONResponse:
            """The unit's status, order and buttons, rendered, for the page to poll."""
            session = await action_session(request, [Role.UNIT], csrf=None)
            view = await current_view(request, _unit_of(session.person), speeds=speeds)
            return JSONResponse(_state(view, language(request), gateway_of(request)))

        @app.post("/unit/status", include_in_schema=False, status_code=202)
        async def unit_status(request: Request) -> JSONResponse:
            """The crew reports a status (JSON, with the page's X-CSRF-Token)."""
            session = await action_session(request, [Role.UNIT], csrf=None)
            body = await _report_body(request)
            return _accepted(await publish_report(gateway_of(request), session.person, body))

        @app.post(
            "/units/{unit_id}/status",
            status_code=202,
            summary="Report a unit's status",
            description=(
                "A unit's status as a field client reports it: `status`, the `incident_id` "
                "it is about (its order's when none is named), `location` and `note` if "
                "known, and `reported_at`, the crew's own time (now when absent; the same "
                "report sent again with the same time counts once). Checked as the "
                "dispatcher checks every unit report (the unit is in the fleet, the "
                "incident is its order, the step is legal, the time plausible): 409 with "
                "the reason when it would be refused, 202 once it is durable in the outbox. "
                "Needs a key with scope `unit`."
            ),
            tags=["units"],
        )
        async def keyed_unit_status(
            unit_id: str, request: Request, key: ApiKey = UNIT_KEY
        ) -> JSONResponse:
            try:
                body = KeyedStatusReport.model_validate(json.loads(await request.body()))
            except (ValueError, ValidationError) as exc:
                if not isinstance(exc, ValidationError):
                    raise Refusal(400, "the body is not JSON") from None
                where, message = first_error(exc, where="body")
                raise Refusal(400, f"invalid {where}: {message}") from None
            if len(unit_id) > 64:
                raise Refusal(400, "invalid unit_id: at most 64 characters")
            report = await publish_keyed_report(gateway_of(request), unit_id, body, key=key)
            return _accepted(report)

    return routes


def _state(view: UnitView, lang: str, gateway: Gateway) -> dict[str, Any]:
    return {
        "unit_id": view.unit_id,
        "status": view.status,
        "incident_id": view.order.incident_id if view.order else None,
        "legal": [b.status for b in view.buttons if b.enabled],
        "html": order_html(view, lang),
        "checked": wib_time(gateway.clock(), seconds=True),
    }
