"""What an Open311 client sends, read and checked: a new service request's form fields and
the filters of a search. Pure functions; every refusal is an `Open311Error`."""

from __future__ import annotations

import math
import re
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.common import MAX_NAME, MAX_TEXT, Caller, Location
from schemas.events import IntakeReceivedV1
from schemas.vocabulary import Channel
from services.gateway.open311_catalogue import Catalogue, Service

FORM = "application/x-www-form-urlencoded"
# The spec's fields of POST requests (its `attribute[...]` are refused: no service has any).
FIELDS = frozenset(
    {
        "api_key",
        "jurisdiction_id",
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "email",
        "device_id",
        "account_id",
        "first_name",
        "last_name",
        "phone",
        "description",
        "media_url",
    }
)
MAX_FIELDS = 64
MAX_URL = 2048
MAX_EMAIL = 254
# A search's window and answer, as the spec fixes them.
WINDOW = timedelta(days=90)
MAX_RESULTS = 1000
STATUSES = frozenset({"open", "closed"})

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACED_OFFSET = re.compile(r" (\d\d:?\d\d)$")


class Open311Error(Exception):
    """A refusal the GeoReport way: the HTTP status and one description per error."""

    def __init__(
        self, status: int, *descriptions: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__("; ".join(descriptions))
        self.status = status
        self.descriptions = descriptions
        self.headers = headers or {}


def _unknown(name: str) -> str:
    if name.startswith("attribute["):
        return f"{name}: no service here has attributes (see services/{{code}}.json)"
    return f"{name}: not a field of a service request"


def read_form(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a form-encoded body; a field named twice, an unknown field, a body
    that is not UTF-8 or not a form is refused (400), so nothing is half read."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() != FORM:
        raise Open311Error(400, f"send the request as {FORM} (found {media.strip() or 'none'!r})")
    charset = params.partition("charset=")[2].strip().strip('"').lower()
    if charset not in ("", "utf-8", "utf8"):
        raise Open311Error(400, f"the form must be UTF-8 (found charset {charset!r})")
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise Open311Error(400, f"not a well-formed form: {exc}") from None
    names = [name for name, _ in pairs]
    problems = [_unknown(n) for n in dict.fromkeys(names) if n not in FIELDS]
    problems += [f"{n}: given more than once" for n in dict.fromkeys(names) if names.count(n) > 1]
    if problems:
        raise Open311Error(400, *problems)
    return dict(pairs)


@dataclass(frozen=True)
class NewRequest:
    """A service request as the citizen's app sent it, checked."""

    service: Service
    description: str
    address: str | None
    address_id: str | None
    lat: float | None
    lon: float | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    email: str | None
    device_id: str | None
    account_id: str | None
    media_url: str | None

    @property
    def caller_name(self) -> str | None:
        """The reporter's name, given then family name."""
        return " ".join(n for n in (self.first_name, self.last_name) if n) or None


def e164(phone: str) -> str | None:
    """A phone number as people type it, in E.164 (an Indonesian 08... is +628...); None
    when it is not one."""
    digits = _PHONE_SEPARATORS.sub("", phone)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0"):
        digits = "+62" + digits[1:]
    elif digits.startswith("62"):
        digits = "+" + digits
    return digits if _E164.match(digits) else None


class _Checked:
    """Reads the fields one by one, keeping every problem, so one answer lists them all."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        # The spec's optional arguments: an empty one is one not sent.
        self.fields = {k: v.strip() for k, v in fields.items() if v.strip()}
        self.problems: list[str] = []

    def text(self, name: str, limit: int) -> str | None:
        value = self.fields.get(name)
        if value is not None and len(value) > limit:
            self.problems.append(f"{name}: at most {limit} characters")
            return None
        if value is not None and _CONTROL.search(value):
            self.problems.append(f"{name}: no control characters (line breaks are fine)")
            return None
        return value

    def check(self, name: str, ok: Callable[[str], str | None], expected: str) -> str | None:
        value = self.fields.get(name)
        if value is None:
            return None
        found = None if _CONTROL.search(value) else ok(value)
        if found is None:
            self.problems.append(f"{name}: {expected}")
        return found

    def degrees(self, name: str, bound: float) -> float | None:
        value = self.fields.get(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or abs(number) > bound:
            self.problems.append(f"{name}: WGS84 degrees, from -{bound:g} to {bound:g}")
            return None
        return number


def _email(value: str) -> str | None:
    return value if len(value) <= MAX_EMAIL and _EMAIL.match(value) else None


def _web_url(value: str) -> str | None:
    parts = urllib.parse.urlsplit(value)
    ok = parts.scheme in ("http", "https") and parts.netloc and len(value) <= MAX_URL
    return value if ok else None


def service_of(fields: Mapping[str, str], catalogue: Catalogue) -> Service:
    """The service a request names: 400 when it names none, 404 when no such service."""
    code = fields.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, "service_code: required (see services.json)")
    found = catalogue.find(code)
    if found is None:
        raise Open311Error(404, f"service_code {code!r}: no such service (see services.json)")
    return found


def read_request(fields: Mapping[str, str], catalogue: Catalogue) -> NewRequest:
    """A new service request from its form fields; `Open311Error` lists every problem."""
    service = service_of(fields, catalogue)
    c = _Checked(fields)
    lat, lon = c.degrees("lat", 90), c.degrees("long", 180)
    if ("lat" in c.fields) != ("long" in c.fields):
        c.problems.append("lat and long: send both or neither")
    address = c.text("address_string", MAX_NAME)
    address_id = c.check(
        "address_id",
        lambda v: v if v in catalogue.addresses else None,
        "the Kemendagri code of a kecamatan or desa/kelurahan of this regency",
    )
    if not (
        {"lat", "long"} <= c.fields.keys() or {"address_string", "address_id"} & c.fields.keys()
    ):
        c.problems.append("a location is required: lat and long, address_string or address_id")
    first, last = c.text("first_name", MAX_NAME), c.text("last_name", MAX_NAME)
    if len(f"{first or ''} {last or ''}".strip()) > MAX_NAME:
        c.problems.append(f"first_name and last_name: at most {MAX_NAME} characters together")
    request = NewRequest(
        service=service,
        description=c.text("description", MAX_TEXT) or "",
        address=address,
        address_id=address_id,
        lat=lat,
        lon=lon,
        first_name=first,
        last_name=last,
        phone=c.check("phone", e164, "a phone number, e.g. 0812-3456-7890 or +6281234567890"),
        email=c.check("email", _email, "an e-mail address"),
        device_id=c.text("device_id", MAX_NAME),
        account_id=c.text("account_id", MAX_NAME),
        media_url=c.check("media_url", _web_url, f"an http(s) URL of at most {MAX_URL} characters"),
    )
    if c.problems:
        raise Open311Error(400, *c.problems)
    return request


def intake_of(
    request: NewRequest, *, intake_id: uuid.UUID, now: datetime, catalogue: Catalogue
) -> IntakeReceivedV1:
    """The intake a service request becomes. Its text is the citizen's description alone:
    words of the chosen service added to it could outweigh a threat to life the citizen
    describes (a fire filed under "roads" must stay a fire); only a request without a
    description is triaged on the service's name, having no words of its own to lose."""
    hint = request.address
    if hint is None and request.address_id is not None:
        hint = catalogue.addresses[request.address_id]
    return IntakeReceivedV1(
        intake_id=intake_id,
        channel=Channel.WEB,
        received_at=now,
        caller=Caller(phone=request.phone, name=request.caller_name),
        text=request.description or request.service.name,
        place_hint=hint,
        location=None
        if request.lat is None or request.lon is None
        else Location(lat=request.lat, lon=request.lon),
    )


@dataclass(frozen=True)
class Filters:
    """A search of service requests: by ids (which overrides the rest), or by service
    codes, a window of request times and statuses."""

    ids: tuple[uuid.UUID, ...] | None
    service_codes: frozenset[str]
    start: datetime
    end: datetime
    statuses: frozenset[str]


def _listed(values: Sequence[str]) -> list[str]:
    """Values given comma-separated, repeated, or both; empty ones dropped."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def w3_instant(name: str, value: str) -> datetime:
    """A W3C date-time with its time zone (`2010-01-01T00:00:00Z`); 400 otherwise."""
    # A "+07:00" offset sent unescaped in a query string arrives as " 07:00".
    value = _SPACED_OFFSET.sub(r"+\1", value)
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        found = None
    if found is None or found.tzinfo is None or "T" not in value:
        raise Open311Error(
            400, f"{name}: a date-time with its time zone, e.g. 2010-01-01T00:00:00Z"
        )
    return found


def _window(
    start_text: str | None, end_text: str | None, now: datetime
) -> tuple[datetime, datetime]:
    start = w3_instant("start_date", start_text) if start_text else None
    end = w3_instant("end_date", end_text) if end_text else None
    if start is None and end is None:
        return now - WINDOW, now
    if start is None:
        assert end is not None
        return end - WINDOW, end
    if end is None:
        return start, start + WINDOW
    if end < start:
        raise Open311Error(400, "end_date is before start_date")
    if end - start > WINDOW:
        raise Open311Error(400, f"start_date to end_date spans more than {WINDOW.days} days")
    return start, end


def read_filters(query: Callable[[str], list[str]], *, now: datetime) -> Filters:
    """The filters of `GET requests` from its query (`query(name)`: every value given);
    without dates, the last 90 days."""
    ids = _listed(query("service_request_id"))
    if len(ids) > MAX_RESULTS:
        raise Open311Error(400, f"service_request_id: at most {MAX_RESULTS} ids")
    parsed = []
    for text in ids:
        try:
            parsed.append(uuid.UUID(text))
        except ValueError:
            raise Open311Error(400, f"service_request_id {text!r}: not a request id") from None
    statuses = frozenset(s.lower() for s in _listed(query("status")))
    if statuses - STATUSES:
        unknown = ", ".join(sorted(statuses - STATUSES))
        raise Open311Error(400, f"status: open or closed (found {unknown})")
    start, end = _window(
        next(iter(_listed(query("start_date"))), None),
        next(iter(_listed(query("end_date"))), None),
        now,
    )
    return Filters(
        ids=tuple(dict.fromkeys(parsed)) if ids else None,
        service_codes=frozenset(_listed(query("service_code"))),
        start=start,
        end=end,
        statuses=statuses,
    )
