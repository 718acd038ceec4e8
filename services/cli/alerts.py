"""Public alerts (CAP 1.2) a BPBD officer issues, updates and cancels (`siaga alert ...`),
and the current ones as the gateway's feed shows them."""

from __future__ import annotations

import argparse
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.cli.commands import CommandError, _duration, print_json
from services.cli.parsing import group, id_of
from services.cli.readmodel import read_model

if TYPE_CHECKING:
    from schemas.cap import AlertArea, Circle, Point
    from services.common.alerting import AlertPolicy
    from services.projector.queries import AlertEntry

# The CAP values an officer chooses, as the standard spells them.
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
SCOPES = ("Public", "Restricted", "Private")
STATUSES = ("Actual", "Exercise", "System", "Test")
CATEGORIES = (
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
)  # fmt: skip
RESPONSES = (
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None",
)  # fmt: skip
SOURCE = "/siaga/cli/alerts"
_NUMBER = r"-?\d+(?:\.\d+)?"
_PAIR = re.compile(rf"^({_NUMBER}),({_NUMBER})$")


def _policy() -> AlertPolicy:
    from services.common.alerting import load_alert_policy
    from services.common.settings import HomeSettings

    return load_alert_policy(HomeSettings().pack())


def _point(text: str, what: str) -> Point:
    from pydantic import ValidationError

    from schemas.cap import Point

    match = _PAIR.match(text)
    if match is None:
        raise CommandError(f"bad {what}: {text!r} is not 'lat,lon'")
    try:
        return Point(lat=float(match[1]), lon=float(match[2]))
    except ValidationError:
        raise CommandError(f"bad {what}: {text!r} is off the globe") from None


def _polygon(text: str) -> list[Point]:
    """`lat,lon lat,lon ...` (CAP's own way), a closed ring of four points or more."""
    from schemas.cap import ring_problems

    ring = [_point(part, "polygon point") for part in text.split()]
    problems = ring_problems([ring])
    if problems:
        raise CommandError(f"bad polygon {text[:60]!r}: {problems[0].removeprefix('polygon 1 ')}")
    return ring


def _circle(text: str) -> Circle:
    """`lat,lon radius_km`."""
    from schemas.cap import Circle

    centre, _, radius = text.strip().partition(" ")
    point = _point(centre, "circle centre")
    try:
        return Circle(lat=point.lat, lon=point.lon, radius_km=float(radius))
    except ValueError:
        raise CommandError(f"bad circle {text!r}: write it as 'lat,lon radius_km'") from None


def _area(args: argparse.Namespace, policy: AlertPolicy) -> AlertArea | None:
    """The area the options name (kecamatan, polygons, circles), or None when they name none."""
    from schemas.cap import AlertArea

    kecamatan = []
    for name in args.kecamatan or []:
        found = policy.kecamatan(name)
        if found is None:
            known = ", ".join(k.name for k in policy.gazetteer.kecamatan)
            raise CommandError(f"unknown kecamatan {name!r}; one of: {known}")
        kecamatan.append(found)
    polygons = [_polygon(p) for p in args.polygon or []]
    circles = [_circle(c) for c in args.circle or []]
    if not (kecamatan or polygons or circles):
        if args.area_desc:
            raise CommandError("--area-desc needs --kecamatan, --polygon or --circle")
        return None
    named = policy.area_of(kecamatan) if kecamatan else None
    desc = args.area_desc or (named.area_desc if named else None)
    if not desc:
        raise CommandError("say where in words: --area-desc (or name a --kecamatan)")
    return AlertArea(
        area_desc=desc,
        polygons=(named.polygons if named else []) + polygons,
        circles=circles,
        geocodes=named.geocodes if named else [],
    )


