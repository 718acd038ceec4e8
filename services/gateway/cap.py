"""CAP 1.2 for the gateway: the XML of one alert (`GET /cap/alerts/{id}.xml`) and the Atom
feed of the current ones (`GET /cap/alerts`), from the read model's alerts. Pure: the
caller reads the alerts (services/projector/queries.py) and serves the bytes.

The feed is Atom 1.0, as the OASIS CAP feeds note and the public alert aggregators read
it: one entry per current message, linking to its CAP XML (`application/cap+xml`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime

from schemas.cap import AlertArea, CapAlert, Point, alert_rule_problems

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
FEED_PATH = "/cap/alerts"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class InvalidAlert(ValueError):
    """An alert that breaks a rule of CAP 1.2; `problems` says which, one line each."""

    def __init__(self, identifier: str, problems: list[str]) -> None:
        super().__init__(f"alert {identifier}: {'; '.join(problems)}")
        self.problems = problems


def rule_problems(alert: CapAlert) -> list[str]:
    """The rules of CAP 1.2 the XML Schema leaves unchecked that `alert` breaks (an Update
    or Cancel without references, an open or short polygon, a restriction without scope
    Restricted or the reverse); empty when it follows them."""
    return alert_rule_problems(alert)


def cap_time(at: datetime) -> str:
    """A CAP time: to the second, with its UTC offset as digits (CAP refuses `Z`)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a CAP time needs its UTC offset, not {at.isoformat()}")
    return at.replace(microsecond=0).isoformat()


def alert_path(identifier: str) -> str:
    """Where the gateway serves an alert's XML."""
    return f"{FEED_PATH}/{identifier}.xml"


def _text(value: str) -> str:
    return _CONTROL.sub("", value)


def _add(parent: ET.Element, tag: str, value: str | None, ns: str | None = CAP_NS) -> None:
    if value is not None:
        ET.SubElement(parent, f"{{{ns}}}{tag}" if ns else tag).text = _text(value)


def _pair(parent: ET.Element, tag: str, name: str, value: str) -> None:
    element = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    _add(element, "valueName", name)
    _add(element, "value", value)


def _ring(points: list[Point]) -> str:
    return " ".join(f"{p.lat},{p.lon}" for p in points)


def _area(info: ET.Element, area: AlertArea) -> None:
    element = ET.SubElement(info, f"{{{CAP_NS}}}area")
    _add(element, "areaDesc", area.area_desc)
    for ring in area.polygons:
        _add(element, "polygon", _ring(ring))
    for circle in area.circles:
        _add(element, "circle", f"{circle.lat},{circle.lon} {circle.radius_km}")
    for code in area.geocodes:
        _pair(element, "geocode", code.value_name, code.value)


def _info(root: ET.Element, alert: CapAlert) -> None:
    info = ET.SubElement(root, f"{{{CAP_NS}}}info")
    _add(info, "language", alert.language)
    for category in alert.categories:
        _add(info, "category", category)
    _add(info, "event", alert.event)
    for response in alert.response_types:
        _add(info, "responseType", response)
    _add(info, "urgency", alert.urgency)
    _add(info, "severity", alert.severity)
    _add(info, "certainty", alert.certainty)
    for tag in ("effective", "onset", "expires"):
        at = getattr(alert, tag)
        _add(info, tag, None if at is None else cap_time(at))
    _add(info, "senderName", alert.sender_name)
    _add(info, "headline", alert.headline)
    _add(info, "description", alert.description)
    _add(info, "instruction", alert.instruction)
    _add(info, "web", alert.web)
    _add(info, "contact", alert.contact)
    _area(info, alert.area)


def alert_xml(alert: CapAlert) -> bytes:
    """The CAP 1.2 XML document of one alert (UTF-8, with its declaration); `InvalidAlert`
    if it breaks a rule the XML Schema does not check, so no such alert is ever served."""
    problems = rule_problems(alert)
    if problems:
        raise InvalidAlert(alert.identifier, problems)
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _add(root, "identifier", alert.identifier)
    _add(root, "sender", alert.sender)
    _add(root, "sent", cap_time(alert.sent))
    _add(root, "status", alert.status)
    _add(root, "msgType", alert.msg_type)
    _add(root, "source", alert.source)
    _add(root, "scope", alert.scope)
    _add(root, "restriction", alert.restriction)
    _add(root, "note", alert.note)
    if alert.references:
        _add(
            root,
            "references",
            " ".join(f"{r.sender},{r.identifier},{cap_time(r.sent)}" for r in alert.references),
        )
    if alert.incident_id is not None:
        _add(root, "incidents", str(alert.incident_id))
    _info(root, alert)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)


def _entry(feed: ET.Element, alert: CapAlert, base_url: str) -> None:
    entry = ET.SubElement(feed, "entry")
    url = base_url + alert_path(alert.identifier)
    _add(entry, "id", url, None)
    _add(entry, "title", alert.headline or alert.event, None)
    _add(entry, "updated", cap_time(alert.sent), None)
    _add(entry, "published", cap_time(alert.sent), None)
    _add(ET.SubElement(entry, "author"), "name", alert.sender_name or alert.sender, None)
    ET.SubElement(entry, "link", rel="alternate", type=CAP_MEDIA_TYPE, href=url)
    for term in (alert.msg_type, alert.status, *alert.categories):
        ET.SubElement(entry, "category", term=term)
    summary = f"{alert.msg_type}: {alert.event}, {alert.area.area_desc}"
    if alert.note:
        summary += f" ({alert.note})"
    _add(entry, "summary", summary, None)


def alerts_feed(
    alerts: Sequence[CapAlert],
    *,
    base_url: str,
    now: datetime,
    title: str = "Peringatan dini (CAP 1.2)",
    author: str = "Siaga",
) -> bytes:
    """The Atom feed of `alerts` (the current ones, newest first), each entry linking to
    its CAP XML under `base_url` (e.g. `https://siaga.example`); `author` names the
    feed's publisher (the alert policy's `sender_name`)."""
    base_url = base_url.rstrip("/")
    # Atom is the default namespace, written on the root: its attributes are unqualified.
    feed = ET.Element("feed", xmlns=ATOM_NS)
    _add(feed, "id", base_url + FEED_PATH, None)
    _add(feed, "title", title, None)
    _add(feed, "updated", cap_time(now), None)
    _add(ET.SubElement(feed, "author"), "name", author, None)
    ET.SubElement(feed, "link", rel="self", type=ATOM_MEDIA_TYPE, href=base_url + FEED_PATH)
    for alert in alerts:
        _entry(feed, alert, base_url)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
