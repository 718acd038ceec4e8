"""The channels' webhooks without a server: signatures, the posts read into intakes, the
replies' texts, the send requests and what a send's answer means."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
import pytest
from pydantic import SecretStr

from schemas.topics import Topics
from schemas.vocabulary import Channel
from services.gateway.app import Gateway, create_app
from services.gateway.eido import Issuer
from services.gateway.inbound import (
    TWIML_EMPTY,
    e164,
    intake_id_for,
    sms_message,
    whatsapp_post,
)
from services.gateway.replies import (
    Kind,
    NotConfigured,
    Outcome,
    notice_text,
    outcome,
    receipt_text,
    report_number,
    request_for,
    retry_delay,
    sms_request,
    template_params,
    whatsapp_request,
)
from services.gateway.settings import GatewaySettings, SmsSettings, WhatsAppSettings
from services.gateway.signatures import (
    sms_signature,
    sms_signed,
    verification_challenge,
    whatsapp_signature,
    whatsapp_signed,
)
from services.gateway.webhooks import webhook_routes

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
SECRET = "app-secret"


# ---------------------------------------------------------------- signatures


def test_verification_handshake_echoes_the_challenge_only_for_our_token() -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert verification_challenge(good, verify_token="tok") == "1158201444"
    assert verification_challenge({**good, "hub.verify_token": "tak"}, verify_token="tok") is None
    assert verification_challenge({**good, "hub.mode": "unsubscribe"}, verify_token="tok") is None
    assert verification_challenge({"hub.challenge": "1"}, verify_token="tok") is None
    # No token configured: nobody can subscribe, not even with an empty token.
    assert verification_challenge({**good, "hub.verify_token": ""}, verify_token=None) is None
    assert verification_challenge({**good, "hub.verify_token": ""}, verify_token="") is None


def test_whatsapp_signature_is_over_the_raw_body() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    header = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert whatsapp_signature(body, app_secret=SECRET) == header
    assert whatsapp_signed(body, header, app_secret=SECRET)
    assert whatsapp_signed(body, header.upper().replace("SHA256=", "sha256="), app_secret=SECRET)
    assert not whatsapp_signed(body, None, app_secret=SECRET)  # missing
    assert not whatsapp_signed(body, "", app_secret=SECRET)
    assert not whatsapp_signed(body, header, app_secret="another secret")  # wrong key
    assert not whatsapp_signed(body + b" ", header, app_secret=SECRET)  # tampered body
    # The same JSON re-encoded is other bytes: the check is on what arrived.
    again = json.dumps(json.loads(body)).encode()
    assert again != body and not whatsapp_signed(again, header, app_secret=SECRET)
    assert not whatsapp_signed(body, header.removeprefix("sha256="), app_secret=SECRET)


def test_sms_signature_matches_the_public_example() -> None:
    # The example of Twilio's security documentation: its URL, parameters, token, signature.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    assert sms_signature(url, params, auth_token="12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", (
        "the public example's signature"
    )
    # The order the form came in does not matter; the names are sorted.
    assert sms_signed(
        url, list(reversed(params)), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", auth_token="12345"
    )


def test_sms_signature_refuses_what_was_changed() -> None:
    url = "https://siaga.example/webhooks/sms"
    params = [("Body", "banjir di Kandeman"), ("From", "+6281234567890"), ("MessageSid", "SM1")]
    good = sms_signature(url, params, auth_token="tok")
    expected = base64.b64encode(
        hmac.new(
            b"tok", (url + "Bodybanjir di KandemanFrom+6281234567890MessageSidSM1").encode(), "sha1"
        ).digest()
    ).decode()
    assert good == expected
    assert sms_signed(url, params, good, auth_token="tok")
    assert not sms_signed(url, params, None, auth_token="tok")
    assert not sms_signed(url, params, good, auth_token="other")
    assert not sms_signed(url + "?x=1", params, good, auth_token="tok")  # another URL
    tampered = [("Body", "banjir di Batang"), *params[1:]]
    assert not sms_signed(url, tampered, good, auth_token="tok")
    assert not sms_signed(url, [*params, ("Extra", "")], good, auth_token="tok")


# ---------------------------------------------------------------- WhatsApp posts


def wa_post(*values: dict[str, Any], entries: int = 1) -> dict[str, Any]:
    changes = [
        {"field": "messages", "value": {"messaging_product": "whatsapp", **v}} for v in values
    ]
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": f"WABA{n}", "changes": changes} for n in range(entries)],
    }


def contact(wa_id: str, name: str) -> dict[str, Any]:
    return {"profile": {"name": name}, "wa_id": wa_id}


def message(
    kind: str, mid: str = "wamid.A", sender: str = "6281234567890", **body: Any
) -> dict[str, Any]:
    return {"from": sender, "id": mid, "timestamp": "1741064700", "type": kind, **body}


def test_a_text_message_becomes_an_intake() -> None:
    post = whatsapp_post(
        wa_post(
            {
                "contacts": [contact("6281234567890", "Siti")],
                "messages": [message("text", text={"body": " rumah terbakar di Kandeman "})],
            }
        ),
        now=NOW,
    )
    assert post.statuses == 0 and post.ignored == 0
    (one,) = post.messages
    intake = one.intake
    assert intake.channel is Channel.WHATSAPP
    assert intake.intake_id == intake_id_for(Channel.WHATSAPP, "wamid.A")
    assert intake.caller.phone == "+6281234567890" and intake.caller.name == "Siti"
    assert intake.text == "rumah terbakar di Kandeman"
    assert intake.received_at == datetime(2025, 3, 4, 5, 5, tzinfo=UTC)
    assert intake.location is None and intake.place_hint is None
    assert one.address == "6281234567890"
    assert not one.missing_text and one.missing_place


def test_a_location_message_gives_the_position_and_the_place() -> None:
    location = {
        "latitude": -6.9104,
        "longitude": 109.7301,
        "name": "Alun-alun Batang",
        "address": "Jl. Veteran",
    }
    post = whatsapp_post(wa_post({"messages": [message("location", location=location)]}), now=NOW)
    (one,) = post.messages
    assert one.intake.location is not None
    assert (one.intake.location.lat, one.intake.location.lon) == (-6.9104, 109.7301)
    assert one.intake.place_hint == "Alun-alun Batang, Jl. Veteran"
    assert one.intake.text == "" and one.missing_text and not one.missing_place
    # A position out of range is no position; the name still says the place.
    bad = {**location, "latitude": 123.0}
    (other,) = whatsapp_post(
        wa_post({"messages": [message("location", location=bad)]}), now=NOW
    ).messages
    assert (
        other.intake.location is None and other.intake.place_hint == "Alun-alun Batang, Jl. Veteran"
    )


def test_delivery_statuses_alone_are_no_intake() -> None:
    statuses = [{"id": "wamid.X", "status": "delivered", "recipient_id": "6281234567890"}] * 2
    post = whatsapp_post(wa_post({"statuses": statuses}), now=NOW)
    assert post.messages == [] and post.statuses == 2


def test_unreadable_messages_are_kept_and_reactions_are_not() -> None:
    post = whatsapp_post(
        wa_post(
            {
                "messages": [
                    message("image", "m1", image={"caption": "pohon tumbang", "id": "media1"}),
                    message("audio", "m2", audio={"id": "media2", "voice": True}),
                    message("a_type_not_yet_invented", "m3"),
                    message("reaction", "m4", reaction={"message_id": "wamid.R", "emoji": "🙏"}),
                    message(
                        "interactive",
                        "m5",
                        interactive={
                            "type": "button_reply",
                            "button_reply": {"id": "b", "title": "Ya"},
                        },
                    ),
                    {"from": "6281234567890", "type": "text", "text": {"body": "no id"}},
                ]
            }
        ),
        now=NOW,
    )
    texts = {m.intake.intake_id: (m.intake.text, m.missing_text) for m in post.messages}
    assert texts == {
        intake_id_for(Channel.WHATSAPP, "m1"): ("pohon tumbang", False),
        intake_id_for(Channel.WHATSAPP, "m2"): ("", True),
        intake_id_for(Channel.WHATSAPP, "m3"): ("", True),
        intake_id_for(Channel.WHATSAPP, "m5"): ("Ya", False),
    }
    assert post.ignored == 2  # the reaction, and the message without an id


def test_several_messages_and_entries_in_one_post() -> None:
    value = {
        "contacts": [contact("6281111111111", "Ani"), contact("6282222222222", "Budi")],
        "messages": [
            message("text", "x1", "6281111111111", text={"body": "jalan berlubang"}),
            message("text", "x2", "6282222222222", text={"body": "lampu mati"}),
        ],
        "statuses": [{"id": "wamid.Y", "status": "read"}],
    }
    post = whatsapp_post(
        wa_post(value, {"statuses": [{"id": "z", "status": "sent"}]}, entries=2), now=NOW
    )
    names = [(m.intake.caller.name, m.intake.text) for m in post.messages]
    assert names == [("Ani", "jalan berlubang"), ("Budi", "lampu mati")] * 2
    assert post.statuses == 4


def test_a_post_that_is_no_whatsapp_post_gives_nothing() -> None:
    for payload in (
        None,
        [],
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account", "entry": "x"},
    ):
        assert whatsapp_post(payload, now=NOW).messages == []
    odd = wa_post({"messages": [message("text", text="not an object", timestamp="soon")]})
    (one,) = whatsapp_post(odd, now=NOW).messages
    assert one.intake.text == "" and one.missing_text


def test_long_texts_are_cut_and_odd_senders_are_no_phone() -> None:
    long = "tolong " * 1000
    (one,) = whatsapp_post(
        wa_post({"messages": [message("text", sender="12", text={"body": long})]}), now=NOW
    ).messages
    assert len(one.intake.text) == 4000 and one.intake.text.endswith("…")
    assert one.intake.caller.phone is None and one.address == "12"
    assert e164("+62 812") is None and e164("6281234567890") == "+6281234567890"


def test_a_timestamp_ahead_of_now_is_now() -> None:
    ahead = message("text", text={"body": "x"}, timestamp=str(int(NOW.timestamp()) + 3600))
    (one,) = whatsapp_post(wa_post({"messages": [ahead]}), now=NOW).messages
    assert one.intake.received_at == NOW


# ---------------------------------------------------------------- SMS posts


def test_an_sms_becomes_an_intake_and_a_status_callback_does_not() -> None:
    form = [
        ("MessageSid", "SM123"),
        ("From", "+6281234567890"),
        ("To", "+6285000"),
        ("Body", "banjir setinggi lutut"),
    ]
    one = sms_message(form, now=NOW)
    assert one is not None
    assert (
        one.intake.intake_id
        == intake_id_for(Channel.SMS, "SM123")
        != intake_id_for(Channel.WHATSAPP, "SM123")
    )
    assert one.intake.channel is Channel.SMS and one.intake.received_at == NOW
    assert (
        one.intake.caller.phone == "+6281234567890" and one.intake.text == "banjir setinggi lutut"
    )
    assert one.address == "+6281234567890" and one.missing_place and not one.missing_text
    assert sms_message([("MessageSid", "SM1"), ("MessageStatus", "delivered")], now=NOW) is None
    assert sms_message([("From", "+6281234567890"), ("Body", "x")], now=NOW) is None
    empty = sms_message([("MessageSid", "SM2"), ("From", "+6281234567890"), ("Body", "")], now=NOW)
    assert empty is not None and empty.missing_text


def test_twiml_is_an_empty_response() -> None:
    root = ElementTree.fromstring(TWIML_EMPTY)
    assert root.tag == "Response" and list(root) == [] and not (root.text or "").strip()


# ---------------------------------------------------------------- replies


def test_the_report_number_is_short_and_derived_from_the_intake() -> None:
    intake_id = uuid.UUID("7f3a12c9-0000-5000-8000-000000000000")
    assert report_number(intake_id) == "7F3A-12C9"
    assert report_number(intake_id_for(Channel.SMS, "SM1")) == report_number(
        intake_id_for(Channel.SMS, "SM1")
    )


def test_receipts_say_the_number_what_next_and_what_is_missing() -> None:
    text = receipt_text(
        Channel.WHATSAPP, reference="7F3A-12C9", missing_text=False, missing_place=True
    )
    assert "7F3A-12C9" in text and "WhatsApp" in text and "112" in text
    assert "Lokasi" in text  # how to share the place on WhatsApp
    sms = receipt_text(Channel.SMS, reference="7F3A-12C9", missing_text=False, missing_place=True)
    assert "SMS" in sms and "Lokasi" not in sms and "desa/kecamatan" in sms
    where = receipt_text(Channel.WHATSAPP, reference="R", missing_text=True, missing_place=False)
    assert "tuliskan juga apa yang terjadi" in where
    media = receipt_text(Channel.WHATSAPP, reference="R", missing_text=True, missing_place=True)
    assert "belum dapat kami baca" in media and "di mana lokasinya" in media
    complete = receipt_text(
        Channel.WHATSAPP, reference="R", missing_text=False, missing_place=False
    )
    assert "Bila belum" not in complete and "tuliskan" not in complete


def test_notices_carry_the_agency_and_its_words() -> None:
    answer = notice_text(
        Kind.ANSWER, reference="7F3A-12C9", agency="DPUPR", text="Besok diperbaiki."
    )
    assert answer == "Tanggapan DPUPR atas laporan 7F3A-12C9:\nBesok diperbaiki."
    closure = notice_text(
        Kind.CLOSURE, reference="7F3A-12C9", agency="DPUPR", text="Lampu diganti."
    )
    assert closure.startswith("Laporan 7F3A-12C9 telah diselesaikan oleh DPUPR:\nLampu diganti.")
    with pytest.raises(ValueError):
        notice_text(Kind.RECEIPT, reference="R", agency="A", text="t")


def test_a_notice_as_a_templates_parameters_is_one_line() -> None:
    params = template_params(
        Kind.ANSWER, reference="R", agency="DPUPR", text="Besok\n\tdiperbaiki.  "
    )
    assert params == ("R", "Tanggapan DPUPR", "Besok diperbaiki.")
    closed = template_params(Kind.CLOSURE, reference="R", agency="PLN", text="x" * 3000)
    assert closed[1] == "Diselesaikan oleh PLN" and len(closed[2]) == 1000


WA = WhatsAppSettings(
    api_base_url="http://127.0.0.1:9/v21.0/", access_token=SecretStr("EAAB"), phone_number_id="1055"
)
SMS = SmsSettings(
    api_base_url="http://127.0.0.1:9/2010-04-01",
    account_sid="AC1",
    auth_token=SecretStr("tok"),
    from_number="+6285000000000",
)


def test_the_send_requests_of_each_channel() -> None:
    wa = whatsapp_request(WA, to="6281234567890", body="halo")
    assert wa.url == "http://127.0.0.1:9/v21.0/1055/messages"
    assert wa.headers == {"Authorization": "Bearer EAAB"} and wa.form is None
    assert wa.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "6281234567890",
        "type": "text",
        "text": {"preview_url": False, "body": "halo"},
    }
    # Without a template configured, a notice goes as text; with one, as that template.
    assert whatsapp_request(WA, to="62", body="b", params=("R", "h", "t")).json == {
        **wa.json,
        "to": "62",
        "text": {"preview_url": False, "body": "b"},
    }
    templated = WA.model_copy(update={"notice_template": "kabar_laporan"})
    notice = whatsapp_request(templated, to="62", body="b", params=("R", "Tanggapan X", "t"))
    assert notice.json is not None and notice.json["type"] == "template"
    assert "text" not in notice.json
    assert notice.json["template"] == {
        "name": "kabar_laporan",
        "language": {"code": "id"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "R"},
                    {"type": "text", "text": "Tanggapan X"},
                    {"type": "text", "text": "t"},
                ],
            }
        ],
    }
    receipt = whatsapp_request(templated, to="62", body="b")  # a receipt: always text
    assert receipt.json is not None and receipt.json["type"] == "text"
    sms = sms_request(SMS, to="+6281234567890", body="x" * 2000)
    assert sms.url == "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages.json"
    assert sms.headers == {"Authorization": "Basic " + base64.b64encode(b"AC1:tok").decode()}
    assert sms.json is None
    assert sms.form is not None and sms.form["To"] == "+6281234567890"
    assert sms.form["From"] == "+6285000000000" and len(sms.form["Body"]) == 1600
    assert request_for(Channel.SMS, whatsapp=WA, sms=SMS, to="+62", body="b").form is not None


def test_a_send_api_without_its_settings_says_which() -> None:
    with pytest.raises(NotConfigured, match="SIAGA_WHATSAPP_ACCESS_TOKEN"):
        whatsapp_request(WhatsAppSettings(phone_number_id="1"), to="62", body="b")
    with pytest.raises(NotConfigured, match="SIAGA_SMS_ACCOUNT_SID, SIAGA_SMS_AUTH_TOKEN"):
        sms_request(SmsSettings(api_base_url="http://x", from_number="+1"), to="+62", body="b")
    with pytest.raises(NotConfigured, match="web"):
        request_for(Channel.WEB, whatsapp=WA, sms=SMS, to="x", body="b")


def test_what_a_send_answer_means() -> None:
    assert outcome(200) is Outcome.SENT and outcome(201) is Outcome.SENT
    for status in (None, 408, 429, 500, 502, 503):
        assert outcome(status) is Outcome.RETRY, status
    for status in (400, 401, 403, 404, 422):  # e.g. outside WhatsApp's 24-hour window
        assert outcome(status) is Outcome.REFUSED, status


def test_retries_wait_longer_each_time_up_to_a_limit() -> None:
    waits = [retry_delay(n, base_s=5, max_s=60) for n in range(1, 7)]
    assert waits == [5, 10, 20, 40, 60, 60]


# ---------------------------------------------------------------- the routes' refusals


def _client(whatsapp: WhatsAppSettings, sms: SmsSettings) -> httpx.AsyncClient:
    """The webhooks' routes over ASGI; what these tests post never reaches the database,
    the relay or the keys (refused, or nothing to take), so the gateway has none."""
    unused: Any = None
    gateway = Gateway(
        settings=GatewaySettings(),
        whatsapp=whatsapp,
        sms=sms,
        topics=Topics(prefix="x"),
        pool=unused,
        reads=unused,
        relay=unused,
        keys=unused,
        limiter=unused,
        clock=lambda: NOW,
        ready=unused,
        issuer=Issuer(domain="batangkab.go.id"),
        commits=unused,
    )
    app = create_app(gateway, routers=(webhook_routes,))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


STATUSES_ONLY = json.dumps(wa_post({"statuses": [{"id": "w", "status": "read"}]})).encode()


async def test_a_channel_without_its_secret_takes_nothing() -> None:
    async with _client(WhatsAppSettings(), SmsSettings()) as http:
        signed = {"X-Hub-Signature-256": whatsapp_signature(STATUSES_ONLY, app_secret="")}
        posted = await http.post("/webhooks/whatsapp", content=STATUSES_ONLY, headers=signed)
        query = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
        handshake = await http.get("/webhooks/whatsapp", params=query)
        sms = await http.post("/webhooks/sms", content=b"MessageSid=SM1&MessageStatus=sent")
    assert posted.status_code == 503 and "not configured" in posted.json()["error"]
    assert handshake.status_code == 403
    assert sms.status_code == 503


async def test_signed_posts_without_a_report_are_answered_and_forged_ones_refused() -> None:
    wa = WhatsAppSettings(app_secret=SecretStr(SECRET))
    public = "https://siaga.example/webhooks/sms"
    sms = SmsSettings(auth_token=SecretStr("tok"), webhook_url=public)
    callback = [("MessageSid", "SM1"), ("MessageStatus", "delivered")]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with _client(wa, sms) as http:

        async def whatsapp(body: bytes, signature: str | None) -> httpx.Response:
            headers = {"X-Hub-Signature-256": signature} if signature else {}
            return await http.post("/webhooks/whatsapp", content=body, headers=headers)

        good = whatsapp_signature(STATUSES_ONLY, app_secret=SECRET)
        assert (await whatsapp(STATUSES_ONLY, good)).status_code == 200
        assert (await whatsapp(STATUSES_ONLY, None)).status_code == 401
        assert (await whatsapp(STATUSES_ONLY + b" ", good)).status_code == 403
        not_json = b"{not json"
        signed = whatsapp_signature(not_json, app_secret=SECRET)
        assert (await whatsapp(not_json, signed)).status_code == 200  # nothing usable

        async def sms_post(url: str, body: bytes = urlencode(callback).encode()) -> httpx.Response:
            signature = sms_signature(url, callback, auth_token="tok")
            headers = {**form, "X-Twilio-Signature": signature}
            return await http.post("/webhooks/sms", content=body, headers=headers)

        # Signed over the public URL the SMS gateway knows, not the one the request shows.
        answer = await sms_post(public)
        assert answer.status_code == 200 and answer.text == TWIML_EMPTY
        assert answer.headers["content-type"].startswith("text/xml")
        assert (await sms_post("http://gw.test/webhooks/sms")).status_code == 403
        assert (await sms_post(public, b"\xff\xfe")).status_code == 400
