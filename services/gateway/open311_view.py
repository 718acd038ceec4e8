"""What Open311 clients are shown: a request's status from the incident and work order it
became, and every document in the spec's JSON and XML. Pure functions."""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from schemas.vocabulary import ENDED_STATUSES
from services.common.readable import mask_phones_in
from services.gateway.open311_catalogue import Catalogue, Service


class Format(StrEnum):
    """The formats a resource is asked for by its extension, and their content types."""

    JSON = "json"
    XML = "xml"

    @property
    def media_type(self) -> str:
        """The content type of an answer in this format."""
        return (
            "application/json; charset=utf-8" if self is Format.JSON else "text/xml; charset=utf-8"
        )


@dataclass(frozen=True)
class StoredRequest:
    """A service request as the gateway keeps it, and the incident it joined (if known)."""

    intake_id: uuid.UUID
    service_code: str
    description: str
    address: str | None
    address_id: str | None
    lat: float | None
    lon: float | None
    media_url: str | None
    requested_at: datetime
    incident_id: uuid.UUID | None


@dataclass(frozen=True)
class Progress:
    """How far the incident of a request got, from the read model: triage's decision, the
    lifecycle and the agency's work order (answer and closing)."""

    incident_id: uuid.UUID
    status: str | None
    status_at: datetime | None
    agency: str | None
    classified_at: datetime | None
    kecamatan: str | None
    desa: str | None
    lat: float | None
    lon: float | None
    order_agency: str | None
    issued_at: datetime | None
    due_at: datetime | None
    answered_at: datetime | None
    response: str | None
    closed_at: datetime | None
    resolution: str | None


@dataclass(frozen=True)
class ServiceRequest:
    """A service request in the spec's fields and order."""

    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str | None
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


def w3(at: datetime) -> str:
    """A time as the spec writes it: W3C date-time in UTC, whole seconds, `Z`."""
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _agency(progress: Progress) -> str | None:
    agency = progress.order_agency or progress.agency
    return None if agency in (None, "", "-") else agency


def _ended_notes(progress: Progress, catalogue: Catalogue, agency: str) -> str:
    if progress.status == "cancelled":
        return catalogue.notices.cancelled
    if progress.status == "merged":
        return catalogue.notices.merged
    return progress.resolution or catalogue.notices.resolved.format(agency=agency)


def _updated(requested_at: datetime, progress: Progress, ended: bool) -> datetime:
    if ended:
        closed = progress.closed_at or progress.status_at
        if closed is not None:
            return closed
    steps = (progress.status_at, progress.classified_at, progress.issued_at, progress.answered_at)
    return max([requested_at, *(s for s in steps if s is not None)])


def _place(stored: StoredRequest, progress: Progress | None) -> tuple[str | None, Any, Any]:
    """Where: as the citizen sent it, else as the enricher resolved it."""
    address, lat, lon = stored.address, stored.lat, stored.lon
    if progress is not None and address is None and progress.desa:
        address = ", ".join(p for p in (progress.desa, progress.kecamatan) if p)
    if progress is not None and lat is None:
        lat, lon = progress.lat, progress.lon
    return address, lat, lon


def service_request(
    stored: StoredRequest, progress: Progress | None, catalogue: Catalogue
) -> ServiceRequest:
    """A stored request as the spec shows it: open until its incident ends or its work
    order is closed; the agency's answer, or its resolution, as the status notes."""
    service = catalogue.find(stored.service_code)
    notices = catalogue.notices
    status, notes, notice = "open", None, notices.received
    agency = expected = None
    updated = stored.requested_at
    if progress is not None and progress.classified_at is not None:
        agency = _agency(progress)
        named = agency or (service.agency if service else "")
        ended = progress.closed_at is not None or progress.status in ENDED_STATUSES
        status = "closed" if ended else "open"
        notes = _ended_notes(progress, catalogue, named) if ended else progress.response
        queued = progress.issued_at is not None and not ended
        notice = (notices.queued if queued else notices.handled).format(agency=named)
        expected = progress.due_at
        updated = _updated(stored.requested_at, progress, ended)
    address, lat, lon = _place(stored, progress)
    return ServiceRequest(
        service_request_id=str(stored.intake_id),
        status=status,
        status_notes=None if notes is None else mask_phones_in(notes),
        service_name=service.name if service else None,
        service_code=stored.service_code,
        description=mask_phones_in(stored.description) or None,
        agency_responsible=agency,
        service_notice=notice,
        requested_datetime=w3(stored.requested_at),
        updated_datetime=w3(updated),
        expected_datetime=None if expected is None else w3(expected),
        address=address,
        address_id=stored.address_id,
        zipcode=None,
        lat=lat,
        long=lon,
        media_url=stored.media_url,
    )


# ---------------------------------------------------------------- documents


@dataclass(frozen=True)
class Document:
    """An answer in the spec's shape: the XML root and item element names, and the value
    (a list of items, or one object for a service definition)."""

    root: str
    item: str | None
    value: list[dict[str, Any]] | dict[str, Any]


# Characters XML 1.0 cannot carry, even escaped (an agency's answer could hold one).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Lists inside an item, and the element name of each of their entries in XML.
_NESTED_ITEMS = {"attributes": "attribute", "values": "value"}


def services_document(services: Sequence[Service]) -> Document:
    """GET services: every service, with `metadata` false (none has attributes) and its
    agency as its group."""
    return Document(
        "services",
        "service",
        [
            {
                "service_code": s.code,
                "service_name": s.name,
                "description": s.description,
                "metadata": False,
                "type": "realtime",
                "keywords": ", ".join(s.keywords),
                "group": s.agency,
            }
            for s in services
        ],
    )


def definition_document(service: Service) -> Document:
    """GET services/{code}: the service definition; a complaint asks nothing beyond the
    spec's own fields, so its attributes are none."""
    return Document("service_definition", None, {"service_code": service.code, "attributes": []})


def requests_document(requests: Sequence[ServiceRequest]) -> Document:
    """GET requests and GET requests/{id}."""
    return Document("service_requests", "request", [asdict(r) for r in requests])


def created_document(request_id: uuid.UUID, *, notice: str, account_id: str | None) -> Document:
    """POST requests: the new request's id (known at once: the type is realtime)."""
    return Document(
        "service_requests",
        "request",
        [
            {
                "service_request_id": str(request_id),
                "service_notice": notice,
                "account_id": account_id,
            }
        ],
    )


def errors_document(status: int, descriptions: Sequence[str]) -> Document:
    """The spec's error list; each error's code is the HTTP status."""
    return Document("errors", "error", [{"code": status, "description": d} for d in descriptions])


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(element: ET.Element, fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        child = ET.SubElement(element, name)
        if isinstance(value, list):
            for entry in value:
                _fill(ET.SubElement(child, _NESTED_ITEMS[name]), entry)
        else:
            child.text = _text(value)


def render(document: Document, fmt: Format) -> bytes:
    """The document as UTF-8 JSON or XML (with its declaration, as the spec asks)."""
    if fmt is Format.JSON:
        return json.dumps(document.value, ensure_ascii=False).encode()
    root = ET.Element(document.root)
    if isinstance(document.value, dict):
        _fill(root, document.value)
    else:
        assert document.item is not None
        for entry in document.value:
            _fill(ET.SubElement(root, document.item), entry)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}'.encode()
