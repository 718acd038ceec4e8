"""The command-centre page at `/`: the regency's map with incidents and units, the queues,
the day's counters, an incident's detail, live by server-sent events, and the actions of
call-takers, supervisors and agencies, published as commands through the gateway's outbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic_core import to_jsonable_python

from schemas.common import Contract
from schemas.envelope import new_event
from services.common.outbox import Outgoing, write_outbox
from services.common.settings import CommonSettings
from services.gateway.app import Gateway, Router, gateway_of
from services.gateway.centre_actions import (
    MAY,
    WORK_ORDER_ACTIONS,
    Action,
    BadAction,
    actions_of,
    command_for,
    same_agency,
)
from services.gateway.centre_board import (
    BoardCache,
    board_json,
    load_board,
    masked_text,
    visible_to,
)
from services.gateway.centre_feed import inbox_looker
from services.gateway.centre_reads import calls_of, owner_of
from services.gateway.http import Refusal
from services.gateway.outlines import Outlines, load_outlines
from services.gateway.pages import (
    COOKIE,
    STRINGS,
    action_session,
    current_session,
    language,
    page_session,
    render,
)
from services.gateway.people import Person, Role, Session, session_of
from services.projector.queries import IncidentView, agency_queue, find_incident

CENTRE_ROLES = (Role.CALL_TAKER, Role.SUPERVISOR, Role.VIEWER, Role.AGENCY)
SOURCE = "/siaga/gateway/centre"
# A stream says it is alive this often (and checks the session is still open), so proxies
# keep it and a browser that went away is noticed.
HEARTBEAT_S = 15.0
# The page's script gets these strings (the rest are the server's).
SCRIPT_STRINGS = ("centre_", "status_", "cat_", "type_", "priority", "category", "agency")


def sse(event: str, data: str) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {data}\n\n"


async def reader_session(request: Request) -> Session:
    """The session of someone who may look at the centre's data (401 / 403)."""
    session = await current_session(request)
    if session is None:
        raise Refusal(401, "sign in first")
    if session.person.role not in CENTRE_ROLES:
        raise Refusal(403, f"a {session.person.role.value} may not see the command centre")
    return session


