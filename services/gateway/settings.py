"""Settings of the gateway (`SIAGA_GATEWAY_*`) and of the citizen channels it speaks to."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """`SIAGA_GATEWAY_*`: where the gateway listens and what it lets in."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_GATEWAY_")

    host: str = Field(default="127.0.0.1", description="Address to listen on (0.0.0.0 in pods)")
    port: int = Field(
        default=8080, ge=0, le=65535, description="Port of the HTTP API; 0 picks a free one"
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="A request body larger than this is refused with 413 before it is read "
        "whole (an intake event is at most 256 KiB on the log anyway)",
    )
    rate_per_minute: int = Field(
        default=600, ge=1, description="Requests a key (or a webhook's sender) may make a minute"
    )
    burst: int = Field(default=60, ge=1, description="Requests a key may make at once")
    key_cache_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a looked-up API key is trusted without asking the database "
        "again: a revoked key stops working within this time",
    )
    agency_domain: str = Field(
        default="batangkab.go.id",
        pattern=r"^[a-z0-9]([a-z0-9.-]{0,250}[a-z0-9])?$",
        description="The domain the command centre's agencies are named in (NENA EIDO ids "
        "and agency names: `<agency>.<domain>`)",
    )
    centre_name: str = Field(
        default="Command Centre", max_length=100, description="The command centre's name"
    )
    session_hours: float = Field(
        default=12.0, gt=0, le=168, description="How long a sign-in lasts (a shift)"
    )
    noop_route: bool = Field(
        default=False,
        description="Serve POST /noop, a handler that does nothing: `make bench` measures the "
        "server's raw ceiling with it beside /events",
    )
    batch_interval_ms: int = Field(
        default=500,
        ge=0,
        le=10_000,
        description="The consumer takes a batch at most this often, unless a full one waits "
        "(it follows incidents and work orders for the citizens' replies, which no dispatch "
        "waits for: fewer, fuller batches spare the broker, whose every fetch costs more the "
        "longer its log: at 100 ms a burst lost a tenth or more of its throughput); 0: as "
        "soon as records come",
    )
    live_poll_ms: int = Field(
        default=300,
        ge=50,
        le=5000,
        description="While a command-centre page is open, the read model is looked at this "
        "often for changes (one look a gateway process, whatever the number of pages)",
    )
    public_url: str | None = Field(
        default=None,
        description="The gateway's address as clients reach it (links in feeds); default: "
        "where it listens",
    )


class WhatsAppSettings(BaseSettings):
    """`SIAGA_WHATSAPP_*`: the WhatsApp Business Cloud API webhook and send API."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_WHATSAPP_")

    verify_token: SecretStr | None = Field(
        default=None, description="The token Meta sends in the verification handshake"
    )
    app_secret: SecretStr | None = Field(
        default=None, description="The app secret that signs webhook posts (X-Hub-Signature-256)"
    )
    api_base_url: str = Field(
        default="https://graph.facebook.com/v21.0", description="Base URL of the send API"
    )
    access_token: SecretStr | None = Field(default=None, description="Bearer token of the send API")
    phone_number_id: str | None = Field(default=None, description="The sending phone number's id")
    notice_template: str | None = Field(
        default=None,
        description="An approved message template that carries the agencies' answers and "
        "closures (body parameters: the report number, what happened, the agency's words): "
        "WhatsApp takes a free-form text only within 24 hours of the citizen's last "
        "message; unset, notices go as text and one sent later is refused (and kept)",
    )
    template_language: str = Field(
        default="id", description="The language code of the notice template"
    )


class SmsSettings(BaseSettings):
    """`SIAGA_SMS_*`: an SMS gateway's form-post webhook (Twilio-style) and send API."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_SMS_")

    auth_token: SecretStr | None = Field(
        default=None, description="The secret that signs webhook posts (X-Twilio-Signature)"
    )
    api_base_url: str | None = Field(default=None, description="Base URL of the send API")
    account_sid: str | None = Field(default=None, description="Account of the send API")
    from_number: str | None = Field(default=None, description="The number replies come from")
    webhook_url: str | None = Field(
        default=None,
        description="The public URL the SMS gateway posts to (its signature covers it); "
        "default: the URL the request arrived at",
    )


class RepliesSettings(BaseSettings):
    """`SIAGA_REPLIES_*`: how the gateway sends its replies to citizens (receipts, the
    agencies' answers) through the channels' send APIs."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_REPLIES_")

    poll_s: float = Field(
        default=1.0, gt=0, le=60, description="How often replies due are looked for"
    )
    batch: int = Field(default=50, ge=1, le=1000, description="Replies sent at once, at most")
    timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="A send API's answer is waited for this long"
    )
    max_attempts: int = Field(
        default=12,
        ge=1,
        le=100,
        description="A reply the send API keeps failing is given up after this many tries "
        '(logged, counted as siaga_errors{kind="reply_failed"}, kept in gateway.replies '
        "with its last error)",
    )
    backoff_s: float = Field(
        default=5.0, gt=0, description="Wait after a reply's first failed try; doubles each try"
    )
    backoff_max_s: float = Field(
        default=900.0, gt=0, description="The longest wait between two tries of a reply"
    )
