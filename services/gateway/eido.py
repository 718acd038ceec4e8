"""One incident as a NENA Emergency Incident Data Object (EIDO, the JSON of NENA-STA-024;
root schema `EmergencyIncidentDataObjectType` of the spec's OpenAPI, the answer of
`GET /EIDO/{IncidentId}`), built from the read model.

What is filled, and from where (every other part of the EIDO is left out):

- the document: `$id` is the incident tracking id, `lastUpdateTimeStamp` the time the
  document was made (the clock passed in); it is issued by the command centre (`Issuer`).
- `incidentComponent`: category (internal code, and a common incident type), status
  (internal and common), priority (`P1`..`P4`), the incident id, and references to its
  place and its notes; last updated at its latest status change, review or timeline step.
- `callComponent`: one per intake (`intakes` table): channel (`localCallType`; the 112
  and PSC 119 lines are `emergency` calls, the complaint channels `nonEmergency`), the
  time received, the incident's priority, the operator who took it (an agent), and a
  note with the caller's number MASKED as everywhere people read it and the caller's
  words (phone numbers in them masked too).
- `locationComponent`: the incident's place when anything of it is known: a PIDF-LO
  with the point (lat/lon) and a civic address (country, regency, kecamatan, desa), the
  Kemendagri codes of kecamatan and desa as local identifiers, and a description with
  the place's names and what callers said of it.
- `agencyComponent`: the command centre (owns the incident, receives the calls,
  dispatches), the responsible agency triage or the call-taker named (`Polres + PSC 119`
  is two), and the agency owning each unit sent. Types from the IANA responder registry
  where one fits: the centre is a `psap`; an agency is `ems`, `fire` or `police` by the
  units it sent, or by the category when it alone is responsible.
- `agentComponent`: the operators who took the calls, the call-taker who reviewed
  triage, and each unit's crew.
- `emergencyResourceComponent`: every unit ever sent (`incident_units`, the unit's
  agency from `units`): type, status (internal and common) and, while it is still on
  its way, the ETA (dispatch time + the dispatcher's estimate) to the incident's place.
- `dispatchComponent`: per agency, the units it was sent.
- `notesComponent`: the timeline (every step, in order), triage's decision with its
  explanation and open questions, the call-taker's review, and the calls' notes.

Ids are deterministic, so exporting again gives the same ids: the incident and its calls
take NENA's `urn:emergency:uid:incidentid:` / `callid:` forms with the Siaga id's hex;
agencies are named by domain (`<name>.<issuer domain>`), agents `<name>@<agency>`, and
every other component gets the uuid5 of the incident (or intake) id and its role.
Times are RFC 3339 with the offset of the clock passed in. The common registry texts are
our reading of NENA's registries, which are not in the spec: each is paired with
Siaga's own code in the matching internal field, so a receiver can rely on those.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from uuid import UUID
from xml.sax.saxutils import escape, quoteattr

from schemas.ids import derive_id
from schemas.vocabulary import Channel
from services.common.readable import mask_phone, mask_phones_in
from services.projector.queries import (
    IncidentCall,
    IncidentRecord,
    IncidentUnit,
    IncidentView,
    find_incident,
    incident_record,
)

if TYPE_CHECKING:
    import asyncpg

EIDO_VERSION = "1.0"
JSON_LD_VOCAB = "./JSON-LD_Contexts/EmergencyIncidentDataObjectType.jsonld"

# Siaga's codes -> the common registries' texts (the internal fields keep Siaga's own).
INCIDENT_TYPES = {
    "medical": "Medical",
    "fire": "Fire",
    "traffic_accident": "Traffic Collision",
    "crime": "Law Enforcement",
    "disaster": "Natural Disaster",
    "rescue": "Rescue",
    "infrastructure": "Public Works",
    "environment": "Environmental",
    "social_welfare": "Social Services",
    "civil_registry": "Administrative",
    "health_service": "Public Health",
    "public_order": "Public Order",
    "utilities": "Utilities",
    "information": "Information",
    "prank": "Prank Call",
    "ghost": "Abandoned Call",
}
INCIDENT_STATUSES = {
    "received": "Pending",
    "classified": "Pending",
    "dispatched": "Dispatched",
    "acknowledged": "Dispatched",
    "en_route": "Enroute",
    "on_scene": "OnScene",
    "transporting": "OnScene",
    "at_hospital": "OnScene",
    "resolved": "Cleared",
    "closed": "Closed",
    "cancelled": "Cancelled",
    "merged": "Merged",
}
RESOURCE_TYPES = {
    "ambulance": "Ambulance",
    "fire_truck": "Engine",
    "police": "Patrol Car",
    "rescue": "Rescue",
    "bpbd_team": "Disaster Response Team",
    "public_works_crew": "Public Works Crew",
}
UNIT_STATUSES = {
    "available": "Available",
    "dispatched": "Dispatched",
    "acknowledged": "Acknowledged",
    "en_route": "Enroute",
    "on_scene": "OnScene",
    "transporting": "Transporting",
    "at_hospital": "AtHospital",
    "returning": "Returning",
    "out_of_service": "OutOfService",
    "cancelled": "Cancelled",  # the order was withdrawn (incident_units only)
}
# A unit in one of these has not arrived yet: its ETA still says something.
HEADING = frozenset({"dispatched", "acknowledged", "en_route"})
EMERGENCY_LINES = frozenset(c.value for c in Channel if c.is_emergency_line)
CALL_PRIORITIES = {"P1": "highest", "P2": "high", "P3": "normal", "P4": "low"}
# The IANA responder registry's types that Siaga's units and categories are.
UNIT_RESPONDERS = {"ambulance": "ems", "fire_truck": "fire", "police": "police"}
CATEGORY_RESPONDERS = {
    "medical": ("ems",),
    "fire": ("fire",),
    "traffic_accident": ("police", "ems"),
    "crime": ("police",),
}
_NOT_A_NAME = re.compile(r"[^a-z0-9]+")
_JOINT = re.compile(r"\s*\+\s*")


@dataclass(frozen=True)
class Issuer:
    """Who issues the EIDO: the command centre, and the domain its agencies are named in."""

    domain: str  # e.g. "batangkab.go.id"; agencies become "<name>.<domain>"
    centre: str = "Command Centre"
    regency: str | None = None  # the civic address's county (A2), e.g. "Batang"


def incident_urn(incident_id: UUID, domain: str) -> str:
    """NENA's incident tracking id of a Siaga incident."""
    return f"urn:emergency:uid:incidentid:{incident_id.hex}:{domain}"


