"""Open311 GeoReport v2 at `/open311/v2/`: the services citizens' apps may report, new
service requests (each an intake, triaged like any other) and their status, in JSON and XML.

Errors are the spec's list of `{code, description}` in the format asked for (XML when the
format itself is unknown), with the statuses the spec gives: 404 for what does not exist,
403 for a missing or wrong `api_key`, 400 for anything else. A refused request publishes
nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from fastapi import FastAPI, Request, Response

from services.common.gazetteer import load_gazetteer
from services.common.logging import get_logger
from services.common.settings import CommonSettings
from services.gateway.app import Gateway, Router, gateway_of
from services.gateway.http import Refusal
from services.gateway.intake import Submitted
from services.gateway.keys import ApiKey, Scope
from services.gateway.open311_catalogue import Catalogue, load_catalogue
from services.gateway.open311_forms import (
    FIELDS,
    FORM,
    MAX_RESULTS,
    Filters,
    Open311Error,
    intake_of,
    read_filters,
    read_form,
    read_request,
)
from services.gateway.open311_store import (
    progress_of,
    record_request,
    requests_by_id,
    requests_page,
)
from services.gateway.open311_view import (
    Document,
    Format,
    ServiceRequest,
    StoredRequest,
    created_document,
    definition_document,
    errors_document,
    render,
    requests_document,
    service_request,
    services_document,
)

log = get_logger("gateway")

PREFIX = "/open311/v2"
SOURCE = "/siaga/gateway/open311"
TAG = "Open311 GeoReport v2"


def catalogue_for(common: CommonSettings) -> Catalogue:
    """The services of the regency's pack, with the agencies of triage's lexicon (the
    same folder triage reads, `SIAGA_TRIAGE_LEXICON_DIR`)."""
    from services.triage.bootstrap import TriageSettings
    from services.triage.lexicon import built_in_lexicon, load_lexicon

    folder = TriageSettings().lexicon_dir
    lexicon = built_in_lexicon() if folder is None else load_lexicon(folder)
    pack = common.home.pack()
    return load_catalogue(
        pack.open311,
        agencies={c: words.agency for c, words in lexicon.categories.items()},
        gazetteer=load_gazetteer(pack),
    )


async def _answer(fmt: str, work: Callable[[], Awaitable[Document]]) -> Response:
    """Run `work` for the format the extension names, and answer its document or the
    spec's error list."""
    chosen = Format(fmt) if fmt in {f.value for f in Format} else None
    headers: dict[str, str] = {}
    try:
        if chosen is None:
            raise Open311Error(404, f"format {fmt!r}: this service speaks json and xml")
        document, status = await work(), 200
    except Open311Error as exc:
        document, status = errors_document(exc.status, exc.descriptions), exc.status
        headers = exc.headers
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        # The spec's "general service error": the client is told to try again, the cause
        # goes to the log only.
        log.error("open311 request failed", error=f"{type(exc).__name__}: {exc}")
        document, status = errors_document(400, ["service unavailable: try again later"]), 400
    fmt_out = chosen or Format.XML
    return Response(
        render(document, fmt_out),
        status_code=status,
        media_type=fmt_out.media_type,
        headers=headers,
    )


def _throttle(gateway: Gateway, request: Request) -> None:
    """The public look-ups are limited per client address, as keys are per key."""
    client = request.client.host if request.client else "unknown"
    wait = gateway.limiter.take(f"open311:{client}", now=time.monotonic())
    if wait:
        raise Open311Error(429, "too many requests", headers={"Retry-After": str(int(wait) + 1)})


async def _key(gateway: Gateway, secret: str | None) -> ApiKey:
    """The key of a new request, or the spec's 403 (429 when it goes too fast)."""
    try:
        return await gateway.authorize(secret, Scope.OPEN311)
    except Refusal as exc:
        if exc.status == 429:
            raise Open311Error(429, exc.reason, headers=exc.headers) from None
        raise Open311Error(403, f"api_key refused: {exc.reason}") from None


async def _shown(
    gateway: Gateway, catalogue: Catalogue, stored: Sequence[StoredRequest]
) -> list[ServiceRequest]:
    progress = await progress_of(gateway.reads, stored) if stored else {}
    return [service_request(s, progress.get(s.intake_id), catalogue) for s in stored]


async def matching(
    gateway: Gateway, catalogue: Catalogue, filters: Filters
) -> list[ServiceRequest]:
    """The requests a search asks for: by id, or newest first in the window, of the
    services and statuses named, at most the spec's 1000."""
    if filters.ids is not None:
        return await _shown(gateway, catalogue, await requests_by_id(gateway.pool, ids=filters.ids))
    found: list[ServiceRequest] = []
    after: StoredRequest | None = None
    while len(found) < MAX_RESULTS:
        page = await requests_page(
            gateway.pool,
            service_codes=filters.service_codes,
            start=filters.start,
            end=filters.end,
            after=after,
            limit=MAX_RESULTS,
        )
        shown = await _shown(gateway, catalogue, page)
        found += [r for r in shown if not filters.statuses or r.status in filters.statuses]
        if len(page) < MAX_RESULTS:
            break
        after = page[-1]
    return found[:MAX_RESULTS]


