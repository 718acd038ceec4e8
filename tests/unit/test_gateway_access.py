"""The gateway's pure parts: CloudEvents parsing, the rate limit, the key cache, digests."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from services.gateway.access import KeyCache, RateLimiter, bearer
from services.gateway.intake import Refused, event_for, from_request
from services.gateway.keys import KEY_PREFIX, digest, new_secret

CE = "application/cloudevents+json"


def data(**extra: Any) -> dict[str, Any]:
    return {
        "intake_id": str(uuid.uuid4()),
        "channel": "sms",
        "received_at": "2026-12-05T10:00:00+07:00",
        "text": "ada kecelakaan",
        **extra,
    }


def envelope(**attributes: Any) -> bytes:
    base = {"specversion": "1.0", "id": "1", "source": "/x", "type": "siaga.intake.received.v1"}
    return json.dumps({**base, "data": data(), **attributes}).encode()


def test_structured_and_binary_give_the_same_logged_event() -> None:
    payload = data()
    structured = from_request(
        CE,
        {},
        json.dumps(
            {
                "specversion": "1.0",
                "id": "a",
                "source": "/x",
                "type": "siaga.intake.received.v1",
                "data": payload,
                "traceparent": "00-abc",
            }  # an extension attribute is fine
        ).encode(),
    )
    binary = from_request(
        "application/json; charset=utf-8",
        {
            "ce-specversion": "1.0",
            "ce-id": "b",
            "ce-source": "/x",
            "ce-type": "siaga.intake.received.v1",
        },
        json.dumps(payload).encode(),
    )
    assert structured.intake == binary.intake
    # Two sender event ids, one intake: the logged event's id comes from the intake id.
    assert event_for(structured).id == event_for(binary).id


@pytest.mark.parametrize(
    ("content_type", "headers", "body", "says"),
    [
        (CE, {}, b"{not json", "not JSON"),
        (CE, {}, b"[]", "JSON object"),
        (CE, {}, envelope(specversion="0.3"), "specversion"),
        (CE, {}, envelope(type="siaga.unit.status_reported.v1"), "only siaga.intake"),
        (CE, {}, envelope(id=""), "missing CloudEvents attribute(s): id"),
        (CE, {}, envelope(datacontenttype="text/xml"), "datacontenttype"),
        (CE, {}, envelope(data=[1]), "JSON object"),
        (CE, {}, envelope(data=data(channel="telegram")), "invalid data.channel"),
        (CE, {}, envelope(data=data(received_at="yesterday")), "invalid data.received_at"),
        ("application/json", {}, json.dumps(data()).encode(), "binary mode needs"),
        ("text/plain", {}, b"hello", "content type"),
        ("", {}, b"hello", "content type"),
    ],
)
def test_what_is_refused_says_why(
    content_type: str, headers: dict[str, str], body: bytes, says: str
) -> None:
    with pytest.raises(Refused, match=re.escape(says)):
        from_request(content_type, headers, body)


def test_rate_limit_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate_per_minute=60, burst=3)
    assert [limiter.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("k", now=0.0)
    assert wait == pytest.approx(1.0)
    assert limiter.take("other", now=0.0) == 0.0  # per client
    assert limiter.take("k", now=1.0) == 0.0  # a token a second comes back
    assert limiter.take("k", now=1.0) > 0


async def test_key_cache_asks_again_after_its_time() -> None:
    asked: list[str] = []
    now = [0.0]

    async def lookup(secret: str) -> None:
        asked.append(secret)

    cache = KeyCache(lookup, ttl_s=5, clock=lambda: now[0])
    assert await cache.get("a") is None and await cache.get("a") is None
    assert asked == ["a"]  # an unknown key is remembered too
    now[0] = 6.0
    await cache.get("a")
    assert asked == ["a", "a"]


def test_keys_are_random_and_stored_as_digests() -> None:
    one, two = new_secret(), new_secret()
    assert one.startswith(KEY_PREFIX) and one != two and len(one) > 40
    assert digest(one) != digest(two) and len(digest(one)) == 32


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("", None),
    ],
)
def test_bearer(header: str, token: str | None) -> None:
    assert bearer({"authorization": header} if header else {}) == token