def call_urn(intake_id: UUID, domain: str) -> str:
    """NENA's call id of a Siaga intake."""
    return f"urn:emergency:uid:callid:{intake_id.hex}:{domain}"


def _slug(name: str) -> str:
    return _NOT_A_NAME.sub("-", name.lower()).strip("-") or "unnamed"


def _ref(component_id: str) -> dict[str, str]:
    return {"$ref": component_id}


def _html(text: str) -> str:
    """A note's text as HTML5 (what the EIDO asks), phone numbers masked."""
    return html.escape(mask_phones_in(text))


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


@dataclass
class _Agency:
    name: str
    roles: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    owns: bool = False


@dataclass
class _Builder:
    """The parts of one EIDO as they are built; `build_eido` puts them together."""

    view: IncidentView
    record: IncidentRecord
    issuer: Issuer
    made_at: datetime
    agencies: dict[str, _Agency] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    note_roles: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------ ids and times

    @property
    def centre(self) -> str:
        return f"{_slug(self.issuer.centre)}.{self.issuer.domain}"

    def agency_id(self, name: str | None) -> str:
        return self.centre if name is None else f"{_slug(name)}.{self.issuer.domain}"

    def component_id(self, role: str) -> str:
        return str(derive_id(self.view.incident_id, f"eido/{role}"))

    def time(self, at: datetime) -> str:
        if at.tzinfo is None:
            raise ValueError(f"a time without an offset cannot go into an EIDO: {at}")
        return at.astimezone(self.zone).isoformat(timespec="milliseconds")

    @property
    def zone(self) -> tzinfo:
        assert self.made_at.tzinfo is not None  # checked by build_eido
        return self.made_at.tzinfo

    def prologue(
        self, component_id: str, at: datetime | None, *, agency: str | None = None
    ) -> dict[str, Any]:
        return {
            "$id": component_id,
            "lastUpdateTimeStamp": self.time(at or self.made_at),
            "updatedByAgencyReference": _ref(agency or self.centre),
        }

    # ------------------------------------------------------------ agencies and agents

    def agency(
        self, name: str | None, role: str, types: Iterable[str] = (), *, owns: bool = False
    ) -> str:
        """An agency taking part (merged with what is known of it already); its id."""
        key = self.agency_id(name)
        found = self.agencies.setdefault(key, _Agency(name or self.issuer.centre))
        found.roles = _unique([*found.roles, role])
        found.types = _unique([*found.types, *types])
        found.owns = found.owns or owns
        return key

    def agent(self, name: str, role: str, agency: str) -> str:
        """A person or crew acting in the incident; its id."""
        key = f"{_slug(name)}@{agency}"
        self.agents.setdefault(
            key,
            {
                **self.prologue(key, None),
                "agentRoleRegistryText": [role],
                "agencyReference": _ref(agency),
            },
        )
        return key

    def note(self, role: str, text: str, at: datetime | None, agent: str | None = None) -> str:
        """A note (HTML5, numbers masked); its id."""
        # Two notes alike (same time, kind and words) still get ids of their own.
        seen = self.note_roles[role] = self.note_roles.get(role, 0) + 1
        key = self.component_id(f"note/{role}" + (f"#{seen}" if seen > 1 else ""))
        note = {**self.prologue(key, at), "notesActionComments": _html(text)}
        if agent is not None:
            note["agentReference"] = _ref(agent)
        self.notes.append(note)
        return key

    def agency_components(self) -> list[dict[str, Any]]:
        out = []
        for key, found in self.agencies.items():
            card = ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", found.name]]]
            out.append(
                {
                    **self.prologue(key, None),
                    "agencyJcard": _json(card),
                    "agencyRoleDescriptionRegistryText": found.roles,
                    "agencyType": found.types,
                    "incidentOwningAgencyIndicator": found.owns,
                }
            )
        return out


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ------------------------------------------------------------ the incident's place


