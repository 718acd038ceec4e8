"""The scripted Batang scenario of `siaga up --demo`: calls, complaints and field crews."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from schemas.events import UnitDispatchedV1
from schemas.ids import derive_id
from schemas.vocabulary import Channel, UnitStatus
from services.clients.field_unit import answer_orders, report_status
from services.clients.operator import new_intake, submit
from services.common.settings import CommonSettings


@dataclass(frozen=True)
class ScriptedReport:
    """One report of the scenario, sent `after_s` seconds after the previous one."""

    after_s: float
    channel: Channel
    text: str
    phone: str | None = None
    place_hint: str | None = None


SCENARIO: tuple[ScriptedReport, ...] = (
    ScriptedReport(
        1,
        Channel.CALL112,
        "Tolong, ada kecelakaan motor di depan pasar Limpung, korban luka parah",
        "+6281234567890",
    ),
    ScriptedReport(
        3,
        Channel.PSC119,
        "Bapak saya pingsan tidak sadar, napasnya berat, mohon ambulan",
        "+6285640001122",
        "Desa Kalibeluk, Warungasem",
    ),
    ScriptedReport(
        3,
        Channel.WHATSAPP,
        "Lampu jalan di dekat alun-alun Batang mati sudah seminggu, gelap sekali",
        "+6289912345678",
    ),
    ScriptedReport(
        3,
        Channel.CALL112,
        "Kebakaran rumah warga di Gringsing, apinya besar, tolong damkar",
        "+6281390001234",
    ),
    ScriptedReport(
        3,
        Channel.WHATSAPP,
        "Sampah menumpuk di pasar Bandar sudah tiga hari, baunya menyengat",
        "+6287712340000",
    ),
)

# How long a demo crew takes for each step after its order.
CREW_STEPS: tuple[tuple[float, UnitStatus], ...] = (
    (2.0, UnitStatus.ACKNOWLEDGED),
    (2.0, UnitStatus.EN_ROUTE),
    (3.0, UnitStatus.ON_SCENE),
    (4.0, UnitStatus.RETURNING),
    (2.0, UnitStatus.AVAILABLE),
)


async def _crew(settings: CommonSettings, order: UnitDispatchedV1) -> None:
    for delay, status in CREW_STEPS:
        await asyncio.sleep(delay)
        await report_status(
            settings, unit_id=order.unit_id, status=status, incident_id=order.incident_id
        )


async def play(settings: CommonSettings) -> None:
    """Send the scenario's reports while the demo crews answer the orders of the demo's own
    incidents (a user's incident is the user's to play); a crew whose order is cancelled
    stops."""
    intakes = [
        new_intake(
            channel=report.channel,
            text=report.text,
            phone=report.phone,
            place_hint=report.place_hint,
            operator_id="demo",
        )
        for report in SCENARIO
    ]
    # Triage derives an incident's id from the intake that opens it.
    demo_incidents = {derive_id(intake.intake_id, "incident") for intake in intakes}
    crews = asyncio.create_task(
        answer_orders(
            settings,
            lambda order: _crew(settings, order),
            serves=lambda order: order.incident_id in demo_incidents,
        )
    )
    try:
        for report, intake in zip(SCENARIO, intakes, strict=True):
            await asyncio.sleep(report.after_s)
            await submit(settings, intake)
        await crews
    finally:
        crews.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await crews
