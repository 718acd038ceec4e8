"""CAP 1.2 alerts: the XML the gateway serves, valid against the OASIS schema; the rules
the schema leaves unchecked; the Atom feed of the current ones."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError, model_validator

from schemas.cap import CapAlert, alert_rule_problems
from schemas.events import _ALERT_EXAMPLE, AlertIssuedV1
from services.gateway.cap import (
    CAP_NS,
    InvalidAlert,
    alert_path,
    alert_xml,
    alerts_feed,
    cap_time,
    rule_problems,
)

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT.parent / "shared" / "specs" / "cap12" / "CAP-v1.2.xsd"
ATOM = "{http://www.w3.org/2005/Atom}"
CAP = f"{{{CAP_NS}}}"


@cache
def _schema() -> Any:
    if not XSD.is_file():
        pytest.skip(f"the OASIS CAP 1.2 schema is not at {XSD} (../shared absent)")
    import xmlschema

    return xmlschema.XMLSchema(str(XSD))


def xmlschema_error() -> type[Exception]:
    """The error xmlschema raises for a document its schema refuses."""
    _schema()
    import xmlschema

    return xmlschema.XMLSchemaValidationError


def assert_valid_cap(document: bytes) -> ET.Element:
    """`document` validates against CAP-v1.2.xsd; its root element."""
    _schema().validate(document.decode())
    return ET.fromstring(document)


def example(**changes: Any) -> dict[str, Any]:
    fields = copy.deepcopy(_ALERT_EXAMPLE)
    fields.update(changes)
    return fields


def minimal() -> CapAlert:
    """An alert with only what CAP and Siaga require."""
    return CapAlert(
        identifier="a-1",
        sender="bpbd@batangkab.go.id",
        sent=datetime(2026, 1, 14, 9, 5, 7, 123456, tzinfo=UTC),
        msg_type="Alert",
        categories=["Geo"],
        event="Gempa Bumi",
        urgency="Immediate",
        severity="Severe",
        certainty="Observed",
        area={"area_desc": "Kabupaten Batang"},
    )


# ---------------------------------------------------------------- valid CAP 1.2


def test_an_alert_with_every_element_is_valid_cap() -> None:
    alert = AlertIssuedV1.model_validate(_ALERT_EXAMPLE)
    root = assert_valid_cap(alert_xml(alert))
    assert root.tag == f"{CAP}alert"
    assert root.findtext(f"{CAP}msgType") == "Update"
    assert root.findtext(f"{CAP}references") == (
        "bpbd@batangkab.go.id,5d1e2f3a-7b6c-4d5e-8f90-1a2b3c4d5e6f,2026-01-14T15:10:00+07:00"
    )
    assert root.findtext(f"{CAP}incidents") == alert.incident_id.__str__()
    area = root.find(f"{CAP}info/{CAP}area")
    assert area is not None
    assert area.findtext(f"{CAP}polygon") == ("-7.01,109.91 -7.01,109.94 -7.04,109.94 -7.01,109.91")
    assert area.findtext(f"{CAP}circle") == "-7.02,109.92 2.0"
    assert area.findtext(f"{CAP}geocode/{CAP}value") == "33.25.08"


def test_a_minimal_alert_is_valid_cap_and_its_times_carry_an_offset_not_z() -> None:
    root = assert_valid_cap(alert_xml(minimal()))
    # to the second, and UTC written as +00:00: the schema's pattern refuses Z and fractions
    assert root.findtext(f"{CAP}sent") == "2026-01-14T09:05:07+00:00"
    assert root.find(f"{CAP}info/{CAP}expires") is None


def test_a_wib_time_is_written_with_plus_seven() -> None:
    at = datetime(2026, 1, 14, 9, 5, 30, 999, tzinfo=UTC)
    assert cap_time(at.astimezone(ZoneInfo("Asia/Jakarta"))) == "2026-01-14T16:05:30+07:00"
    with pytest.raises(ValueError, match="offset"):
        cap_time(datetime(2026, 1, 14, 16, 5))


def test_the_schema_itself_refuses_a_z_time() -> None:
    """The check the builder avoids is real: the same document with `Z` fails the XSD."""
    document = alert_xml(minimal()).decode().replace("+00:00", "Z")
    with pytest.raises(xmlschema_error(), match=r"(?i)pattern"):
        _schema().validate(document)


def test_text_with_control_characters_and_markup_stays_valid_xml() -> None:
    alert = AlertIssuedV1.model_validate(
        example(description="air \x01naik <1 m> & arus deras\x0b", headline="Banjir & longsor")
    )
    root = assert_valid_cap(alert_xml(alert))
    assert root.findtext(f"{CAP}info/{CAP}description") == "air naik <1 m> & arus deras"


# ---------------------------------------------------------------- rules the XSD leaves


class _Unchecked(CapAlert):
    """A CapAlert read without the rules (as a hand-made or damaged row might be)."""

    @model_validator(mode="after")
    def _follows_cap(self) -> _Unchecked:
        return self


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"msg_type": "Update", "references": []}, "must reference"),
        ({"msg_type": "Cancel", "references": []}, "must reference"),
        ({"scope": "Public", "restriction": "Relawan"}, "only for scope Restricted"),
        ({"scope": "Restricted", "restriction": None}, "needs a restriction"),
        ({"scope": "Restricted", "restriction": "  "}, "needs a restriction"),
        (
            {
                "area": {
                    "area_desc": "x",
                    "polygons": [
                        [
                            {"lat": -7.0, "lon": 109.9},
                            {"lat": -7.1, "lon": 109.9},
                            {"lat": -7.1, "lon": 110.0},
                        ]
                    ],
                }
            },
            "needs 4 or more",
        ),
        (
            {
                "area": {
                    "area_desc": "x",
                    "polygons": [
                        [
                            {"lat": -7.0, "lon": 109.9},
                            {"lat": -7.1, "lon": 109.9},
                            {"lat": -7.1, "lon": 110.0},
                            {"lat": -7.0, "lon": 110.0},
                        ]
                    ],
                }
            },
            "not closed",
        ),
        (
            {
                "references": [
                    {
                        "sender": "bpbd@batangkab.go.id",
                        "identifier": _ALERT_EXAMPLE["identifier"],
                        "sent": "2026-01-14T15:10:00+07:00",
                    }
                ]
            },
            "itself",
        ),
        ({"expires": "2026-01-14T15:00:00+07:00"}, "expires before"),
    ],
)
def test_each_rule_the_schema_leaves_unchecked_is_enforced(
    changes: dict[str, Any], problem: str
) -> None:
    fields = example(**changes)
    # an alert event that breaks the rule is refused at the door (CLI, decoder) ...
    with pytest.raises(ValidationError, match=problem):
        AlertIssuedV1.model_validate(fields)
    # ... and one that got past validation is found out, and never served
    unchecked = _Unchecked.model_validate(fields)
    assert any(problem in p for p in rule_problems(unchecked)), rule_problems(unchecked)
    with pytest.raises(InvalidAlert, match=problem):
        alert_xml(unchecked)


def test_a_valid_alert_breaks_no_rule() -> None:
    assert alert_rule_problems(AlertIssuedV1.model_validate(_ALERT_EXAMPLE)) == []
    assert rule_problems(minimal()) == []


def test_an_identifier_with_a_space_or_comma_is_refused() -> None:
    for bad in ("a b", "a,b", "a<b", "a&b"):
        with pytest.raises(ValidationError):
            AlertIssuedV1.model_validate(example(identifier=bad))


def test_the_next_message_of_a_thread_references_all_of_it() -> None:
    first = minimal()
    sent = first.sent + timedelta(minutes=5)
    update = first.next_message(identifier="a-2", sent=sent, msg_type="Update", severity="Extreme")
    cancel = update.next_message(
        identifier="a-3", sent=sent + timedelta(minutes=5), msg_type="Cancel", note="selesai"
    )
    assert [r.identifier for r in update.references] == ["a-1"]
    assert [r.identifier for r in cancel.references] == ["a-2", "a-1"]
    assert cancel.effective == cancel.sent and cancel.severity == "Extreme"
    root = assert_valid_cap(alert_xml(cancel))
    assert root.findtext(f"{CAP}references") == (
        "bpbd@batangkab.go.id,a-2,2026-01-14T09:10:07+00:00 "
        "bpbd@batangkab.go.id,a-1,2026-01-14T09:05:07+00:00"
    )
    with pytest.raises(ValidationError, match="itself"):
        first.next_message(identifier="a-1", sent=sent, msg_type="Update")


# ---------------------------------------------------------------- the feed


def test_the_feed_is_atom_with_an_entry_linking_each_alert_to_its_xml() -> None:
    alerts = [AlertIssuedV1.model_validate(_ALERT_EXAMPLE), minimal()]
    now = datetime(2026, 1, 14, 17, 0, tzinfo=UTC)
    feed = ET.fromstring(
        alerts_feed(alerts, base_url="https://siaga.example/", now=now, author="BPBD Batang")
    )
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id") == "https://siaga.example/cap/alerts"
    assert feed.findtext(f"{ATOM}updated") == "2026-01-14T17:00:00+00:00"
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "BPBD Batang"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 2
    for entry, alert in zip(entries, alerts, strict=True):
        link = entry.find(f"{ATOM}link")
        assert link is not None
        assert link.get("type") == "application/cap+xml"
        assert link.get("href") == "https://siaga.example" + alert_path(alert.identifier)
        assert entry.findtext(f"{ATOM}id") == link.get("href")
        assert entry.findtext(f"{ATOM}title") == (alert.headline or alert.event)
        assert entry.findtext(f"{ATOM}updated") == cap_time(alert.sent)
        for required in ("id", "title", "updated", "author"):
            assert entry.find(f"{ATOM}{required}") is not None
    assert alert_path("a-1") == "/cap/alerts/a-1.xml"


def test_an_empty_feed_is_still_a_feed() -> None:
    feed = ET.fromstring(alerts_feed([], base_url="http://localhost:8080", now=datetime.now(UTC)))
    assert feed.findall(f"{ATOM}entry") == [] and feed.findtext(f"{ATOM}title")
