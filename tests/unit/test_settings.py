"""Connection settings pass through: per-stage database roles, Kafka SASL/SSL, TLS."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.kafka import _security, client_options
from services.common.settings import (
    CommonSettings,
    DatabaseSettings,
    GcSettings,
    KafkaSettings,
)


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


def test_a_client_certificate_is_loaded_for_mtls(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    done = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=siaga-test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {done.stderr[:200]!r}")
    settings = CommonSettings(
        kafka=KafkaSettings(
            bootstrap="k1:9093", security_protocol="SSL", ssl_certfile=cert, ssl_keyfile=key
        )
    )
    assert client_options(settings)["ssl_context"] is not None
    broken = CommonSettings(
        kafka=KafkaSettings(
            bootstrap="k1:9093", security_protocol="SSL", ssl_certfile=key, ssl_keyfile=key
        )
    )
    with pytest.raises(ssl.SSLError):
        client_options(broken)


def _heap_after_settling(env: dict[str, str], *, settle: bool = True) -> list[int]:
    """gc threshold and frozen-object count of a fresh interpreter after `settle_heap`, with
    `SIAGA_GC_*` from `env` only (a child process: the collector is process-wide state)."""
    script = (
        "import gc, json\n"
        "from services.common.runtime import settle_heap\n"
        "from services.common.settings import CommonSettings\n"
        f"if {settle}: settle_heap(CommonSettings().gc)\n"
        "print(json.dumps([gc.get_threshold()[0], gc.get_freeze_count()]))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_GC_")}
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout))


def test_a_stage_process_freezes_its_start_up_heap_and_collects_garbage_less_often() -> None:
    pythons_own = _heap_after_settling({}, settle=False)
    threshold, frozen = _heap_after_settling({})
    assert threshold == GcSettings().young_threshold > pythons_own[0]
    assert frozen > 1_000  # the modules, models and data loaded at start-up
    threshold, _ = _heap_after_settling({"SIAGA_GC_YOUNG_THRESHOLD": "5000"})
    assert threshold == 5000
    assert _heap_after_settling({"SIAGA_GC_YOUNG_THRESHOLD": "0"}) == pythons_own  # untouched
