"""The scripted Batang scenario of `siaga up --demo`: calls, complaints and field crews."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from schemas.events import UnitDispatchedV1
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


async def _field_crews(settings: CommonSettings) -> None:
    """Every unit answers its orders, as a crew with a tablet would."""
    await answer_orders(settings, lambda order: _crew(settings, order))


async def play(settings: CommonSettings) -> None:
    """Send the scenario's reports while the demo crews answer their orders."""
    crews = asyncio.create_task(_field_crews(settings))
    try:
        for report in SCENARIO:
            await asyncio.sleep(report.after_s)
            await submit(
                settings,
                new_intake(
                    channel=report.channel,
                    text=report.text,
                    phone=report.phone,
                    place_hint=report.place_hint,
                    operator_id="demo",
                ),
            )
        await crews
    finally:
        crews.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await crews
