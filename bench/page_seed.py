"""A busy day's read model for the page bench: open incidents (mostly complaints waiting
on their agency, the rest emergencies with a unit on the way or waiting for one) and a
fleet, written straight into the bench's own read model, as the projector would have."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from schemas.vocabulary import Category, Channel, Priority, UnitStatus, UnitType
from services.common.gazetteer import Area, Gazetteer
from services.gateway.centre_reads import ENDED
from services.triage.classifier import SLA_SECONDS
from services.triage.lexicon import Lexicon, built_in_lexicon

# Of the incidents open at one moment, few are emergencies: those end within the hour,
# while a complaint stays open for days, until its agency answers.
EMERGENCY_SHARE = 0.15
# (weight, category, unit sent, what a caller says), as the bench's intakes mix them.
EMERGENCIES: tuple[tuple[int, Category, UnitType, str], ...] = (
    (14, Category.MEDICAL, UnitType.AMBULANCE, "tolong ambulan, ibu saya sesak napas di {place}"),
    (6, Category.TRAFFIC_ACCIDENT, UnitType.AMBULANCE, "tabrakan truk dan motor di {place}"),
    (4, Category.FIRE, UnitType.FIRE_TRUCK, "kebakaran gudang di {place}, asap tebal"),
    (3, Category.CRIME, UnitType.POLICE, "ada pencurian di toko {place}, pelaku lari"),
    (2, Category.DISASTER, UnitType.BPBD_TEAM, "tanah longsor menutup jalan di {place}"),
    (2, Category.RESCUE, UnitType.RESCUE, "warga hanyut di sungai dekat {place}"),
)
COMPLAINTS: tuple[tuple[int, Category, Channel, str], ...] = (
    (
        23,
        Category.INFRASTRUCTURE,
        Channel.WHATSAPP,
        "jalan rusak parah di {place}, mohon diperbaiki",
    ),
    (10, Category.ENVIRONMENT, Channel.WHATSAPP, "sampah belum diangkut seminggu di {place}"),
    (8, Category.CIVIL_REGISTRY, Channel.WEB, "cara mengurus KTP hilang untuk warga {place}"),
    (6, Category.UTILITIES, Channel.SMS, "air PDAM tidak mengalir di {place} sejak pagi"),
    (6, Category.SOCIAL_WELFARE, Channel.WHATSAPP, "bantuan sosial belum diterima warga {place}"),
    (4, Category.PUBLIC_ORDER, Channel.INSTAGRAM, "parkir liar menutup jalan di {place}"),
    (2, Category.HEALTH_SERVICE, Channel.WEB, "antrean puskesmas {place} sangat lama"),
)
# Kinds of unit in the seeded part of the fleet (weight, kind, agency).
UNIT_KINDS: tuple[tuple[int, UnitType, str], ...] = (
    (35, UnitType.AMBULANCE, "PSC 119"),
    (25, UnitType.POLICE, "Polres"),
    (15, UnitType.FIRE_TRUCK, "Damkar"),
    (10, UnitType.BPBD_TEAM, "BPBD"),
    (10, UnitType.RESCUE, "SAR"),
    (5, UnitType.PUBLIC_WORKS_CREW, "DPUPR"),
)
ON_THE_WAY = (UnitStatus.DISPATCHED, UnitStatus.EN_ROUTE, UnitStatus.ON_SCENE)
ANSWER_WITHIN = timedelta(seconds=SLA_SECONDS[Priority.P3])


@dataclass(frozen=True)
class SeedIncident:
    """A row of `incidents` (the columns the pages read)."""

    incident_id: uuid.UUID
    status: str
    status_at: datetime
    category: str
    priority: str
    agency: str
    confidence: float
    explanation: str
    needs_review: bool
    needs_confirmation: bool
    questions: str | None  # jsonb, as text
    sla_seconds: int
    channel: str
    text: str
    kecamatan_code: str
    kecamatan: str
    desa_code: str
    desa: str
    lat: float
    lon: float
    received_at: datetime
    opened_at: datetime
    classified_at: datetime
    first_dispatched_at: datetime | None
    escalated_at: datetime | None


@dataclass(frozen=True)
class SeedUnit:
    """A row of `units`."""

    unit_id: str
    unit_type: str
    agency: str
    base: str
    lat: float
    lon: float
    status: str
    status_at: datetime
    incident_id: uuid.UUID | None
    assigned_at: datetime | None
    position_at: datetime


@dataclass(frozen=True)
class SeedDispatch:
    """A row of `incident_units`: a unit sent to an incident."""

    incident_id: uuid.UUID
    unit_id: str
    unit_type: str
    dispatch_id: uuid.UUID
    dispatched_at: datetime
    eta_seconds: int
    status: str
    status_at: datetime


@dataclass(frozen=True)
class SeedWorkOrder:
    """A row of `work_orders`: a complaint's order to its agency."""

    work_order_id: uuid.UUID
    incident_id: uuid.UUID
    agency: str
    category: str
    priority: str
    summary: str
    issued_at: datetime
    due_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    response: str | None


