"""The claim (one SQL statement) takes the unit the dispatcher's pure ranking puts first,
on a real PostgreSQL: the rule is tested fast without a database, and held to the claim."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas.common import Location, Place
from schemas.events import UnitRegisteredV1
from schemas.vocabulary import Category, Priority, UnitType
from services.dispatcher import repository
from services.dispatcher.decisions import FreeUnit, Need, rank_units, scene_of
from services.dispatcher.runcards import Slot
from tests.conftest import Pipeline

pytestmark = pytest.mark.integration

FALLBACK = (-6.95, 109.8)
NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def stages() -> tuple[str, ...]:
    """No stage runs: the test writes the dispatcher's tables itself."""
    return ()


async def _free_ambulances(conn: asyncpg.Connection) -> list[FreeUnit]:
    rows = await conn.fetch(
        "SELECT unit_id, capabilities, lat, lon FROM units "
        "WHERE status = 'available' AND unit_type = 'ambulance'"
    )
    return [FreeUnit(r["unit_id"], r["capabilities"] or (), r["lat"], r["lon"]) for r in rows]


async def test_the_claim_takes_the_unit_the_ranking_puts_first(pipeline: Pipeline) -> None:
    rng = random.Random(5)
    pool = await asyncpg.create_pool(
        pipeline.settings.database_url(),
        min_size=1,
        max_size=1,
        server_settings={"search_path": "dispatcher, public"},
    )
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            for n in range(60):
                await repository.register_unit(
                    conn,
                    unit=UnitRegisteredV1(
                        unit_id=f"AMB-{n:02d}",
                        unit_type=UnitType.AMBULANCE,
                        agency="PSC 119",
                        base="b",
                        # a few share a position, so ties go by name
                        location=Location(
                            lat=round(rng.uniform(-7.1, -6.85), 2 if n % 5 else 1),
                            lon=round(rng.uniform(109.6, 110.1), 2 if n % 5 else 1),
                        ),
                        capabilities=["ALS"] if rng.random() < 0.3 else [],
                        registered_at=NOW,
                    ),
                )
            checked = 0
            for _ in range(60):
                incident = uuid.uuid4()
                place = (
                    Place(
                        lat=rng.uniform(-7.1, -6.85),
                        lon=rng.uniform(109.6, 110.1),
                        confidence=0.9,
                        method="desa",
                    )
                    if rng.random() < 0.8
                    else None
                )
                need = Need(
                    incident,
                    0,
                    Slot(UnitType.AMBULANCE, "ALS" if rng.random() < 0.5 else None),
                    Category.MEDICAL,
                    Priority.P1,
                    place,
                )
                claim = conn.transaction()
                await claim.start()
                passed = set(rng.sample([f"AMB-{n:02d}" for n in range(60)], 5))
                for unit_id in passed:
                    await repository.pass_over(conn, incident_id=incident, unit_id=unit_id)
                expected = rank_units(
                    need, await _free_ambulances(conn), passed_over=passed, fallback=FALLBACK
                )
                lat, lon = scene_of(need, fallback=FALLBACK)
                claimed = await repository.claim_unit(
                    conn,
                    incident_id=incident,
                    unit_type="ambulance",
                    capability=need.wanted.capability,
                    lat=lat,
                    lon=lon,
                    at=NOW,
                )
                assert claimed is not None and claimed.unit_id == expected[0], (need, expected)
                checked += 1
                # some claims stay taken, so later ones choose among fewer units
                await (claim.commit() if rng.random() < 0.4 else claim.rollback())
    finally:
        await pool.close()
    assert checked == 60
