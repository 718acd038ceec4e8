"""The EIDO of an incident the projector built in the real read model: valid against NENA's
schema, and saying the units sent, their status and ETA, and the calls with the caller's
number masked."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from schemas.common import Caller, Place
from schemas.envelope import new_event
from schemas.events import (
    CallLinkedV1,
    IncidentClassifiedV1,
    IncidentOpenedV1,
    IncidentStatusChangedV1,
    IntakeReceivedV1,
    UnitDispatchedV1,
    UnitStatusChangedV1,
)
from schemas.vocabulary import Category, Channel, IncidentStatus, Priority, UnitStatus, UnitType
from services.gateway.eido import Issuer, call_urn, incident_eido, incident_urn
from services.projector.queries import find_incident, incident_record
from tests.conftest import Pipeline, eventually
from tests.eido import SPEC_ABSENT, check, check_references

pytestmark = pytest.mark.integration

WIB = timezone(timedelta(hours=7))
ISSUER = Issuer(domain="batangkab.go.id", regency="Batang")
PHONE = "+6281234567890"
PLACE = Place(
    kecamatan_code="33.25.11",
    kecamatan="Batang",
    desa_code="33.25.11.2001",
    desa="Rowobelang",
    lat=-6.9455004,
    lon=109.7288966,
    confidence=0.9,
    method="desa",
)


@pytest.fixture
def stages() -> tuple[str, ...]:
    """The projector alone: the test feeds it what the other stages would send."""
    return ("projector",)


def _event(payload: Any) -> Any:
    return new_event(payload, id=uuid.uuid4(), source="/test")


def _story(incident_id: uuid.UUID, first: uuid.UUID, second: uuid.UUID, t0: datetime) -> list[Any]:
    """A house fire: a 112 call and a WhatsApp message, an engine on its way, an
    ambulance there."""
    at = lambda seconds: t0 + timedelta(seconds=seconds)  # noqa: E731
    text = "rumah terbakar di Rowobelang, telepon balik 0812-3456-7890"
    received: dict[str, Any] = dict(received_at=t0, text=text, channel=Channel.CALL112)
    dispatched: dict[str, Any] = dict(
        incident_id=incident_id, category=Category.FIRE, priority=Priority.P1, place=PLACE
    )
    payloads = [
        IntakeReceivedV1(
            intake_id=first,
            caller=Caller(phone=PHONE),
            place_hint="dekat balai desa",
            operator_id="op-siti",
            **received,
        ),
        IntakeReceivedV1(
            intake_id=second,
            channel=Channel.WHATSAPP,
            received_at=at(40),
            caller=Caller(phone="+6285712345678"),
            text="asap hitam di Rowobelang",
        ),
        IncidentOpenedV1(
            incident_id=incident_id, intake_id=first, opened_at=at(1), place=PLACE, **received
        ),
        CallLinkedV1(
            incident_id=incident_id,
            intake_id=second,
            channel=Channel.WHATSAPP,
            linked_at=at(41),
            reason="same place within minutes",
        ),
        IncidentClassifiedV1(
            incident_id=incident_id,
            category=Category.FIRE,
            priority=Priority.P1,
            agency="Damkar",
            confidence=0.93,
            explanation="'rumah terbakar'",
            needs_review=False,
            sla_seconds=60,
            place=PLACE,
            classified_at=at(2),
            **received,
        ),
        UnitDispatchedV1(
            dispatch_id=uuid.uuid4(),
            unit_id="FIRE-BATANG",
            unit_type=UnitType.FIRE_TRUCK,
            distance_km=3.2,
            eta_seconds=420,
            dispatched_at=at(20),
            **dispatched,
        ),
        UnitDispatchedV1(
            dispatch_id=uuid.uuid4(),
            unit_id="AMB-BATANG",
            unit_type=UnitType.AMBULANCE,
            distance_km=2.5,
            eta_seconds=300,
            dispatched_at=at(25),
            **dispatched,
        ),
        UnitStatusChangedV1(
            unit_id="FIRE-BATANG",
            status=UnitStatus.EN_ROUTE,
            previous_status=UnitStatus.ACKNOWLEDGED,
            incident_id=incident_id,
            reported_at=at(60),
        ),
        UnitStatusChangedV1(
            unit_id="AMB-BATANG",
            status=UnitStatus.ON_SCENE,
            previous_status=UnitStatus.EN_ROUTE,
            incident_id=incident_id,
            reported_at=at(330),
        ),
        IncidentStatusChangedV1(
            incident_id=incident_id,
            from_status=IncidentStatus.DISPATCHED,
            to_status=IncidentStatus.EN_ROUTE,
            changed_at=at(60),
            reason="FIRE-BATANG en_route",
        ),
    ]
    return [_event(p) for p in payloads]


async def test_an_incident_of_the_read_model_exports_as_a_valid_and_true_eido(
    pipeline: Pipeline,
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    incident_id, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await pipeline.send(_story(incident_id, first, second, t0))

    async def projected() -> bool:
        async with pipeline.db.acquire() as conn:
            await conn.execute("SET search_path TO readmodel")
            view = await find_incident(conn, str(incident_id))
            if view is None:
                return False
            record = await incident_record(conn, incident_id)
        return (
            len(view.timeline) == 8
            and {u.status for u in view.units} == {"en_route", "on_scene"}
            and [c.caller_phone is not None for c in record.calls] == [True, True]
            and all(u.agency for u in record.units)
        )

    await eventually(projected, timeout=30, what="the fire in the read model")
    made_at = datetime.now(WIB)
    async with pipeline.db.acquire() as conn:
        await conn.execute("SET search_path TO readmodel")
        doc = await incident_eido(conn, str(incident_id), issuer=ISSUER, made_at=made_at)
        by_intake = await incident_eido(conn, str(second), issuer=ISSUER, made_at=made_at)
        unknown = await incident_eido(conn, str(uuid.uuid4()), issuer=ISSUER, made_at=made_at)
    assert doc is not None and by_intake == doc and unknown is None
    if SPEC_ABSENT is None:
        check(doc)
    else:  # the schema lives in ../shared; what the document says is checked all the same
        check_references(doc)

    assert doc["$id"] == incident_urn(incident_id, "batangkab.go.id")
    assert doc["incidentComponent"]["incidentStatusInternalText"] == ["en_route"]
    units = {r["emergencyResourceName"]: r for r in doc["emergencyResourceComponent"]}
    engine, ambulance = units["FIRE-BATANG"], units["AMB-BATANG"]
    assert engine["unitStatusInternal"] == ["en_route"]
    eta = (t0 + timedelta(seconds=20 + 420)).astimezone(WIB)
    assert engine["eta"] == eta.isoformat(timespec="milliseconds")
    assert engine["updatedByAgencyReference"] == {"$ref": "damkar.batangkab.go.id"}
    assert ambulance["unitStatusInternal"] == ["on_scene"] and "eta" not in ambulance
    assert ambulance["updatedByAgencyReference"] == {"$ref": "psc-119.batangkab.go.id"}
    agencies = {a["$id"]: a for a in doc["agencyComponent"]}
    assert agencies["psc-119.batangkab.go.id"]["agencyType"] == ["ems"]
    assert agencies["damkar.batangkab.go.id"]["agencyType"] == ["fire"]

    calls = doc["callComponent"]
    assert [c["$id"] for c in calls] == [call_urn(i, "batangkab.go.id") for i in (first, second)]
    assert [c["localCallType"] for c in calls] == ["call112", "whatsapp"]
    assert calls[0]["agentReference"] == [{"$ref": "op-siti@command-centre.batangkab.go.id"}]
    notes = {n["$id"]: n["notesActionComments"] for n in doc["notesComponent"]}
    first_note = notes[calls[0]["notesReference"][0]["$ref"]]
    assert "+6281*******90" in first_note and "08123*****90" in first_note
    assert "+6285*******78" in notes[calls[1]["notesReference"][0]["$ref"]]
    text = json.dumps(doc)
    assert "1234567890" not in text and "3456-7890" not in text and "5712345678" not in text
    (place,) = doc["locationComponent"]
    assert place["localIdentifier"] == ["33.25.11", "33.25.11.2001"]
    assert "-6.945500 109.728897" in place["locationByValue"]
