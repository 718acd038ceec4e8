"""Broker construction, topic creation and the Kafka settings every client shares."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncGenerator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from schemas.envelope import CONTENT_TYPE, encode_event
from services.common.outbox import Outgoing
from services.common.settings import CommonSettings


def client_options(settings: CommonSettings) -> dict[str, Any]:
    """aiokafka connection options (address and SASL/SSL) from settings."""
    kafka = settings.kafka
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap(),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password
    return options


def _security(settings: CommonSettings) -> BaseSecurity | None:
    kafka = settings.kafka
    use_ssl = kafka.security_protocol in ("SSL", "SASL_SSL")
    context = (
        ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
        if use_ssl
        else None
    )
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
    """A FastStream Kafka broker tuned for low latency; FastStream's per-message logs are off."""
    return KafkaBroker(
        settings.kafka_bootstrap(),
        client_id=client_id,
        acks="all",
        linger_ms=settings.kafka.linger_ms,
        logger=None,
        security=_security(settings),
        graceful_timeout=10.0,
    )


async def ensure_topics(settings: CommonSettings, *, attempts: int = 50) -> None:
    """Create every topic of the deployment if missing (idempotent; waits for the broker)."""
    topics = settings.topics.all()
    admin = AIOKafkaAdminClient(**client_options(settings), client_id="siaga-admin")
    for attempt in range(attempts):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2)
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, settings.kafka.partitions, settings.kafka.replication_factor)
            for name in topics
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:  # several processes racing to create: fine if they exist
                if not set(topics) <= set(await admin.list_topics()):
                    raise exc
    finally:
        await admin.close()


def producer(settings: CommonSettings, *, request_timeout_ms: int = 10_000) -> AIOKafkaProducer:
    """A plain aiokafka producer for short-lived clients (CLI, demo, tests)."""
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        linger_ms=settings.kafka.linger_ms,
        request_timeout_ms=request_timeout_ms,
        client_id="siaga-client",
    )


async def send_events(producer_: AIOKafkaProducer, outgoing: list[Outgoing]) -> None:
    """Send events, pipelined, and wait until the broker has every one."""
    futures = [
        await producer_.send(
            o.topic,
            encode_event(o.event),
            key=o.key,
            headers=[("content-type", CONTENT_TYPE.encode())],
        )
        for o in outgoing
    ]
    await asyncio.gather(*futures)


async def records_since(
    settings: CommonSettings, topics: list[str], *, since_ms: int
) -> AsyncGenerator[ConsumerRecord[bytes, bytes], None]:
    """Every record of `topics` from a point in time on, as it arrives (no consumer group).

    Positions come from `offsets_for_times`, which Kafka and Tansu both answer correctly;
    partitions with nothing that recent start at the end, which Tansu may report up to a
    batch too low, so records older than `since_ms` are skipped.
    """
    consumer = AIOKafkaConsumer(
        **client_options(settings), enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        await consumer.topics()  # loads metadata, so partitions_for_topic knows every topic
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        found = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        for tp in partitions:
            position = found.get(tp)
            if position is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, position.offset)
        async for record in consumer:
            if record.timestamp >= since_ms:
                yield record
    finally:
        await consumer.stop()