@dataclass(frozen=True)
class SeedStep:
    """A row of `timeline` (why an escalated incident waits)."""

    event_id: str
    incident_id: uuid.UUID
    at: datetime
    event_type: str
    summary: str


@dataclass(frozen=True)
class Seed:
    """Rows for each table of the read model."""

    incidents: list[SeedIncident]
    units: list[SeedUnit]
    dispatches: list[SeedDispatch]
    work_orders: list[SeedWorkOrder]
    timeline: list[SeedStep]


@dataclass
class _Drawer:
    """Seeded random choices over the regency's places."""

    gazetteer: Gazetteer
    random: random.Random

    def place(self) -> tuple[Area, Area, float, float]:
        """A desa, its kecamatan and a point near its centre (within about 1 km)."""
        desa = self.random.choice(self.gazetteer.desa)
        jitter = self.random.uniform
        return (
            desa,
            self.gazetteer.kecamatan_of(desa),
            desa.lat + jitter(-0.008, 0.008),
            (desa.lon + jitter(-0.008, 0.008)),
        )

    def uuid(self) -> uuid.UUID:
        """A random (version 4) id from the seeded generator."""
        return uuid.UUID(int=self.random.getrandbits(128), version=4)

    def weighted(self, table: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
        """One row of a table whose rows start with their weight."""
        return self.random.choices(table, weights=[row[0] for row in table])[0]


def seed_rows(
    gazetteer: Gazetteer,
    *,
    incidents: int,
    units: int,
    now: datetime,
    lexicon: Lexicon | None = None,
    seed: int = 23,
) -> Seed:
    """`incidents` open incidents and `units` more units, the same for the same seed:
    emergencies get a free unit of their kind while one is left, the rest wait (escalated);
    complaints get a work order, some answered already, some overdue."""
    draw = _Drawer(gazetteer, random.Random(seed))
    lexicon = lexicon or built_in_lexicon()
    fleet = _units(draw, units, now)
    free = {u.unit_id: u for u in fleet}
    seed_out = Seed([], [], [], [], [])
    for _ in range(incidents):
        if draw.random.random() < EMERGENCY_SHARE:
            _emergency(draw, lexicon, now, free, seed_out)
        else:
            _complaint(draw, lexicon, now, seed_out)
    busy = {d.unit_id: d for d in seed_out.dispatches}
    for unit in fleet:
        sent = busy.get(unit.unit_id)
        if sent is not None:
            unit = dataclasses.replace(
                unit,
                status=sent.status,
                status_at=sent.status_at,
                incident_id=sent.incident_id,
                assigned_at=sent.dispatched_at,
            )
        seed_out.units.append(unit)
    return seed_out


def _units(draw: _Drawer, count: int, now: datetime) -> list[SeedUnit]:
    """The seeded part of the fleet, at bases across the regency, mostly available."""
    out = []
    for i in range(count):
        _, kind, agency = draw.weighted(UNIT_KINDS)
        _, kecamatan, lat, lon = draw.place()
        spare = draw.random.random()
        status = (
            UnitStatus.OUT_OF_SERVICE
            if spare < 0.08
            else UnitStatus.RETURNING
            if spare < 0.13
            else UnitStatus.AVAILABLE
        )
        at = now - timedelta(minutes=draw.random.uniform(1, 240))
        out.append(
            SeedUnit(
                f"S-{kind.value[:4].upper()}-{i:03d}",
                kind.value,
                agency,
                f"Pos {agency} {kecamatan.name}",
                lat,
                lon,
                status.value,
                at,
                None,
                None,
                at,
            )
        )
    return out


def _incident(
    draw: _Drawer,
    lexicon: Lexicon,
    *,
    category: Category,
    channel: Channel,
    template: str,
    received_at: datetime,
) -> SeedIncident:
    """An incident as triage classified it, at a place of the regency."""
    desa, kecamatan, lat, lon = draw.place()
    rule = lexicon.categories[category]
    priority = rule.priority
    if category is Category.MEDICAL and draw.random.random() < 0.3:
        priority = Priority.P1  # a life threat in the report
    confidence = round(draw.random.uniform(0.55, 0.98), 2)
    review = confidence < 0.6
    confirm = priority is Priority.P1 and not review and draw.random.random() < 0.2
    questions = ["Apakah korban sadar?", "Apakah korban bernapas?"] if confirm else None
    return SeedIncident(
        incident_id=draw.uuid(),
        status="classified",
        status_at=received_at + timedelta(seconds=3),
        category=category.value,
        priority=priority.value,
        agency=rule.agency,
        confidence=confidence,
        explanation=f"{category.value}: kata kunci dalam laporan (keyakinan {confidence:.0%})",
        needs_review=review,
        needs_confirmation=confirm,
        questions=json.dumps(questions) if questions else None,
        sla_seconds=SLA_SECONDS[priority],
        channel=channel.value,
        text=template.format(place=desa.name),
        kecamatan_code=kecamatan.code,
        kecamatan=kecamatan.name,
        desa_code=desa.code,
        desa=desa.name,
        lat=lat,
        lon=lon,
        received_at=received_at,
        opened_at=received_at + timedelta(seconds=1),
        classified_at=received_at + timedelta(seconds=2),
        first_dispatched_at=None,
        escalated_at=None,
    )


def _emergency(
    draw: _Drawer, lexicon: Lexicon, now: datetime, free: dict[str, SeedUnit], out: Seed
) -> None:
    """An emergency of the last 90 minutes: a free unit of its kind sent, or none left."""
    _, category, kind, template = draw.weighted(EMERGENCIES)
    channel = Channel.PSC119 if kind is UnitType.AMBULANCE else Channel.CALL112
    received = now - timedelta(minutes=draw.random.uniform(1, 90))
    incident = _incident(
        draw, lexicon, category=category, channel=channel, template=template, received_at=received
    )
    unit = next(
        (u for u in free.values() if u.unit_type == kind.value and u.status == "available"), None
    )
    if unit is None:
        escalated = received + timedelta(seconds=60)
        out.incidents.append(dataclasses.replace(incident, escalated_at=escalated))
        out.timeline.append(
            SeedStep(
                f"bench-seed-{incident.incident_id}",
                incident.incident_id,
                escalated,
                "siaga.incident.escalated.v1",
                f"no free {kind.value} within reach",
            )
        )
        return
    del free[unit.unit_id]
    sent_at = received + timedelta(seconds=draw.random.uniform(20, 50))
    status = draw.random.choice(ON_THE_WAY)
    moved = sent_at + timedelta(minutes=draw.random.uniform(0, 10))
    out.dispatches.append(
        SeedDispatch(
            incident.incident_id,
            unit.unit_id,
            kind.value,
            draw.uuid(),
            sent_at,
            int(draw.random.uniform(300, 1500)),
            status.value,
            min(moved, now),
        )
    )
    out.incidents.append(
        dataclasses.replace(
            incident, status=status.value, status_at=min(moved, now), first_dispatched_at=sent_at
        )
    )


def _complaint(draw: _Drawer, lexicon: Lexicon, now: datetime, out: Seed) -> None:
    """A complaint of the last three and a half days and its work order (a fifth answered
    already; unanswered ones older than three days are overdue)."""
    _, category, channel, template = draw.weighted(COMPLAINTS)
    received = now - timedelta(hours=draw.random.uniform(0.1, 84))
    incident = _incident(
        draw, lexicon, category=category, channel=channel, template=template, received_at=received
    )
    answered = None
    if draw.random.random() < 0.2:
        answered = min(now, received + timedelta(hours=draw.random.uniform(1, 48)))
    out.incidents.append(incident)
    out.work_orders.append(
        SeedWorkOrder(
            draw.uuid(),
            incident.incident_id,
            incident.agency,
            incident.category,
            incident.priority,
            incident.text,
            incident.classified_at,
            received + ANSWER_WITHIN,
            answered,
            f"petugas {incident.agency}" if answered else None,
            "Sudah dijadwalkan, petugas akan datang ke lokasi" if answered else None,
        )
    )


TABLES = (
    ("incidents", "incidents"),
    ("units", "units"),
    ("incident_units", "dispatches"),
    ("work_orders", "work_orders"),
    ("timeline", "timeline"),
)


async def write_seed(conn: asyncpg.Connection, seed: Seed, *, schema: str = "readmodel") -> None:
    """Copy the rows into the read model, in one transaction."""
    async with conn.transaction():
        for table, attribute in TABLES:
            rows = getattr(seed, attribute)
            if not rows:
                continue
            columns = [f.name for f in dataclasses.fields(rows[0])]
            await conn.copy_records_to_table(
                table,
                schema_name=schema,
                columns=columns,
                records=[dataclasses.astuple(r) for r in rows],
            )


async def top_up(
    conn: asyncpg.Connection,
    gazetteer: Gazetteer,
    *,
    open_incidents: int,
    units: int,
    now: datetime,
    schema: str = "readmodel",
) -> dict[str, int]:
    """Seed what the read model lacks of `open_incidents` open incidents and `units` units
    (those the pipeline made count); how many of each there are now, and how many seeded."""
    had_open = await _open_incidents(conn, schema)
    had_units = int(await conn.fetchval(f"SELECT count(*) FROM {schema}.units"))
    seed = seed_rows(
        gazetteer,
        incidents=max(0, open_incidents - had_open),
        units=max(0, units - had_units),
        now=now,
    )
    await write_seed(conn, seed, schema=schema)
    await conn.execute(f"ANALYZE {schema}.incidents, {schema}.units, {schema}.work_orders")
    return {
        "open_incidents": await _open_incidents(conn, schema),
        "units": int(await conn.fetchval(f"SELECT count(*) FROM {schema}.units")),
        "open_work_orders": int(
            await conn.fetchval(
                f"SELECT count(*) FROM {schema}.work_orders WHERE closed_at IS NULL"
            )
        ),
        "seeded_incidents": len(seed.incidents),
        "seeded_units": len(seed.units),
    }


async def _open_incidents(conn: asyncpg.Connection, schema: str) -> int:
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM {schema}.incidents WHERE COALESCE(status, '') <> ALL($1::text[])",
            list(ENDED),
        )
    )
