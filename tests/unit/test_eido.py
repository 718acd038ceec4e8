"""The EIDO export (`services.gateway.eido`): documents of made-up incidents are valid
against NENA's EIDO schema (every schema `$ref` resolved inside the spec), strictly, with
every reference inside the document, and say what the incident is: its units, their
status and ETA, its calls with the caller's number masked, its place and its notes."""

from __future__ import annotations

import copy
import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
import referencing.exceptions

from services.gateway.eido import Issuer, build_eido, call_urn, incident_urn, pidf_lo
from services.projector.queries import (
    IncidentCall,
    IncidentRecord,
    IncidentUnit,
    IncidentView,
    Review,
    TimelineEntry,
    UnitOnIncident,
)
from tests.eido import SPEC_ABSENT, check, load_spec, root_schema_ref, validator
from tests.views import incident_view

needs_spec = pytest.mark.skipif(SPEC_ABSENT is not None, reason=SPEC_ABSENT or "")

WIB = timezone(timedelta(hours=7))
T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 09:00 in Batang
MADE_AT = datetime(2025, 3, 1, 9, 6, tzinfo=WIB)
ISSUER = Issuer(domain="batangkab.go.id", centre="Command Center 112", regency="Batang")
CENTRE = "command-center-112.batangkab.go.id"
PHONE = "+6281234567890"
MASKED = "+6281*******90"


def _view(**values: Any) -> IncidentView:
    return incident_view(**values)


def _call(n: int, channel: str, **values: Any) -> IncidentCall:
    base: dict[str, Any] = dict(
        intake_id=uuid.UUID(int=n),
        channel=channel,
        received_at=T0 + timedelta(seconds=n),
        caller_phone=None,
        operator_id=None,
        place_hint=None,
        text="",
    )
    return IncidentCall(**{**base, **values})


def fire_p1() -> tuple[IncidentView, IncidentRecord]:
    """A house fire, P1: an engine on its way, an ambulance already there, two calls."""
    view = _view(
        status="en_route",
        category="fire",
        priority="P1",
        agency="Damkar",
        confidence=0.93,
        explanation="'rumah terbakar'",
        life_threat="possible",
        questions=("Ada orang di dalam rumah?",),
        review=Review("confirmed", "sup-budi", T0 + timedelta(seconds=40), "asap tebal"),
        text="rumah terbakar",
        kecamatan="Batang",
        desa="Rowobelang",
        lat=-6.9455004,
        lon=109.7288966,
        first_dispatched_at=T0 + timedelta(seconds=20),
        units=(
            IncidentUnit("FIRE-BATANG", "fire_truck", "en_route", T0 + timedelta(seconds=20), 420),
            IncidentUnit("AMB-BATANG", "ambulance", "on_scene", T0 + timedelta(seconds=25), 300),
        ),
        timeline=(
            TimelineEntry(T0, "siaga.incident.opened.v1", "opened from call112 intake"),
            TimelineEntry(
                T0 + timedelta(seconds=20),
                "siaga.dispatch.unit_dispatched.v1",
                "FIRE-BATANG dispatched, ETA 7 min",
            ),
            TimelineEntry(T0 + timedelta(seconds=90), "siaga.unit.status_changed.v1", "x"),
            TimelineEntry(T0 + timedelta(seconds=90), "siaga.unit.status_changed.v1", "x"),
        ),
    )
    record = IncidentRecord(
        calls=(
            _call(
                1,
                "call112",
                caller_phone=PHONE,  # the read model keeps it masked; masked again, it stays so
                operator_id="op-siti",
                place_hint="dekat balai desa",
                text="rumah terbakar, telepon balik 0812-3456-7890",
            ),
            _call(2, "whatsapp", caller_phone=MASKED, text="asap hitam di Rowobelang"),
        ),
        kecamatan_code="33.25.11",
        desa_code="33.25.11.2001",
        status_at=T0 + timedelta(seconds=90),
        units=(
            UnitOnIncident("AMB-BATANG", "PSC 119", T0 + timedelta(seconds=300)),
            UnitOnIncident("FIRE-BATANG", "Damkar", T0 + timedelta(seconds=90)),
        ),
    )
    return view, record