def _civic(view: IncidentView, regency: str | None) -> str:
    """Indonesia's levels as PIDF-LO's: A2 the regency, A3 the kecamatan, A4 the desa."""
    parts: list[tuple[str, str | None]] = [
        ("country", "ID"),
        ("A2", regency),
        ("A3", view.kecamatan),
        ("A4", view.desa),
    ]
    return "".join(f"<ca:{k}>{escape(v)}</ca:{k}>" for k, v in parts if v)


def pidf_lo(view: IncidentView, *, entity: str, regency: str | None) -> str:
    """The incident's place as a PIDF-LO document (RFC 4119/5491): point and civic address."""
    point = (
        ""
        if view.lat is None or view.lon is None
        else '<gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
        f"<gml:pos>{view.lat:.6f} {view.lon:.6f}</gml:pos></gml:Point>"
    )
    return (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
        'xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" '
        f'xmlns:gml="http://www.opengis.net/gml" entity={quoteattr(entity)}>'
        '<tuple id="incident"><status><gp:geopriv><gp:location-info>'
        f"{point}<ca:civicAddress>{_civic(view, regency)}</ca:civicAddress>"
        "</gp:location-info><gp:usage-rules/><gp:method>Derived</gp:method>"
        "</gp:geopriv></status></tuple></presence>"
    )


def _location(b: _Builder) -> dict[str, Any] | None:
    """The incident's place, or None when nothing of it is known."""
    view, record = b.view, b.record
    said = _unique(mask_phones_in(c.place_hint) for c in record.calls if c.place_hint)
    resolved = view.lat is not None or bool(view.kecamatan or view.desa)
    if not resolved and not said:
        return None
    names = ", ".join(n for n in (view.desa, view.kecamatan, b.issuer.regency) if n)
    words = "; ".join([names, *(f"caller: {s}" for s in said)] if names else said)
    location: dict[str, Any] = {
        **b.prologue(b.component_id("location"), view.received_at),
        "locationTypeDescriptionRegistryText": "Incident",
    }
    if words:
        location["locationDescriptionText"] = words
    if resolved:
        entity = f"pres:incident-{view.incident_id.hex}@{b.issuer.domain}"
        location["locationByValue"] = pidf_lo(view, entity=entity, regency=b.issuer.regency)
    codes = [c for c in (record.kecamatan_code, record.desa_code) if c]
    if codes:
        location["localIdentifier"] = codes
    return location


# ------------------------------------------------------------ calls