def _content(args: argparse.Namespace, policy: AlertPolicy) -> dict[str, Any]:
    """The fields the options set (the hazard's wording first, what is given over it)."""
    fields: dict[str, Any] = {}
    if args.hazard:
        hazard = policy.hazard(args.hazard)
        if hazard is None:
            known = ", ".join(h.name for h in policy.hazards)
            raise CommandError(f"unknown hazard {args.hazard!r}; one of: {known}")
        fields.update(
            event=hazard.event,
            categories=[hazard.category],
            response_types=list(hazard.response),
            instruction=hazard.instruction,
        )
    given = {
        "event": args.event,
        "categories": args.category,
        "response_types": args.response,
        "urgency": args.urgency,
        "severity": args.severity,
        "certainty": args.certainty,
        "headline": args.headline,
        "description": args.description,
        "instruction": args.instruction,
        "scope": args.scope,
        "restriction": args.restriction,
        "status": args.status,
        "incident_id": args.incident,
        "source": args.by,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    area = _area(args, policy)
    if area is not None:
        fields["area"] = area
    if args.scope and args.scope != "Restricted" and args.restriction is None:
        fields["restriction"] = None  # an earlier alert's restriction goes with its scope
    return fields


def _refused(exc: Exception) -> CommandError:
    """What CAP (or a field's limit) refuses in an alert, in one line."""
    from pydantic import ValidationError

    from schemas.errors import first_error

    if not isinstance(exc, ValidationError):
        return CommandError(f"bad alert: {exc}")
    where, message = first_error(exc)
    message = message.removeprefix("Value error, ")
    return CommandError(f"bad alert: {where + ': ' if where else ''}{message}")


def _checked(fields: dict[str, Any]) -> Any:
    """The alert event of `fields`, or one line saying what CAP refuses in it."""
    from schemas.events import AlertIssuedV1

    try:
        return AlertIssuedV1(**fields)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise _refused(exc) from None


async def _send(alert: Any) -> int:
    """Publish the alert event and say what was sent (its identifier alone on the last line)."""
    from services.cli.supervisor import publish
    from services.common.settings import CommonSettings

    await publish(CommonSettings(), alert, source=SOURCE)
    until = f", until {alert.expires:%Y-%m-%d %H:%M %Z}" if alert.expires else ""
    print(
        f"{alert.msg_type} sent: {alert.headline or alert.event} ({alert.urgency}/"
        f"{alert.severity}/{alert.certainty}, {alert.area.area_desc}{until})"
    )
    print(alert.identifier)
    return 0


async def issue(args: argparse.Namespace) -> int:
    """Issue a new public alert."""
    policy = _policy()
    fields = _content(args, policy)
    if "event" not in fields:
        raise CommandError("say what the alert is about: --hazard or --event")
    if "area" not in fields:
        raise CommandError("say where: --kecamatan, --polygon or --circle")
    if "categories" not in fields:
        raise CommandError("give --category (or a --hazard, which has one)")
    sent = policy.local(datetime.now(UTC))
    fields.update(
        identifier=str(uuid.uuid4()),
        sender=policy.sender,
        sender_name=policy.sender_name,
        sent=sent,
        msg_type="Alert",
        language=policy.language,
        effective=sent,
        expires=sent + (_duration(args.expires) if args.expires else policy.expires_after),
        contact=policy.contact,
        web=policy.web,
    )
    return await _send(_checked(fields))


async def _earlier(identifier: str) -> AlertEntry:
    """The alert a follow-up replaces, once the read model has it: refused when it is
    unknown, derived from an incident, a Cancel, or already replaced."""
    import asyncio

    from services.projector.queries import cap_alert_entry

    conn = await read_model()
    try:
        # An alert issued a moment ago may still be on its way into the read model.
        for _ in range(12):
            entry = await cap_alert_entry(conn, identifier)
            if entry is not None:
                break
            await asyncio.sleep(0.25)
    finally:
        await conn.close()
    if entry is None:
        raise CommandError(f"no alert {identifier}")
    if entry.origin != "issued":
        raise CommandError(
            f"alert {identifier} follows incident {entry.alert.incident_id}: it is updated "
            "and cancelled with the incident; issue a new alert with --incident instead"
        )
    if entry.replaced_by:
        raise CommandError(f"alert {identifier} was replaced by {entry.replaced_by}: use that one")
    if entry.alert.msg_type == "Cancel":
        raise CommandError(f"alert {identifier} is a Cancel: there is nothing left to change")
    return entry


async def follow_up(args: argparse.Namespace) -> int:
    """Update or cancel an officer's alert: the next message of its thread."""
    policy = _policy()
    cancel = args.alert_command == "cancel"
    fields: dict[str, Any] = {} if cancel else _content(args, policy)
    duration = _duration(args.expires) if getattr(args, "expires", None) else None
    earlier = (await _earlier(args.id)).alert
    sent = policy.local(datetime.now(UTC))
    if cancel:
        fields.update(
            msg_type="Cancel",
            note=args.reason,
            headline=f"Dicabut: {earlier.headline or earlier.event}"[:200],
            expires=max(earlier.expires or sent, sent),
        )
        if args.by:
            fields["source"] = args.by
    else:
        still = earlier.expires if earlier.expires and earlier.expires > sent else None
        fields.update(
            msg_type="Update",
            note=args.note,
            expires=sent + duration if duration else still or sent + policy.expires_after,
        )
    identifier = str(uuid.uuid4())
    try:
        following = earlier.next_message(identifier=identifier, sent=sent, **fields)
    except ValueError as exc:
        raise _refused(exc) from None
    return await _send(_checked(following.model_dump()))


async def listing(args: argparse.Namespace) -> int:
    """The alerts in effect now, newest first (what the gateway's feed lists)."""
    from services.projector.queries import current_cap_alerts

    conn = await read_model()
    try:
        alerts = await current_cap_alerts(conn, now=datetime.now(UTC))
    finally:
        await conn.close()
    if args.json:
        print_json([a.model_dump(mode="json") for a in alerts])
        return 0
    if not alerts:
        print("no alert in effect", file=sys.stderr)
    for a in alerts:
        print(
            f"{a.identifier}  {a.msg_type:<6} {a.status:<8} {a.sent:%Y-%m-%d %H:%M} "
            f"{a.severity:<8} {a.headline or a.event}"
        )
    return 0


async def show(args: argparse.Namespace) -> int:
    """One alert message: its CAP XML, or its fields as JSON."""
    from services.gateway.cap import alert_xml
    from services.projector.queries import cap_alert

    conn = await read_model()
    try:
        alert = await cap_alert(conn, args.id)
    finally:
        await conn.close()
    if alert is None:
        raise CommandError(f"no alert {args.id}")
    if args.json:
        print_json(alert.model_dump(mode="json"))
    else:
        sys.stdout.write(alert_xml(alert).decode() + "\n")
    return 0


# ---------------------------------------------------------------- the commands' arguments


def _content_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hazard", help="flood, tidal_flood, landslide, whirlwind, earthquake, ...")
    p.add_argument("--event", help="what it is about, in words (default: the hazard's)")
    p.add_argument("--category", action="append", choices=CATEGORIES)
    p.add_argument("--urgency", choices=URGENCIES)
    p.add_argument("--severity", choices=SEVERITIES)
    p.add_argument("--certainty", choices=CERTAINTIES)
    p.add_argument("--response", action="append", choices=RESPONSES, help="repeatable")
    p.add_argument("--headline")
    p.add_argument("--description")
    p.add_argument("--instruction", help="what people should do (default: the hazard's)")
    p.add_argument("--kecamatan", action="append", help="an area by name (repeatable)")
    p.add_argument("--polygon", action="append", help="'lat,lon lat,lon ...', closed (repeatable)")
    p.add_argument("--circle", action="append", help="'lat,lon radius_km' (repeatable)")
    p.add_argument("--area-desc", help="the area in words (default: the kecamatan named)")
    p.add_argument("--expires", help="in effect for this long (e.g. 6h; default: the policy's)")
    p.add_argument("--scope", choices=SCOPES)
    p.add_argument("--restriction", help="who may see it (scope Restricted only)")
    p.add_argument("--status", choices=STATUSES, help="Actual (default), Exercise, Test, ...")
    p.add_argument("--incident", type=id_of("incident id"), help="the Siaga incident it is about")
    p.add_argument("--by", help="the officer issuing it")


def register(sub: Any) -> None:
    """`siaga alert issue`, `update`, `cancel`, `list` and `show`."""
    alert = group(sub, "alert", help="public alerts (CAP 1.2)", dest="alert_command")
    p = alert.add_parser("issue", help="issue a public alert")
    p.set_defaults(handler=issue)
    _content_options(p)
    alert_id = id_of("alert id")
    p = alert.add_parser("update", help="update an alert (what is not given stays)")
    p.set_defaults(handler=follow_up)
    p.add_argument("id", type=alert_id)
    _content_options(p)
    p.add_argument("--note", help="what changed")
    p = alert.add_parser("cancel", help="withdraw an alert")
    p.set_defaults(handler=follow_up)
    p.add_argument("id", type=alert_id)
    p.add_argument("--reason", required=True, help="why (shown as the Cancel's note)")
    p.add_argument("--by", help="the officer withdrawing it")
    p = alert.add_parser("list", help="the alerts in effect now (the gateway's feed)")
    p.set_defaults(handler=listing)
    p.add_argument("--json", action="store_true")
    p = alert.add_parser("show", help="one alert's CAP XML")
    p.set_defaults(handler=show)
    p.add_argument("id", type=alert_id)
    p.add_argument("--json", action="store_true", help="its fields as JSON instead")