def complaint() -> tuple[IncidentView, IncidentRecord]:
    """A broken road reported on WhatsApp: a work order to DPUPR, no unit."""
    view = _view(
        status="classified",
        category="infrastructure",
        priority="P3",
        agency="DPUPR",
        confidence=0.88,
        explanation="'jalan rusak'",
        channel="whatsapp",
        text="jalan rusak parah",
        kecamatan="Bandar",
        lat=-7.0619762,
        lon=109.79648,
        timeline=(
            TimelineEntry(T0, "siaga.incident.opened.v1", "opened from whatsapp intake"),
            TimelineEntry(
                T0 + timedelta(seconds=5),
                "siaga.dispatch.work_order_issued.v1",
                "work order to DPUPR, due 2025-03-04 09:00",
            ),
        ),
    )
    record = IncidentRecord(
        calls=(_call(3, "whatsapp", text="jalan rusak parah"),),
        kecamatan_code="33.25.02",
        desa_code=None,
        status_at=T0,
        units=(),
    )
    return view, record


def crash_without_place() -> tuple[IncidentView, IncidentRecord]:
    """A crash nobody could place, with a joint agency and a police car sent."""
    view = _view(
        status="dispatched",
        category="traffic_accident",
        priority="P2",
        agency="Polres + PSC 119",
        text="tabrakan motor",
        units=(
            IncidentUnit("POL-BATANG", "police", "dispatched", T0 + timedelta(seconds=30), 600),
            IncidentUnit("AMB-X", None, "cancelled", T0 + timedelta(seconds=31), None),
        ),
    )
    record = IncidentRecord(
        calls=(_call(4, "sms", text="tabrakan motor"),),
        kecamatan_code=None,
        desa_code=None,
        status_at=None,
        units=(
            UnitOnIncident("AMB-X", None, None),  # a unit the board never registered
            UnitOnIncident("POL-BATANG", "Polres Batang", None),
        ),
    )
    return view, record


CASES = {"fire_p1": fire_p1, "complaint": complaint, "crash_without_place": crash_without_place}


def _eido(case: str, made_at: datetime = MADE_AT) -> dict[str, Any]:
    view, record = CASES[case]()
    return build_eido(view, record, issuer=ISSUER, made_at=made_at)