def _call(b: _Builder, call: IncidentCall, location: str | None) -> dict[str, Any]:
    """One intake as a call, with its note (caller's number masked, caller's words)."""
    view, domain = b.view, b.issuer.domain
    channel = call.channel or view.channel or "unknown"
    caller = mask_phone(call.caller_phone) if call.caller_phone else "an unknown number"
    words = f"{channel} report from {caller}: {call.text or '(no text)'}"
    if call.place_hint:
        words += f" (place given: {call.place_hint})"
    at = call.received_at or view.received_at
    agent = None
    if call.operator_id:
        agent = b.agent(call.operator_id, "Call Taking", b.centre)
    component: dict[str, Any] = {
        **b.prologue(call_urn(call.intake_id, domain), at),
        "standardPrimaryCallType": "emergency" if channel in EMERGENCY_LINES else "nonEmergency",
        "localCallType": channel,
        "direction": "incoming",
        # An intake reaches Siaga as a finished report, whatever its channel.
        "callStateRegistryText": "callEnd",
        "callStartTimestamp": b.time(at or b.made_at),
        "agencyReference": [_ref(b.centre)],
        "notesReference": [_ref(b.note(f"call/{call.intake_id}", words, at, agent))],
    }
    if view.priority in CALL_PRIORITIES:
        component["priorityIdentifier"] = CALL_PRIORITIES[view.priority]
    if agent is not None:
        component["updatedByAgentReference"] = _ref(agent)
        component["agentReference"] = [_ref(agent)]
    if location is not None:
        component["locationReference"] = [_ref(location)]
    return component


# ------------------------------------------------------------ units


def _resource(
    b: _Builder, unit: IncidentUnit, agency: str | None, at: datetime | None, place: str | None
) -> dict[str, Any]:
    """A unit sent, with its status and, while it is on its way, its ETA."""
    responder = UNIT_RESPONDERS.get(unit.unit_type or "")
    # A unit the board never registered has no known agency: the centre sent it.
    agency_id = (
        b.centre
        if agency is None
        else b.agency(agency, "Responding", [responder] if responder else [])
    )
    crew = b.agent(unit.unit_id, "Responding", agency_id)
    status = unit.status or "dispatched"
    resource: dict[str, Any] = {
        **b.prologue(
            b.component_id(f"resource/{unit.unit_id}"), at or unit.dispatched_at, agency=agency_id
        ),
        "emergencyResourceTypeCommonRegistryText": RESOURCE_TYPES.get(
            unit.unit_type or "", "Other"
        ),
        "emergencyResourceName": unit.unit_id,
        "resourceAttributeRegistryText": [],
        "primaryUnitStatusRegistryText": UNIT_STATUSES.get(status, "Other"),
        "secondaryUnitStatusRegistryText": [],
        "unitStatusInternal": [status],
        "agentReference": [_ref(crew)],
    }
    if unit.unit_type:
        resource["emergencyResourceTypeInternalText"] = unit.unit_type
    if status in HEADING:
        if place is not None:
            resource["unitDestinationReference"] = _ref(place)
        if unit.dispatched_at is not None and unit.eta_seconds is not None:
            resource["eta"] = b.time(unit.dispatched_at + timedelta(seconds=unit.eta_seconds))
    return resource


