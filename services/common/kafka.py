"""Kafka clients: connection options and security, the stages' FastStream broker, and the
plain producer of short-lived clients."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from schemas.envelope import record_headers
from services.common.outbox import Outgoing
from services.common.settings import CommonSettings

if TYPE_CHECKING:
    # FastStream is the stages' (a tenth of a second to import): short-lived clients such
    # as `siaga report` use plain aiokafka and never load it.
    from faststream.kafka import KafkaBroker
    from faststream.security import BaseSecurity


def _ssl_context(settings: CommonSettings) -> ssl.SSLContext:
    """TLS to the brokers: their CA (system bundle by default) and, for mTLS, our certificate."""
    kafka = settings.kafka
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.ssl_certfile is not None:
        context.load_cert_chain(
            str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
        )
    return context


def client_options(settings: CommonSettings) -> dict[str, Any]:
    """aiokafka connection options (address and SASL/SSL) from settings."""
    kafka = settings.kafka
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap(),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password
    return options


def _security(settings: CommonSettings) -> BaseSecurity | None:
    """FastStream's form of the same SASL/SSL settings (None for plaintext)."""
    from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

    kafka = settings.kafka
    use_ssl = kafka.security_protocol in ("SSL", "SASL_SSL")
    context = _ssl_context(settings) if use_ssl else None
    if kafka.security_protocol.startswith("SASL"):
        user, password = kafka.sasl_username or "", kafka.sasl_password or ""
        mechanism = (kafka.sasl_mechanism or "PLAIN").upper()
        sasl = {"SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}.get(
            mechanism, SASLPlaintext
        )
        return sasl(user, password, ssl_context=context, use_ssl=use_ssl)
    if use_ssl:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def build_broker(settings: CommonSettings, *, client_id: str) -> KafkaBroker:
    """A FastStream Kafka broker tuned for low latency; FastStream's per-message logs are off,
    and so is its dependency injection: a subscriber is called with the batch's records,
    where injecting the message ran a worker-thread hop per batch."""
    from faststream.kafka import KafkaBroker

    return KafkaBroker(
        settings.kafka_bootstrap(),
        apply_types=False,
        client_id=client_id,
        acks="all",
        linger_ms=settings.kafka.linger_ms,
        max_batch_size=settings.kafka.producer_batch_bytes,
        logger=None,
        security=_security(settings),
        graceful_timeout=10.0,
    )


def producer(settings: CommonSettings, *, request_timeout_ms: int = 10_000) -> AIOKafkaProducer:
    """A plain aiokafka producer for short-lived clients (CLI, demo, tests)."""
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        linger_ms=settings.kafka.linger_ms,
        max_batch_size=settings.kafka.producer_batch_bytes,
        request_timeout_ms=request_timeout_ms,
        client_id="siaga-client",
    )


async def send_events(producer_: AIOKafkaProducer, outgoing: list[Outgoing]) -> None:
    """Send events, pipelined, and wait until the broker has every one."""
    futures = [
        await producer_.send(
            o.topic,
            o.value,
            key=o.key,
            headers=record_headers(o.event),
        )
        for o in outgoing
    ]
    await asyncio.gather(*futures)