def _by_id(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {c["$id"]: c for c in doc.get(kind, ())}


def _resources(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["emergencyResourceName"]: r for r in doc.get("emergencyResourceComponent", ())}


# ---------------------------------------------------------------- valid


@needs_spec
def test_the_spec_is_read_with_its_typo_mended_and_the_root_is_the_eido_type() -> None:
    spec = load_spec()
    agent = spec["components"]["schemas"]["AgentType"]["allOf"][1]["properties"]
    assert agent["agentRoleRegistryText"]["minItems"] == 1
    assert root_schema_ref(spec) == "#/components/schemas/EmergencyIncidentDataObjectType"


@needs_spec
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_document_is_valid_strictly_with_every_reference_inside_it(case: str) -> None:
    doc = _eido(case)
    check(doc)
    json.dumps(doc)  # JSON-ready as it is


@needs_spec
def test_the_validator_fails_what_is_not_an_eido() -> None:
    doc = _eido("fire_p1")
    no_agency = {k: v for k, v in doc.items() if k != "agencyComponent"}
    with pytest.raises(jsonschema.ValidationError, match="agencyComponent"):
        validator(strict=False).validate(no_agency)
    bad_time = copy.deepcopy(doc)
    bad_time["emergencyResourceComponent"][0]["eta"] = "2025-03-01 09:07"  # no offset, no T
    with pytest.raises(jsonschema.ValidationError, match="date-time"):
        validator(strict=False).validate(bad_time)
    misspelt = copy.deepcopy(doc)
    misspelt["emergencyResourceComponent"][0]["unitETA"] = misspelt["emergencyResourceComponent"][
        0
    ].pop("eta")
    validator(strict=False).validate(misspelt)  # the spec itself allows any property...
    with pytest.raises(jsonschema.ValidationError, match="unitETA"):
        validator(strict=True).validate(misspelt)  # ...the strict reading does not


@needs_spec
def test_a_schema_ref_pointing_outside_the_spec_fails() -> None:
    doc = _eido("fire_p1")
    # PersonInformationType's ncPersonComponent is a $ref to NIEMComponents/nc.yaml
    doc["personComponent"] = [
        {
            "$id": "p-1",
            "lastUpdateTimeStamp": doc["lastUpdateTimeStamp"],
            "updatedByAgencyReference": {"$ref": CENTRE},
            "personIncidentRoleRegistryText": ["Caller"],
            "ncPersonComponent": {},
        }
    ]
    with pytest.raises(referencing.exceptions.Unresolvable, match="NIEMComponents"):
        validator(strict=False).validate(doc)


def test_a_reference_to_no_component_fails_the_check() -> None:
    from tests.eido import check_references

    doc = _eido("fire_p1")
    doc["emergencyResourceComponent"][0]["unitDestinationReference"] = {"$ref": "nowhere"}
    with pytest.raises(AssertionError, match="nowhere"):
        check_references(doc)


# ---------------------------------------------------------------- right


def test_the_p1_says_its_units_their_status_and_eta() -> None:
    doc = _eido("fire_p1")
    view, _ = fire_p1()
    assert doc["$id"] == incident_urn(view.incident_id, "batangkab.go.id")
    assert doc["eidoVersion"] == "1.0" and doc["lastUpdateTimeStamp"] == MADE_AT.isoformat(
        timespec="milliseconds"
    )
    incident = doc["incidentComponent"]
    assert incident["incidentTypeInternalCode"] == "fire"
    assert incident["incidentPriorityInternalText"] == "P1"
    assert incident["incidentStatusInternalText"] == ["en_route"]
    units = _resources(doc)
    engine, ambulance = units["FIRE-BATANG"], units["AMB-BATANG"]
    assert engine["unitStatusInternal"] == ["en_route"]
    assert engine["primaryUnitStatusRegistryText"] == "Enroute"
    assert engine["emergencyResourceTypeInternalText"] == "fire_truck"
    # dispatched 09:00:20 with a 420 s estimate, in the offset of the clock passed in
    assert engine["eta"] == "2025-03-01T09:07:20.000+07:00"
    place = doc["locationComponent"][0]["$id"]
    assert engine["unitDestinationReference"] == {"$ref": place}
    # arrived: no ETA any more, no destination
    assert ambulance["unitStatusInternal"] == ["on_scene"]
    assert "eta" not in ambulance and "unitDestinationReference" not in ambulance
    assert ambulance["lastUpdateTimeStamp"] == "2025-03-01T09:05:00.000+07:00"
    agencies = _by_id(doc, "agencyComponent")
    assert engine["updatedByAgencyReference"] == {"$ref": "damkar.batangkab.go.id"}
    assert agencies["damkar.batangkab.go.id"]["agencyType"] == ["fire"]
    assert agencies["damkar.batangkab.go.id"]["agencyRoleDescriptionRegistryText"] == [
        "Responsible",
        "Responding",
    ]
    assert agencies["psc-119.batangkab.go.id"]["agencyType"] == ["ems"]
    assert agencies[CENTRE]["incidentOwningAgencyIndicator"] is True
    assert agencies[CENTRE]["agencyType"] == ["psap"]
    crews = {a["agencyReference"]["$ref"] for a in doc["agentComponent"]}
    assert {"damkar.batangkab.go.id", "psc-119.batangkab.go.id", CENTRE} == crews
    sent = {d["agencyReference"]["$ref"]: d for d in doc["dispatchComponent"]}
    assert sent["damkar.batangkab.go.id"]["emergencyResourceReference"] == [{"$ref": engine["$id"]}]


def test_calls_mask_the_callers_number_and_keep_their_words() -> None:
    doc = _eido("fire_p1")
    text = json.dumps(doc)
    assert "1234567890" not in text and "3456-7890" not in text and "34567890" not in text
    calls = doc["callComponent"]
    _, record = fire_p1()
    assert [c["$id"] for c in calls] == [
        call_urn(c.intake_id, "batangkab.go.id") for c in record.calls
    ]
    first, second = calls
    assert (first["standardPrimaryCallType"], first["localCallType"]) == ("emergency", "call112")
    assert (second["standardPrimaryCallType"], second["localCallType"]) == (
        "nonEmergency",
        "whatsapp",
    )
    assert first["callStartTimestamp"] == "2025-03-01T09:00:01.000+07:00"
    assert first["priorityIdentifier"] == "highest"
    assert first["agentReference"] == [{"$ref": f"op-siti@{CENTRE}"}]
    notes = _by_id(doc, "notesComponent")
    said = notes[first["notesReference"][0]["$ref"]]["notesActionComments"]
    assert MASKED in said and "08123*****90" in said and "dekat balai desa" in said
    assert MASKED in notes[second["notesReference"][0]["$ref"]]["notesActionComments"]


def test_notes_keep_the_timeline_triage_and_the_review() -> None:
    doc = _eido("fire_p1")
    notes = _by_id(doc, "notesComponent")
    about = [notes[r["$ref"]] for r in doc["incidentComponent"]["notesReference"]]
    words = [n["notesActionComments"] for n in about]
    assert words[0].startswith("Triage: fire P1 -&gt; Damkar, confidence 0.93")
    assert "Ada orang di dalam rumah?" in words[0]
    assert words[1] == "Triage confirmed by sup-budi: asap tebal"
    assert about[1]["agentReference"] == {"$ref": f"sup-budi@{CENTRE}"}
    # every timeline step, in order, even two alike
    assert words[2:] == [
        "opened from call112 intake",
        "FIRE-BATANG dispatched, ETA 7 min",
        "x",
        "x",
    ]
    assert about[3]["lastUpdateTimeStamp"] == "2025-03-01T09:00:20.000+07:00"
    # last changed at its latest step (the review at 09:00:40 is older)
    assert doc["incidentComponent"]["lastUpdateTimeStamp"] == "2025-03-01T09:01:30.000+07:00"


def test_the_place_is_a_pidf_lo_with_its_point_names_and_codes() -> None:
    doc = _eido("fire_p1")
    (place,) = doc["locationComponent"]
    assert place["locationTypeDescriptionRegistryText"] == "Incident"
    assert place["localIdentifier"] == ["33.25.11", "33.25.11.2001"]
    assert place["locationDescriptionText"] == (
        "Rowobelang, Batang, Batang; caller: dekat balai desa"
    )
    pidf = ET.fromstring(place["locationByValue"])
    ns = {
        "gml": "http://www.opengis.net/gml",
        "ca": "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr",
    }
    assert pidf.findtext(".//gml:Point/gml:pos", namespaces=ns) == "-6.945500 109.728897"
    civic = pidf.find(".//ca:civicAddress", ns)
    assert civic is not None
    assert [(e.tag.split("}")[1], e.text) for e in civic] == [
        ("country", "ID"),
        ("A2", "Batang"),
        ("A3", "Batang"),
        ("A4", "Rowobelang"),
    ]


def test_pidf_lo_escapes_names() -> None:
    view = _view(kecamatan="A & B", desa="<C>", lat=1.0, lon=2.0)
    pidf = ET.fromstring(pidf_lo(view, entity='pres:"x"@y', regency=None))
    assert "A & B" in "".join(pidf.itertext()) and "<C>" in "".join(pidf.itertext())


def test_a_complaint_has_its_agency_and_work_order_but_no_unit() -> None:
    doc = _eido("complaint")
    assert "emergencyResourceComponent" not in doc and "dispatchComponent" not in doc
    agencies = _by_id(doc, "agencyComponent")
    assert set(agencies) == {CENTRE, "dpupr.batangkab.go.id"}
    dpupr = agencies["dpupr.batangkab.go.id"]
    assert dpupr["agencyRoleDescriptionRegistryText"] == ["Responsible"]
    assert dpupr["agencyType"] == []  # no responder type in the registry fits public works
    (call,) = doc["callComponent"]
    assert call["standardPrimaryCallType"] == "nonEmergency"
    assert call["priorityIdentifier"] == "normal"
    notes = [n["notesActionComments"] for n in doc["notesComponent"]]
    assert "work order to DPUPR, due 2025-03-04 09:00" in notes
    assert "an unknown number" in notes[-1]
    (place,) = doc["locationComponent"]
    assert place["localIdentifier"] == ["33.25.02"]
    assert place["locationDescriptionText"] == "Bandar, Batang"


def test_an_incident_without_a_place_has_no_location_and_a_joint_agency_is_two() -> None:
    doc = _eido("crash_without_place")
    assert "locationComponent" not in doc
    assert "locationReference" not in json.dumps(doc)
    police = _resources(doc)["POL-BATANG"]
    assert police["eta"] == "2025-03-01T09:10:30.000+07:00"  # still said, with nowhere to go
    assert "unitDestinationReference" not in police
    agencies = _by_id(doc, "agencyComponent")
    # each of the joint agency's own, with no type: the category does not say whose is whose
    assert agencies["polres.batangkab.go.id"]["agencyType"] == []
    assert agencies["psc-119.batangkab.go.id"]["agencyType"] == []
    assert agencies["polres-batang.batangkab.go.id"]["agencyType"] == ["police"]
    # a unit the board never knew: the centre's, with its own status kept
    unknown = _resources(doc)["AMB-X"]
    assert unknown["updatedByAgencyReference"] == {"$ref": CENTRE}
    assert unknown["emergencyResourceTypeCommonRegistryText"] == "Other"
    assert unknown["unitStatusInternal"] == ["cancelled"] and "eta" not in unknown
    assert agencies[CENTRE]["agencyType"] == ["psap"]


def test_an_unclassified_incident_is_of_unknown_type() -> None:
    view, record = _view(), IncidentRecord((), None, None, None, ())
    doc = build_eido(view, record, issuer=ISSUER, made_at=MADE_AT)
    assert doc["incidentComponent"]["incidentTypeCommonRegistryText"] == "Unknown"
    assert "incidentTypeInternalCode" not in doc["incidentComponent"]
    assert "callComponent" not in doc and "locationComponent" not in doc


def _ids(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k in ("$id", "$ref")] + _ids(list(node.values()))
    if isinstance(node, list):
        return [i for v in node for i in _ids(v)]
    return []


@pytest.mark.parametrize("case", sorted(CASES))
def test_ids_are_the_same_whenever_it_is_exported(case: str) -> None:
    first = _eido(case)
    later = _eido(case, made_at=MADE_AT + timedelta(hours=5))
    assert _ids(first) == _ids(later)
    assert later["lastUpdateTimeStamp"] == "2025-03-01T14:06:00.000+07:00"


def test_times_take_the_offset_of_the_clock() -> None:
    doc = _eido("fire_p1", made_at=MADE_AT.astimezone(UTC))
    assert _resources(doc)["FIRE-BATANG"]["eta"] == "2025-03-01T02:07:20.000+00:00"
    with pytest.raises(ValueError, match="offset"):
        _eido("fire_p1", made_at=MADE_AT.replace(tzinfo=None))
