"""What the gateway exports from the read model: an incident as NENA EIDO, disasters as
CAP 1.2 alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from services.common.alerting import load_alert_policy
from services.common.settings import CommonSettings
from services.gateway.app import gateway_of, key_with
from services.gateway.cap import ATOM_MEDIA_TYPE, CAP_MEDIA_TYPE, FEED_PATH, alert_xml, alerts_feed
from services.gateway.eido import incident_eido
from services.gateway.http import Refusal
from services.gateway.keys import ApiKey, Scope
from services.projector.queries import cap_alert, current_cap_alerts

# Batang's time: the documents carry +07:00, as a command centre reads them.
WIB = ZoneInfo("Asia/Jakarta")
EIDO_KEY = key_with(Scope.EIDO)
CAP_KEY = key_with(Scope.CAP)


def eido_routes(app: FastAPI) -> None:
    """`GET /EIDO/{incident_id}` (the path of the EIDO OpenAPI)."""

    @app.get(
        "/EIDO/{incident_id}",
        summary="An incident as a NENA EIDO document",
        description="The incident (by its id, or the id of one of its intakes) with its "
        "calls, place, agencies, units with status and ETA, and notes, as the NENA EIDO "
        "schema has it. Needs a key with scope `eido`.",
        tags=["eido"],
    )
    async def get_eido(request: Request, incident_id: str, key: ApiKey = EIDO_KEY) -> JSONResponse:
        gateway = gateway_of(request)
        async with gateway.reads.acquire() as conn:
            document = await incident_eido(
                conn, incident_id, issuer=gateway.issuer, made_at=datetime.now(WIB)
            )
        if document is None:
            raise Refusal(404, f"no incident {incident_id!r}")
        return JSONResponse(document)


def cap_routes(common: CommonSettings) -> Any:
    """`GET /cap/alerts` (an Atom feed of the current alerts) and `GET /cap/alerts/{id}.xml`
    (one alert's CAP 1.2 document), for keys with scope `cap`."""
    sender = load_alert_policy(common.home.pack()).sender_name

    def routes(app: FastAPI) -> None:
        @app.get(
            FEED_PATH,
            summary="The current CAP 1.2 alerts, as an Atom feed",
            description="One entry per current alert message (an alert not yet replaced "
            "or withdrawn, and not expired; a Cancel stays until what it withdraws would "
            "have expired), each linking to its CAP XML. Needs a key with scope `cap`.",
            tags=["cap"],
            response_class=Response,
        )
        async def feed(request: Request, key: ApiKey = CAP_KEY) -> Response:
            gateway = gateway_of(request)
            now = datetime.now(WIB)
            async with gateway.reads.acquire() as conn:
                alerts = await current_cap_alerts(conn, now=now)
            base = gateway.settings.public_url or str(request.base_url).rstrip("/")
            body = alerts_feed(alerts, base_url=base, now=now, author=sender)
            return Response(body, media_type=ATOM_MEDIA_TYPE)

        @app.get(
            FEED_PATH + "/{identifier}.xml",
            summary="One CAP 1.2 alert",
            description="The alert's CAP 1.2 XML (times in +07:00). Needs scope `cap`.",
            tags=["cap"],
            response_class=Response,
        )
        async def one(request: Request, identifier: str, key: ApiKey = CAP_KEY) -> Response:
            gateway = gateway_of(request)
            async with gateway.reads.acquire() as conn:
                alert = await cap_alert(conn, identifier)
            if alert is None:
                raise Refusal(404, f"no alert {identifier!r}")
            return Response(alert_xml(alert), media_type=CAP_MEDIA_TYPE)

    return routes
