"""Open311 GeoReport v2 without a server: the services from the data pack, a request's form
read and checked, the intake it becomes, search filters (clock passed in), a request's
status from its incident and work order, and the spec's JSON and XML."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.vocabulary import Category, Channel, Priority
from services.common.datapack import BUILTIN_PACK, DataFileError, open_pack
from services.common.gazetteer import load_gazetteer
from services.common.settings import CommonSettings
from services.gateway.open311 import catalogue_for
from services.gateway.open311_catalogue import Catalogue, load_catalogue
from services.gateway.open311_forms import (
    Open311Error,
    e164,
    intake_of,
    read_filters,
    read_form,
    read_request,
)
from services.gateway.open311_view import (
    Format,
    Progress,
    StoredRequest,
    created_document,
    definition_document,
    errors_document,
    render,
    requests_document,
    service_request,
    services_document,
    w3,
)
from services.triage.classifier import Classifier
from services.triage.lexicon import built_in_lexicon

NOW = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"
AGENCIES = {c: w.agency for c, w in built_in_lexicon().categories.items()}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return catalogue_for(CommonSettings())


def refused(call: Any, *args: Any, **kwargs: Any) -> Open311Error:
    with pytest.raises(Open311Error) as raised:
        call(*args, **kwargs)
    return raised.value


# ---------------------------------------------------------------- the services


def test_the_services_are_the_complaint_categories_with_triages_agencies(
    catalogue: Catalogue,
) -> None:
    codes = {s.code: s for s in catalogue.services}
    assert set(codes) == {
        "infrastructure",
        "environment",
        "utilities",
        "public_order",
        "social_welfare",
        "health_service",
        "civil_registry",
        "information",
    }
    for service in catalogue.services:
        # Data, not code: each agency is the one categories.toml names for the category.
        assert service.agency == AGENCIES[service.category]
        assert service.name and service.description and service.keywords
    assert codes["infrastructure"].agency == "DPUPR"
    assert codes["utilities"].agency == "PDAM/PLN"
    assert catalogue.find("fire") is None and catalogue.find("nope") is None
    # Any kecamatan or desa of the pack is an address_id; a desa names its kecamatan too,
    # so that namesakes (two Sendang) are told apart.
    assert catalogue.addresses["33.25.01.2005"] == "Sendang, Wonotunggal"
    assert catalogue.addresses["33.25.13"] == "Kandeman"


def test_a_request_without_a_description_lands_with_the_services_agency(
    catalogue: Catalogue,
) -> None:
    classifier = Classifier()
    for service in catalogue.services:
        decision = classifier.classify(text=service.name, channel=Channel.WEB)
        assert decision.category == service.category, service.name
        assert decision.priority in (Priority.P3, Priority.P4)


def write_pack(tmp_path: Path, open311: str) -> Path:
    (tmp_path / "regions").mkdir()
    (tmp_path / "regions" / "x_regions.csv").write_text(
        "code,level,name,parent_code,lat,lon\n"
        "99.02.01,kecamatan,Alpha,99.02,-7.0,110.0\n"
        "99.02.01.2001,desa,Beta,99.02.01,-7.1,110.1\n",
        encoding="utf-8",
    )
    (tmp_path / "open311.toml").write_text(open311, encoding="utf-8")
    return tmp_path


NOTICES = """
[notices]
received = "r"
queued = "q {agency}"
handled = "h {agency}"
resolved = "done"
cancelled = "c"
merged = "m"
"""


def test_another_regencys_services_load_from_its_pack(tmp_path: Path) -> None:
    pack = open_pack(
        write_pack(
            tmp_path,
            NOTICES + '[[service]]\ncode = "PJU-01"\ncategory = "infrastructure"\nname = "Lampu"\n',
        )
    )
    loaded = load_catalogue(pack.open311, agencies=AGENCIES, gazetteer=load_gazetteer(pack))
    (service,) = loaded.services
    assert (service.code, service.category, service.agency) == (
        "PJU-01",
        Category.INFRASTRUCTURE,
        "DPUPR",
    )
    assert loaded.addresses == {"99.02.01": "Alpha", "99.02.01.2001": "Beta, Alpha"}
    # A pack without the file gets Batang's.
    (tmp_path / "open311.toml").unlink()
    assert open_pack(tmp_path).open311 == BUILTIN_PACK / "open311.toml"


@pytest.mark.parametrize(
    ("services", "notices", "message"),
    [
        ('code = "roads"\nname = "Jalan"', NOTICES, "name its category"),
        ('code = "prank"\nname = "x"', NOTICES, "prank is no complaint"),
        ('code = "a.json"\ncategory = "infrastructure"\nname = "x"', NOTICES, "a code is"),
        ('code = "utilities"\nname = "x"\nkeywords = ["a, b"]', NOTICES, "no comma"),
        ('code = "utilities"\nname = "x"\ncolour = 1', NOTICES, "Extra inputs"),
        ('code = "utilities"\nname = "x"', NOTICES.replace("q {agency}", "q {due}"), "{agency}"),
        ('code = "utilities"\nname = ""', NOTICES, "at least 1 character"),
    ],
)
def test_a_bad_services_file_is_refused_in_one_line(
    tmp_path: Path, services: str, notices: str, message: str
) -> None:
    pack = open_pack(write_pack(tmp_path, notices + "[[service]]\n" + services + "\n"))
    with pytest.raises(DataFileError) as raised:
        load_catalogue(pack.open311, agencies=AGENCIES, gazetteer=load_gazetteer(pack))
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert str(raised.value).startswith(str(pack.open311))


def test_a_service_code_used_twice_is_refused(tmp_path: Path) -> None:
    twice = '[[service]]\ncode = "utilities"\nname = "x"\n' * 2
    pack = open_pack(write_pack(tmp_path, NOTICES + twice))
    with pytest.raises(DataFileError, match="used twice: utilities"):
        load_catalogue(pack.open311, agencies=AGENCIES, gazetteer=load_gazetteer(pack))


# ---------------------------------------------------------------- POST requests


def test_a_form_is_read_strictly() -> None:
    body = b"api_key=k&service_code=utilities&description=air+mati%2C+sudah+2+hari&lat="
    assert read_form(f"{FORM}; charset=UTF-8", body) == {
        "api_key": "k",
        "service_code": "utilities",
        "description": "air mati, sudah 2 hari",
        "lat": "",
    }
    assert read_form(FORM, b"") == {}
    cases = [
        ("application/json", b"{}", "send the request as application/x-www-form-urlencoded"),
        ("multipart/form-data; boundary=x", b"", "application/x-www-form-urlencoded"),
        (f"{FORM}; charset=latin-1", b"a=1", "must be UTF-8"),
        (FORM, b"description", "not a well-formed form"),
        (FORM, b"description=%FF", "not a well-formed form"),
        (FORM, b"&".join([b"x=1"] * 100), "not a well-formed form"),
    ]
    for content_type, sent, message in cases:
        error = refused(read_form, content_type, sent)
        assert error.status == 400 and message in error.descriptions[0], sent
    error = refused(read_form, FORM, b"colour=red&attribute[WHY]=1&phone=1&phone=2")
    assert error.status == 400
    assert error.descriptions == (
        "colour: not a field of a service request",
        "attribute[WHY]: no service here has attributes (see services/{code}.json)",
        "phone: given more than once",
    )


def test_a_request_becomes_an_intake_of_the_citizens_words(catalogue: Catalogue) -> None:
    request = read_request(
        {
            "api_key": "k",
            "jurisdiction_id": "batangkab.go.id",
            "service_code": "infrastructure",
            "address_string": " Jl. Pemuda, Kandeman ",
            "lat": "-6.925",
            "long": "109.765",
            "description": "Lampu jalan mati\nsudah seminggu",
            "first_name": "Siti",
            "last_name": "Aminah",
            "phone": "0812 3456 7890",
            "email": "siti@example.id",
            "device_id": "dev-1",
            "account_id": "acc-9",
            "media_url": "https://example.id/foto.jpg",
            "address_id": "",  # empty: as if not sent
        },
        catalogue,
    )
    intake_id = uuid.uuid4()
    intake = intake_of(request, intake_id=intake_id, now=NOW, catalogue=catalogue)
    assert intake.intake_id == intake_id and intake.channel is Channel.WEB
    assert intake.received_at == NOW
    assert intake.text == "Lampu jalan mati\nsudah seminggu"  # nothing added to it
    assert intake.place_hint == "Jl. Pemuda, Kandeman"
    assert intake.location is not None
    assert (intake.location.lat, intake.location.lon) == (-6.925, 109.765)
    assert (intake.caller.phone, intake.caller.name) == ("+6281234567890", "Siti Aminah")
    assert (request.email, request.device_id, request.account_id, request.address_id) == (
        "siti@example.id",
        "dev-1",
        "acc-9",
        None,
    )
    assert request.media_url == "https://example.id/foto.jpg"


def test_the_chosen_service_cannot_hide_a_threat_to_life(catalogue: Catalogue) -> None:
    fire = "rumah terbakar, api besar, ada anak terjebak di dalam"
    request = read_request(
        {"service_code": "infrastructure", "address_string": "Kandeman", "description": fire},
        catalogue,
    )
    intake = intake_of(request, intake_id=uuid.uuid4(), now=NOW, catalogue=catalogue)
    assert intake.text == fire
    decision = Classifier().classify(text=intake.text, channel=Channel.WEB)
    assert (decision.category, decision.priority) == (Category.FIRE, Priority.P1)


def test_without_a_description_or_address_the_service_and_address_id_speak(
    catalogue: Catalogue,
) -> None:
    request = read_request(
        {"service_code": "environment", "address_id": "33.25.01.2005"}, catalogue
    )
    intake = intake_of(request, intake_id=uuid.uuid4(), now=NOW, catalogue=catalogue)
    assert intake.text == catalogue.find("environment").name  # type: ignore[union-attr]
    assert intake.place_hint == "Sendang, Wonotunggal"
    assert intake.location is None and intake.caller.phone is None


def test_a_request_names_a_service_that_exists(catalogue: Catalogue) -> None:
    for fields in ({}, {"service_code": " "}):
        error = refused(read_request, fields, catalogue)
        assert error.status == 400 and "service_code: required" in error.descriptions[0]
    error = refused(read_request, {"service_code": "fire", "lat": "1", "long": "1"}, catalogue)
    assert error.status == 404 and "'fire': no such service" in error.descriptions[0]


def test_every_problem_of_a_request_is_listed_at_once(catalogue: Catalogue) -> None:
    error = refused(
        read_request,
        {
            "service_code": "utilities",
            "lat": "-95",
            "long": "east",
            "address_id": "33.99",
            "phone": "12345",
            "email": "not-an-address",
            "media_url": "javascript:alert(1)",
            "description": "x" * 4001,
            "first_name": "a\x00b",
        },
        catalogue,
    )
    assert error.status == 400
    assert error.descriptions == (
        "lat: WGS84 degrees, from -90 to 90",
        "long: WGS84 degrees, from -180 to 180",
        "address_id: the Kemendagri code of a kecamatan or desa/kelurahan of this regency",
        "first_name: no control characters (line breaks are fine)",
        "description: at most 4000 characters",
        "phone: a phone number, e.g. 0812-3456-7890 or +6281234567890",
        "email: an e-mail address",
        "media_url: an http(s) URL of at most 2048 characters",
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "a location is required"),
        ({"lat": "-6.9"}, "lat and long: send both or neither"),
        ({"long": "109.7", "address_string": ""}, "lat and long: send both or neither"),
        ({"address_string": "x" * 201}, "address_string: at most 200 characters"),
        ({"address_string": "a", "first_name": "x" * 150, "last_name": "y" * 60}, "together"),
    ],
)
def test_a_request_needs_one_whole_location(
    catalogue: Catalogue, fields: dict[str, str], message: str
) -> None:
    error = refused(read_request, {"service_code": "utilities", **fields}, catalogue)
    assert error.status == 400 and any(message in d for d in error.descriptions)


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("(0285) 391234", "+62285391234"),
        ("0062 812 3456 7890", "+6281234567890"),
        ("+31 20 123 4567", "+31201234567"),
        ("12345", None),
        ("81234567890", None),
        ("0812-abc", None),
    ],
)
def test_phone_numbers_as_people_type_them(typed: str, found: str | None) -> None:
    assert e164(typed) == found


# ---------------------------------------------------------------- GET requests filters


def query(**values: str | list[str]) -> Any:
    def get(name: str) -> list[str]:
        value = values.get(name, [])
        return [value] if isinstance(value, str) else value

    return get


def test_a_search_defaults_to_the_last_90_days_of_every_service_and_status() -> None:
    filters = read_filters(query(), now=NOW)
    assert (filters.start, filters.end) == (NOW - timedelta(days=90), NOW)
    assert filters.ids is None and not filters.service_codes and not filters.statuses


def test_a_search_window_is_at_most_90_days() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    only_start = read_filters(query(start_date="2025-01-01T00:00:00Z"), now=NOW)
    assert (only_start.start, only_start.end) == (start, start + timedelta(days=90))
    only_end = read_filters(query(end_date="2025-01-01T07:00:00+07:00"), now=NOW)
    assert (only_end.start, only_end.end) == (start - timedelta(days=90), start)
    # "+07:00" sent unescaped arrives as " 07:00".
    spaced = read_filters(query(start_date="2025-01-01T07:00:00 07:00"), now=NOW)
    assert spaced.start == start
    both = read_filters(
        query(start_date="2025-01-01T00:00:00Z", end_date="2025-03-31T00:00:00Z"), now=NOW
    )
    assert (both.start, both.end) == (start, datetime(2025, 3, 31, tzinfo=UTC))
    for bad, message in [
        ({"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-04-02T00:00:00Z"}, "90 days"),
        ({"start_date": "2025-02-01T00:00:00Z", "end_date": "2025-01-01T00:00:00Z"}, "before"),
        ({"start_date": "2025-01-01T00:00:00"}, "time zone"),
        ({"end_date": "2025-01-01"}, "time zone"),
        ({"start_date": "yesterday"}, "start_date: a date-time"),
    ]:
        error = refused(read_filters, query(**bad), now=NOW)
        assert error.status == 400 and message in error.descriptions[0], bad


def test_a_search_by_service_and_status_takes_lists_and_repeats() -> None:
    filters = read_filters(
        query(service_code=["utilities,environment", "information"], status="Open, closed"),
        now=NOW,
    )
    assert filters.service_codes == {"utilities", "environment", "information"}
    assert filters.statuses == {"open", "closed"}
    error = refused(read_filters, query(status="open,pending"), now=NOW)
    assert error.status == 400 and "found pending" in error.descriptions[0]


def test_a_search_by_id_overrides_the_rest() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    filters = read_filters(query(service_request_id=f"{a},{b},{a}", status="open"), now=NOW)
    assert filters.ids == (a, b)
    error = refused(read_filters, query(service_request_id=f"{a},638344"), now=NOW)
    assert error.status == 400 and "'638344': not a request id" in error.descriptions[0]
    many = ",".join(str(uuid.uuid4()) for _ in range(1001))
    assert refused(read_filters, query(service_request_id=many), now=NOW).status == 400


# ---------------------------------------------------------------- a request's status


def stored(**changes: Any) -> StoredRequest:
    values: dict[str, Any] = {
        "intake_id": uuid.UUID(int=7),
        "service_code": "infrastructure",
        "description": "lampu jalan mati, hubungi 0812-3456-7890",
        "address": None,
        "address_id": None,
        "lat": None,
        "lon": None,
        "media_url": "https://example.id/a.jpg",
        "requested_at": NOW,
        "incident_id": None,
    }
    return StoredRequest(**{**values, **changes})


def progress(**changes: Any) -> Progress:
    values: dict[str, Any] = {
        "incident_id": uuid.UUID(int=8),
        "status": "classified",
        "status_at": NOW + timedelta(seconds=2),
        "agency": "DPUPR",
        "classified_at": NOW + timedelta(seconds=2),
        "kecamatan": "Kandeman",
        "desa": "Tegalsari",
        "lat": -6.93,
        "lon": 109.77,
        "order_agency": None,
        "issued_at": None,
        "due_at": None,
        "answered_at": None,
        "response": None,
        "closed_at": None,
        "resolution": None,
    }
    return Progress(**{**values, **changes})


def test_a_request_not_yet_triaged_is_open_and_says_so(catalogue: Catalogue) -> None:
    shown = service_request(stored(address="Kandeman"), None, catalogue)
    assert shown.service_request_id == str(uuid.UUID(int=7))
    assert (shown.status, shown.status_notes, shown.agency_responsible) == ("open", None, None)
    assert shown.service_notice == catalogue.notices.received
    assert shown.service_name == "Jalan, jembatan, lampu jalan dan drainase"
    assert shown.requested_datetime == shown.updated_datetime == "2025-03-10T09:30:00Z"
    assert shown.expected_datetime is None and shown.address == "Kandeman"
    # The description is public: a phone number in it is masked.
    assert shown.description == "lampu jalan mati, hubungi 08123*****90"
    # An incident opened but not classified yet is no further along for the citizen.
    opened = progress(classified_at=None, agency=None, status="received")
    assert service_request(stored(), opened, catalogue).service_notice == catalogue.notices.received


def test_a_queued_request_shows_its_agency_and_due_time(catalogue: Catalogue) -> None:
    due = NOW + timedelta(days=3)
    queued = progress(
        status="dispatched",
        status_at=NOW + timedelta(seconds=3),
        order_agency="DPUPR",
        issued_at=NOW + timedelta(seconds=3),
        due_at=due,
    )
    shown = service_request(stored(), queued, catalogue)
    assert (shown.status, shown.agency_responsible) == ("open", "DPUPR")
    assert shown.service_notice == "Diteruskan ke DPUPR; " + (
        "tanggapan pertama paling lambat 3 hari sejak laporan diterima."
    )
    assert shown.expected_datetime == w3(due) == "2025-03-13T09:30:00Z"
    assert shown.updated_datetime == "2025-03-10T09:30:03Z"
    # Where: the enricher's place when the citizen gave only a description.
    assert (shown.address, shown.lat, shown.long) == ("Tegalsari, Kandeman", -6.93, 109.77)
    mine = service_request(stored(address="Jl. Pemuda", lat=-6.9, lon=109.7), queued, catalogue)
    assert (mine.address, mine.lat, mine.long) == ("Jl. Pemuda", -6.9, 109.7)
    answered = service_request(
        stored(),
        progress(
            status="acknowledged",
            order_agency="DPUPR",
            issued_at=NOW,
            due_at=due,
            answered_at=NOW + timedelta(hours=5),
            response="Petugas dijadwalkan besok pagi",
        ),
        catalogue,
    )
    assert answered.status == "open"
    assert answered.status_notes == "Petugas dijadwalkan besok pagi"
    assert answered.updated_datetime == "2025-03-10T14:30:00Z"


def test_a_closed_work_order_closes_the_request(catalogue: Catalogue) -> None:
    closed_at = NOW + timedelta(days=1)
    shown = service_request(
        stored(),
        progress(
            status="resolved",
            status_at=closed_at,
            order_agency="DPUPR",
            issued_at=NOW,
            due_at=NOW + timedelta(days=3),
            answered_at=NOW + timedelta(hours=5),
            response="dijadwalkan",
            closed_at=closed_at,
            resolution="Lampu sudah diganti",
        ),
        catalogue,
    )
    assert (shown.status, shown.status_notes) == ("closed", "Lampu sudah diganti")
    assert shown.updated_datetime == w3(closed_at)
    assert shown.service_notice == "Ditangani oleh DPUPR."


@pytest.mark.parametrize(
    ("status", "notes"),
    [
        ("cancelled", "Dibatalkan oleh petugas pusat panggilan."),
        ("merged", "Digabung dengan laporan lain tentang kejadian yang sama."),
        ("resolved", "Selesai ditangani oleh Damkar."),
        ("closed", "Selesai ditangani oleh Damkar."),
    ],
)
def test_an_ended_incident_closes_the_request(
    catalogue: Catalogue, status: str, notes: str
) -> None:
    ended_at = NOW + timedelta(hours=2)
    shown = service_request(
        stored(), progress(status=status, status_at=ended_at, agency="Damkar"), catalogue
    )
    assert (shown.status, shown.status_notes) == ("closed", notes)
    assert (shown.agency_responsible, shown.updated_datetime) == ("Damkar", w3(ended_at))


def test_a_non_incident_names_no_agency(catalogue: Catalogue) -> None:
    shown = service_request(stored(), progress(agency="-"), catalogue)
    assert shown.agency_responsible is None
    assert shown.service_notice == "Ditangani oleh DPUPR."  # the service's own agency


# ---------------------------------------------------------------- JSON and XML


def xml_of(body: bytes) -> ET.Element:
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n')
    return ET.fromstring(body)


def test_services_in_json_and_xml(catalogue: Catalogue) -> None:
    document = services_document(catalogue.services)
    as_json = json.loads(render(document, Format.JSON))
    assert as_json[0] == {
        "service_code": "infrastructure",
        "service_name": "Jalan, jembatan, lampu jalan dan drainase",
        "description": catalogue.services[0].description,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(catalogue.services[0].keywords),
        "group": "DPUPR",
    }
    root = xml_of(render(document, Format.XML))
    assert root.tag == "services" and [e.tag for e in root] == ["service"] * 8
    first = {child.tag: child.text for child in root[0]}
    assert first == {k: str(v).lower() if isinstance(v, bool) else v for k, v in as_json[0].items()}


def test_a_service_definition_in_json_and_xml(catalogue: Catalogue) -> None:
    document = definition_document(catalogue.services[0])
    assert json.loads(render(document, Format.JSON)) == {
        "service_code": "infrastructure",
        "attributes": [],
    }
    root = xml_of(render(document, Format.XML))
    assert root.tag == "service_definition"
    assert [(e.tag, e.text) for e in root] == [
        ("service_code", "infrastructure"),
        ("attributes", None),
    ]
    assert len(root.find("attributes")) == 0  # type: ignore[arg-type]


def test_requests_created_and_errors_in_json_and_xml(catalogue: Catalogue) -> None:
    shown = service_request(stored(description="a\x01b <c> & d"), None, catalogue)
    root = xml_of(render(requests_document([shown]), Format.XML))
    assert root.tag == "service_requests" and [e.tag for e in root] == ["request"]
    fields = {child.tag: child.text for child in root[0]}
    assert list(fields)[:3] == ["service_request_id", "status", "status_notes"]
    assert fields["description"] == "ab <c> & d"  # what XML cannot carry is dropped
    assert fields["status_notes"] is None and fields["zipcode"] is None
    as_json = json.loads(render(requests_document([shown]), Format.JSON))
    assert as_json[0]["status"] == "open" and as_json[0]["lat"] is None
    created = created_document(uuid.UUID(int=1), notice="ok", account_id=None)
    assert json.loads(render(created, Format.JSON)) == [
        {"service_request_id": str(uuid.UUID(int=1)), "service_notice": "ok", "account_id": None}
    ]
    root = xml_of(render(created, Format.XML))
    assert [(e.tag, e.text) for e in root[0]] == [
        ("service_request_id", str(uuid.UUID(int=1))),
        ("service_notice", "ok"),
        ("account_id", None),
    ]
    errors = errors_document(403, ["api_key refused: unknown or revoked API key"])
    assert json.loads(render(errors, Format.JSON)) == [
        {"code": 403, "description": "api_key refused: unknown or revoked API key"}
    ]
    root = xml_of(render(errors, Format.XML))
    assert root.tag == "errors" and root[0].tag == "error"
    assert root[0].findtext("code") == "403"


def test_formats_have_the_specs_content_types() -> None:
    assert Format.JSON.media_type == "application/json; charset=utf-8"
    assert Format.XML.media_type == "text/xml; charset=utf-8"