async def create_request(gateway: Gateway, catalogue: Catalogue, request: Request) -> Document:
    """POST requests: check the form and the key, then make the request an intake, durable
    with its Open311 details in one transaction, and answer its id at once."""
    fields = read_form(request.headers.get("content-type", ""), await request.body())
    key = await _key(gateway, fields.get("api_key") or request.query_params.get("api_key"))
    new = read_request(fields, catalogue)
    intake_id, now = uuid.uuid4(), gateway.clock()
    intake = intake_of(new, intake_id=intake_id, now=now, catalogue=catalogue)

    async def keep(conn: asyncpg.Connection) -> None:
        await record_request(conn, intake_id=intake_id, request=new, now=now)

    await gateway.submit(Submitted(intake, source=SOURCE), key_name=key.name, also=keep)
    return created_document(intake_id, notice=catalogue.notices.received, account_id=new.account_id)


def _service_routes(app: FastAPI, catalogue: Catalogue) -> None:
    @app.get(f"{PREFIX}/services.{{fmt}}", summary="Open311: the services", tags=[TAG])
    async def services(request: Request, fmt: str) -> Response:
        """Every complaint category a citizen may report, with its agency as its group."""

        async def work() -> Document:
            _throttle(gateway_of(request), request)
            return services_document(catalogue.services)

        return await _answer(fmt, work)

    @app.get(f"{PREFIX}/services/{{code}}.{{fmt}}", summary="Open311: a service", tags=[TAG])
    async def definition(request: Request, code: str, fmt: str) -> Response:
        """A service's definition (no attributes); 404 for an unknown code."""

        async def work() -> Document:
            _throttle(gateway_of(request), request)
            service = catalogue.find(code)
            if service is None:
                raise Open311Error(404, f"service_code {code!r}: no such service")
            return definition_document(service)

        return await _answer(fmt, work)


# The form of POST requests, for the API's own documentation (the body is read by hand).
_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {
                "schema": {
                    "type": "object",
                    "required": ["api_key", "service_code"],
                    "properties": {name: {"type": "string"} for name in sorted(FIELDS)},
                }
            }
        },
    }
}


def _request_routes(app: FastAPI, catalogue: Catalogue) -> None:
    @app.post(
        f"{PREFIX}/requests.{{fmt}}",
        summary="Open311: report",
        tags=[TAG],
        openapi_extra=_FORM_BODY,
    )
    async def create(request: Request, fmt: str) -> Response:
        """A new service request (form-encoded, with an `api_key` of scope open311)."""

        async def work() -> Document:
            return await create_request(gateway_of(request), catalogue, request)

        return await _answer(fmt, work)

    @app.get(f"{PREFIX}/requests.{{fmt}}", summary="Open311: search requests", tags=[TAG])
    async def search(request: Request, fmt: str) -> Response:
        """Requests by id, or by service, time window (90 days at most) and status."""

        async def work() -> Document:
            gateway = gateway_of(request)
            _throttle(gateway, request)
            filters = read_filters(request.query_params.getlist, now=gateway.clock())
            return requests_document(await matching(gateway, catalogue, filters))

        return await _answer(fmt, work)

    @app.get(f"{PREFIX}/requests/{{request_id}}.{{fmt}}", summary="Open311: a request", tags=[TAG])
    async def one(request: Request, request_id: str, fmt: str) -> Response:
        """One request's status; 404 for an unknown id."""

        async def work() -> Document:
            gateway = gateway_of(request)
            _throttle(gateway, request)
            try:
                ids = [uuid.UUID(request_id)]
            except ValueError:
                ids = []
            stored = await requests_by_id(gateway.pool, ids=ids) if ids else []
            if not stored:
                raise Open311Error(404, f"service_request_id {request_id!r}: no such request")
            return requests_document(await _shown(gateway, catalogue, stored))

        return await _answer(fmt, work)


def _fallback_route(app: FastAPI) -> None:
    @app.api_route(f"{PREFIX}/{{rest:path}}", methods=["GET", "POST"], include_in_schema=False)
    async def elsewhere(rest: str) -> Response:
        """Anything else under the prefix: the spec's 404, in the format its extension names."""
        fmt = rest.rpartition(".")[2]

        async def work() -> Document:
            raise Open311Error(404, f"{PREFIX}/{rest}: no such resource")

        return await _answer(fmt if fmt in {f.value for f in Format} else "xml", work)


def open311_routes(catalogue: Catalogue) -> Router:
    """The Open311 router, serving `catalogue`."""

    def mount(app: FastAPI) -> None:
        _service_routes(app, catalogue)
        _request_routes(app, catalogue)
        _fallback_route(app)  # last: it answers whatever the others do not

    return mount