def _incident_id(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Refusal(400, "incident_id: not an incident id") from None


def _may_see(person: Person, agency: str | None, work_order_agency: str | None) -> bool:
    if person.role is not Role.AGENCY:
        return True
    return same_agency(person.agency, agency) or same_agency(person.agency, work_order_agency)


async def incident_detail(gateway: Gateway, person: Person, incident_id: uuid.UUID) -> Any:
    """An incident's detail for the page: the incident with its units and timeline, its
    calls (numbers masked), its work order, and what the person may do."""
    async with gateway.reads.acquire() as conn:
        view = await find_incident(conn, str(incident_id))
        if view is None:
            raise Refusal(404, "no such incident")
        calls = await calls_of(conn, view.incident_id)
        orders = await agency_queue(conn, incident_id=view.incident_id)
    order = orders[0] if orders else None
    if not _may_see(person, view.agency, order.agency if order else None):
        raise Refusal(403, "not an incident of your agency")
    return {
        "incident": to_jsonable_python(_masked_view(view)),
        "calls": [to_jsonable_python(masked_text(c, "text")) for c in calls],
        "work_order": to_jsonable_python(masked_text(order, "summary", "response"))
        if order
        else None,
    }


def _masked_view(view: IncidentView) -> IncidentView:
    """The incident with phone numbers masked in every free text it carries."""
    review = view.review and masked_text(view.review, "note")
    timeline = tuple(masked_text(t, "summary") for t in view.timeline)
    return replace(masked_text(view, "text", "explanation"), review=review, timeline=timeline)


async def publish_command(gateway: Gateway, command: Contract) -> str:
    """Send a command through the gateway's outbox (durable once committed; the relay
    publishes it); returns its event id."""
    event = new_event(command, id=uuid.uuid4(), source=SOURCE, time=gateway.clock())
    outgoing = [Outgoing.of(event, gateway.topics)]
    async with gateway.pool.acquire() as conn, conn.transaction():
        await write_outbox(conn, outgoing)
    gateway.relay.send_committed(outgoing)
    return event.id


async def act(request: Request, action: Action) -> tuple[Contract, str]:
    """Check and publish one action of the page; the command and its event id."""
    session = await action_session_for(request, action)
    try:
        fields = await request.json()
    except ValueError:
        raise Refusal(400, "the body is not JSON") from None
    if not isinstance(fields, dict):
        raise Refusal(400, "the body is not a JSON object")
    incident_id = _incident_id(fields.get("incident_id"))
    gateway = gateway_of(request)
    async with gateway.reads.acquire() as conn:
        owner = await owner_of(conn, incident_id)
    if owner is None:
        raise Refusal(404, "no such incident")
    person = session.person
    if action in WORK_ORDER_ACTIONS:
        if owner.work_order_agency is None:
            raise Refusal(404, "this incident has no work order")
        if person.role is Role.AGENCY and not same_agency(person.agency, owner.work_order_agency):
            raise Refusal(403, "not a work order of your agency")
    try:
        command = command_for(action, fields, by=person.name, at=gateway.clock())
    except BadAction as exc:
        raise Refusal(400, str(exc)) from None
    return command, await publish_command(gateway, command)


async def action_session_for(request: Request, action: Action) -> Session:
    """The session of someone who may take `action` (with the page's form token)."""
    return await action_session(request, MAY[action], csrf=None)


def _script_strings(lang: str) -> dict[str, str]:
    return {k: v for k, v in STRINGS[lang].items() if k.startswith(SCRIPT_STRINGS)}


def centre_routes(common: CommonSettings) -> Router:
    """The page at `/` and what its script asks for; the outlines are made now, so a bad
    boundaries file stops the gateway before it serves."""
    outlines = load_outlines(common.home.pack())
    boards = BoardCache()

    def routes(app: FastAPI) -> None:
        _page_routes(app, outlines)
        _data_routes(app, boards)
        _live_route(app)

        @app.post("/centre/actions/{action}", include_in_schema=False)
        async def take(request: Request, action: str) -> JSONResponse:
            """An action of the page, published as a command in the person's name."""
            try:
                chosen = Action(action)
            except ValueError:
                raise Refusal(404, f"no action {action!r}") from None
            command, event_id = await act(request, chosen)
            return JSONResponse(
                {"command": type(command).__name__, "command_id": event_id}, status_code=202
            )

    return routes


def _page_routes(app: FastAPI, outlines: Outlines) -> None:
    @app.get("/", include_in_schema=False)
    async def centre(request: Request) -> Response:
        """The command centre (a unit's crew goes to its own page)."""
        current = await current_session(request)
        if current is not None and current.person.role is Role.UNIT:
            return RedirectResponse("/unit", status_code=303)
        session = await page_session(request, CENTRE_ROLES)
        return render(
            request,
            "centre.html",
            session=session,
            actions=actions_of(session.person.role),
            strings=_script_strings(language(request)),
        )

    @app.get("/centre/outlines.json", include_in_schema=False)
    async def outline_json(request: Request) -> Response:
        """The regency's kecamatan and desa outlines (public boundaries; cached)."""
        headers = {"ETag": outlines.etag, "Cache-Control": "public, max-age=3600"}
        if request.headers.get("if-none-match") == outlines.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers |= {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return Response(outlines.gzipped, media_type="application/json", headers=headers)
        return Response(outlines.body, media_type="application/json", headers=headers)


def _data_routes(app: FastAPI, boards: BoardCache) -> None:
    @app.get("/centre/board", include_in_schema=False)
    async def board(request: Request) -> Response:
        """The board as the person may see it."""
        session = await reader_session(request)
        gateway = gateway_of(request)
        feed = gateway.changes
        version = feed.version

        async def read() -> Any:
            async with gateway.reads.acquire() as conn:
                return await load_board(conn, now=gateway.clock())

        whole = await boards.get(version if feed.watching else None, read)
        shown = visible_to(whole, session.person)
        if shown is whole:
            return Response(
                boards.encoded(whole, version=version),
                media_type="application/json",
                headers={"Cache-Control": "no-store"},
            )
        return JSONResponse(
            board_json(shown, version=version), headers={"Cache-Control": "no-store"}
        )

    @app.get("/centre/incidents/{incident_id}", include_in_schema=False)
    async def detail(request: Request, incident_id: str) -> JSONResponse:
        """One incident's detail."""
        session = await reader_session(request)
        found = await incident_detail(
            gateway_of(request), session.person, _incident_id(incident_id)
        )
        return JSONResponse(found, headers={"Cache-Control": "no-store"})


def _live_route(app: FastAPI) -> None:
    @app.get("/centre/events", include_in_schema=False)
    async def events(request: Request) -> StreamingResponse:
        """`changed` with the board's new version whenever the read model changes; a
        comment every HEARTBEAT_S seconds; the stream ends when the session does."""
        await reader_session(request)
        gateway = gateway_of(request)
        token = request.cookies.get(COOKIE, "")

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"  # the browser reconnects a second after a drop
            async with gateway.changes.listening(inbox_looker(gateway.reads)) as feed:
                seen = feed.version
                yield sse("changed", str(seen))
                while not feed.closed:
                    version = await feed.wait(seen, timeout=HEARTBEAT_S)
                    if version is not None:
                        seen = version
                        yield sse("changed", str(version))
                    elif not feed.closed:
                        if await session_of(gateway.pool, token=token, now=gateway.clock()) is None:
                            return
                        yield ": alive\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
