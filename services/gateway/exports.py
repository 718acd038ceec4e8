"""What the gateway exports from the read model: an incident as NENA EIDO (and CAP alerts)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.gateway.app import gateway_of, key_with
from services.gateway.eido import incident_eido
from services.gateway.http import Refusal
from services.gateway.keys import ApiKey, Scope

# Batang's time: the documents carry +07:00, as a command centre reads them.
WIB = ZoneInfo("Asia/Jakarta")
EIDO_KEY = key_with(Scope.EIDO)


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
