"""Who really sent a webhook: Meta's verification handshake and body signature (WhatsApp),
and a Twilio-style request signature (SMS). Pure functions, every comparison in constant
time, so a forger learns nothing from how long a refusal takes."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

WHATSAPP_SIGNATURE = "x-hub-signature-256"
SMS_SIGNATURE = "x-twilio-signature"
_SHA256_PREFIX = "sha256="


def same(a: str, b: str) -> bool:
    """Whether two secrets are equal, in time independent of where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())


def verification_challenge(query: Mapping[str, str], *, verify_token: str | None) -> str | None:
    """The challenge to echo when Meta's handshake (`hub.mode=subscribe` with our verify
    token) is genuine; None when it is not, or when no token is configured."""
    if not verify_token or query.get("hub.mode") != "subscribe":
        return None
    if not same(query.get("hub.verify_token", ""), verify_token):
        return None
    return query.get("hub.challenge")


def whatsapp_signature(body: bytes, *, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends with `body`: the hex HMAC-SHA256 of the
    raw bytes under the app secret, prefixed `sha256=`."""
    return _SHA256_PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def whatsapp_signed(body: bytes, header: str | None, *, app_secret: str) -> bool:
    """Whether `header` signs exactly these raw bytes (a body parsed and re-encoded would
    not match: the check is on what arrived)."""
    if not header:
        return False
    return same(header.strip().lower(), whatsapp_signature(body, app_secret=app_secret))


def sms_signature(url: str, params: Iterable[tuple[str, str]], *, auth_token: str) -> str:
    """The `X-Twilio-Signature` of a form post: base64 of the HMAC-SHA1, under the auth
    token, of the full URL followed by each parameter's name and value, sorted by name (a
    name sent twice: its values in order too)."""
    signed = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def sms_signed(
    url: str, params: Iterable[tuple[str, str]], header: str | None, *, auth_token: str
) -> bool:
    """Whether `header` signs this URL and these form parameters."""
    if not header:
        return False
    return same(header.strip(), sms_signature(url, params, auth_token=auth_token))
