"""One-time set-up of a deployment: migrations, topics and the starter fleet."""

from __future__ import annotations

from services.common.admin import ensure_topics
from services.common.datapack import DataPack, read_toml
from services.common.db import migrate
from services.common.gazetteer import load_gazetteer
from services.common.kafka import producer, send_events
from services.common.outbox import Outgoing
from services.common.settings import CommonSettings
from services.dispatcher.fleet import UnitSpec, load_fleet, registration_events, starter_fleet
from services.dispatcher.runcards import RunCards
from services.gateway.open311_catalogue import Open311File


def check_data_files(pack: DataPack) -> None:
    """Read the pack's run cards, fleet and Open311 services, so that a bad file stops
    `siaga up` with its one line before anything starts, not a stage that dies at every
    restart."""
    RunCards.load(pack.run_cards)
    load_fleet(pack.fleet)
    read_toml(pack.open311, Open311File)


async def seed_fleet(
    settings: CommonSettings, fleet: list[UnitSpec] | None = None
) -> list[UnitSpec]:
    """Publish `UnitRegistered` for each unit (the same ids each time: harmless to repeat)."""
    pack = settings.home.pack()
    gazetteer = load_gazetteer(pack)
    if fleet is None:
        fleet = starter_fleet(gazetteer, facilities=pack.facilities, plan=load_fleet(pack.fleet))
    client = producer(settings)
    await client.start()
    try:
        await send_events(
            client,
            [Outgoing.of(e, settings.topics) for e in registration_events(fleet, gazetteer)],
        )
    finally:
        await client.stop()
    return fleet


async def prepare(
    settings: CommonSettings, *, fleet: list[UnitSpec] | None = None
) -> list[UnitSpec]:
    """Check the pack's data files, apply migrations, create topics, register the fleet;
    safe to run again."""
    check_data_files(settings.home.pack())
    await migrate(settings)
    await ensure_topics(settings)
    return await seed_fleet(settings, fleet)


async def desk_key(settings: CommonSettings) -> str:
    """A new key for this machine's command line (`siaga report` hands reports to the
    gateway with it), the previous one revoked; its secret goes to the owner-only
    `stack.json`, never to the database, which keeps its digest."""
    from datetime import UTC, datetime

    from services.clients.desk import KEY_NAME
    from services.common.db import connect
    from services.gateway.keys import Scope, create_key, revoke_keys

    conn = await connect(settings, schema="gateway", application="siaga-up", role="gateway")
    try:
        async with conn.transaction():
            now = datetime.now(UTC)
            await revoke_keys(conn, name=KEY_NAME, now=now)
            _, secret = await create_key(
                conn, name=KEY_NAME, scopes=frozenset({Scope.INTAKE, Scope.UNIT}), now=now
            )
    finally:
        await conn.close()
    return secret
