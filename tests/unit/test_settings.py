"""Connection settings pass through: per-stage database roles, Kafka SASL/SSL, TLS."""

from __future__ import annotations

from services.common.kafka import _security, client_options
from services.common.settings import CommonSettings, DatabaseSettings, KafkaSettings


def _with(**database: object) -> CommonSettings:
    return CommonSettings(
        database=DatabaseSettings(url="postgresql://admin:secret@db.example:5432/siaga", **database)
    )


def test_each_stage_connects_as_its_own_role() -> None:
    settings = _with()
    assert settings.database_url_for(None) == "postgresql://admin:secret@db.example:5432/siaga"
    assert settings.database_url_for("triage") == "postgresql://siaga_triage@db.example:5432/siaga"
    with_password = _with(role_password="p@ss word", role_prefix="batang")
    assert (
        with_password.database_url_for("reader")
        == "postgresql://batang_reader:p%40ss%20word@db.example:5432/siaga"
    )


def test_a_stage_url_wins_and_roles_can_be_switched_off() -> None:
    own = "postgresql://enricher:x@other:5432/siaga?sslmode=verify-full"
    assert _with(enricher_url=own).database_url_for("enricher") == own
    assert _with(stage_roles=False).database_url_for("tracker").startswith("postgresql://admin:")


def test_kafka_sasl_ssl_settings_reach_both_clients() -> None:
    settings = CommonSettings(
        kafka=KafkaSettings(
            bootstrap="k1:9093",
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="siaga",
            sasl_password="secret",
        )
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL" and options["ssl_context"] is not None
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "siaga" and options["sasl_plain_password"] == "secret"
    security = _security(settings)
    assert type(security).__name__ == "SASLScram512" and security is not None
    assert security.use_ssl