def _units(b: _Builder, place: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every unit sent, and per agency the dispatch that sent its units."""
    owners = {u.unit_id: u for u in b.record.units}
    resources: list[dict[str, Any]] = []
    sent: dict[str, list[IncidentUnit]] = {}
    for unit in b.view.units:
        owner = owners.get(unit.unit_id)
        agency, at = (owner.agency, owner.status_at) if owner else (None, None)
        resources.append(_resource(b, unit, agency, at, place))
        sent.setdefault(b.agency_id(agency), []).append(unit)
    dispatches = []
    for agency_id, units in sent.items():
        times = [u.dispatched_at for u in units if u.dispatched_at is not None]
        dispatches.append(
            {
                **b.prologue(b.component_id(f"dispatch/{agency_id}"), max(times, default=None)),
                "agencyReference": _ref(agency_id),
                "emergencyResourceReference": [
                    _ref(b.component_id(f"resource/{u.unit_id}")) for u in units
                ],
            }
        )
    return resources, dispatches


# ------------------------------------------------------------ the incident


def _responsible(b: _Builder) -> None:
    """The agency triage (or the call-taker) named; a joint one is each of its agencies."""
    names = [n for n in _JOINT.split(b.view.agency or "") if n and n != "-"]
    types = CATEGORY_RESPONDERS.get(b.view.category or "", ()) if len(names) == 1 else ()
    for name in names:
        b.agency(name, "Responsible", types)


def _incident_notes(b: _Builder) -> list[str]:
    """Triage's decision, the call-taker's review and the timeline, as notes; their ids."""
    view, ids = b.view, []
    if view.category:
        words = f"Triage: {view.category} {view.priority or ''} -> {view.agency or '-'}"
        if view.confidence is not None:
            words += f", confidence {view.confidence:.2f}"
        if view.explanation:
            words += f". {view.explanation}"
        if view.life_threat and view.life_threat != "none":
            words += f". Threat to life: {view.life_threat}"
        if view.questions:
            words += ". To confirm: " + " / ".join(view.questions)
        if view.needs_review or view.needs_confirmation:
            words += ". Waiting for a call-taker's review"
        ids.append(b.note("triage", words, view.received_at))
    if view.review is not None:
        r = view.review
        agent = b.agent(r.by, "Call Taking", b.centre) if r.by else None
        words = f"Triage {r.decision or 'reviewed'} by {r.by or 'a call-taker'}"
        words += f": {r.note}" if r.note else ""
        ids.append(b.note("review", words, r.at, agent))
    for step in view.timeline:
        role = f"timeline/{step.at.isoformat()}/{step.event_type}/{step.summary}"
        ids.append(b.note(role, step.summary, step.at))
    return ids


def _incident(b: _Builder, place: str | None, notes: list[str]) -> dict[str, Any]:
    """The incident itself: its type, status, priority, place and notes."""
    view = b.view
    changes = [s.at for s in view.timeline]
    changes += [t for t in (view.received_at, b.record.status_at) if t is not None]
    if view.review is not None:
        changes.append(view.review.at)
    incident: dict[str, Any] = {
        **b.prologue(b.component_id("incident"), max(changes, default=None)),
        "incidentTypeCommonRegistryText": INCIDENT_TYPES.get(view.category or "", "Unknown"),
        "internalIncidentId": str(view.incident_id),
    }
    if view.category:
        incident["incidentTypeInternalCode"] = view.category
        incident["incidentTypeInternalText"] = view.category.replace("_", " ")
    if view.status:
        incident["incidentStatusInternalText"] = [view.status]
        incident["incidentStatusCommonRegistryText"] = [INCIDENT_STATUSES.get(view.status, "Other")]
    if view.priority:
        incident["incidentPriorityInternalText"] = view.priority
    if place is not None:
        incident["locationReference"] = [_ref(place)]
    if notes:
        incident["notesReference"] = [_ref(n) for n in notes]
    return incident


def build_eido(
    view: IncidentView, record: IncidentRecord, *, issuer: Issuer, made_at: datetime
) -> dict[str, Any]:
    """The EIDO of one incident (a JSON-ready dict), as of `made_at` (an aware time, whose
    offset every time in the document takes)."""
    if made_at.tzinfo is None:
        raise ValueError("made_at must carry its offset (an aware datetime)")
    b = _Builder(view, record, issuer, made_at)
    b.agency(None, "CallReceiving", ["psap"], owns=True)
    b.agency(None, "Dispatching")
    _responsible(b)
    location = _location(b)
    place = None if location is None else location["$id"]
    notes = _incident_notes(b)
    calls = [_call(b, c, place) for c in record.calls]
    resources, dispatches = _units(b, place)
    parts: dict[str, list[dict[str, Any]]] = {
        "callComponent": calls,
        "dispatchComponent": dispatches,
        "notesComponent": b.notes,
        "emergencyResourceComponent": resources,
        "agencyComponent": b.agency_components(),
        "agentComponent": list(b.agents.values()),
        "locationComponent": [] if location is None else [location],
    }
    return {
        **b.prologue(incident_urn(view.incident_id, issuer.domain), made_at),
        "eidoVersion": EIDO_VERSION,
        "issuingElementIdentification": f"siaga.{b.centre}",
        "incidentComponent": _incident(b, place, notes),
        **{name: items for name, items in parts.items() if items},
        "@context": {"@vocab": JSON_LD_VOCAB},
    }


async def incident_eido(
    conn: asyncpg.Connection, ident: str, *, issuer: Issuer, made_at: datetime
) -> dict[str, Any] | None:
    """The EIDO of the incident with this id (or of the incident of this intake id), or
    None when the read model does not know it. `conn` is on the read model's schema."""
    view = await find_incident(conn, ident)
    if view is None:
        return None
    record = await incident_record(conn, view.incident_id)
    return build_eido(view, record, issuer=issuer, made_at=made_at)
