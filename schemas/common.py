"""Value objects that several events share: callers, coordinates, resolved places."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

MAX_TEXT = 4000
MAX_NAME = 200
MAX_REASON = 500
MAX_CODE = 64

# Times outside these years are a broken clock or a forgery, never a report: year 9999
# overflows an SLA's due time and 0001 is stored as -infinity.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def plausible_time(value: datetime) -> datetime:
    """A time of this century, timezone-aware: a naive one is read as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    # Every event's times pass here. A year well inside the range is inside it at any UTC
    # offset (an offset is under a day), without the comparisons, which ask both times for
    # their offsets: those are made only near the range's ends.
    if 2000 < aware.year < 2099 and aware.utcoffset() is not None:
        return aware
    if not EARLIEST <= aware < LATEST:
        raise ValueError(f"a time between {EARLIEST.year} and {LATEST.year - 1}, not {value}")
    return aware


# A naive time is read as UTC rather than refused: Siaga's stages always wrote aware times,
# and an event already in the log must still decode (refusing it would be a new version).
Instant = Annotated[datetime, AfterValidator(plausible_time)]
"""A time of an event: a timezone-aware datetime between 2000 and 2099."""
AwareInstant = Annotated[AwareDatetime, AfterValidator(plausible_time)]
"""A time given by a sender, with its UTC offset, between 2000 and 2099."""


class Contract(BaseModel):
    """Base of every payload: strict about unknown fields so typos are caught, frozen."""

    # Validators are built on a model's first use, not at import: a client that sends one
    # kind of event (`siaga report`) does not build the other forty.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Caller(Contract):
    """Who reported, as far as the channel tells."""

    phone: str | None = Field(
        default=None,
        description="Caller number in E.164 (e.g. +6281234567890), or null when withheld",
        pattern=r"^\+[1-9][0-9]{6,14}$",
        max_length=16,
    )
    name: str | None = Field(default=None, description="Caller name if given", max_length=MAX_NAME)


class Location(Contract):
    """A position from the handset, the channel or the unit, in WGS84."""

    lat: float = Field(description="Latitude in decimal degrees", ge=-90, le=90)
    lon: float = Field(description="Longitude in decimal degrees", ge=-180, le=180)
    accuracy_m: float | None = Field(
        default=None, description="Radius of uncertainty in metres, if known", ge=0
    )


class Place(Contract):
    """A report's place resolved against the regency gazetteer."""

    kecamatan_code: str | None = Field(
        default=None, description="Kemendagri code of the kecamatan", max_length=MAX_CODE
    )
    kecamatan: str | None = Field(
        default=None, description="Kecamatan (district) name", max_length=MAX_NAME
    )
    desa_code: str | None = Field(
        default=None, description="Kemendagri code of the desa/kelurahan", max_length=MAX_CODE
    )
    desa: str | None = Field(
        default=None, description="Desa or kelurahan (village) name", max_length=MAX_NAME
    )
    lat: float = Field(description="Latitude of the best point known for the place")
    lon: float = Field(description="Longitude of the best point known for the place")
    confidence: float = Field(description="How sure the resolver is, 0..1", ge=0, le=1)
    method: str = Field(
        description="How it was resolved: coordinates, desa, kecamatan, landmark or default",
        max_length=MAX_CODE,
    )
    matched: str | None = Field(
        default=None, description="The words of the report that matched", max_length=MAX_NAME
    )
