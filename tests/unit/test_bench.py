"""The benchmark's command line, and where it runs: the embedded stack by default, the real
one the environment names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.run import ROLE_PREFIX, Infrastructure, parse_args, stage_environment
from services.common.settings import (
    CommonSettings,
    DatabaseSettings,
    HomeSettings,
    KafkaSettings,
    TopicSettings,
    on_database,
)


def test_a_stack_gets_its_own_database_on_the_server() -> None:
    url = "postgresql://admin:s3cret@db.example:5432/postgres?sslmode=require"
    assert (
        on_database(url, "siaga_bench_main")
        == "postgresql://admin:s3cret@db.example:5432/siaga_bench_main?sslmode=require"
    )
    # A local socket named in the query: the URL keeps its empty host.
    assert (
        on_database("postgresql:///postgres?host=/var/run/postgresql", "siaga_bench_main")
        == "postgresql:///siaga_bench_main?host=/var/run/postgresql"
    )


def _environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """The bench's environment: these `SIAGA_` variables, and no partition count. That is
    set, then removed, so the undo also removes what `Infrastructure.start` may set."""
    for name, value in variables.items():
        monkeypatch.setenv(f"SIAGA_{name}", value)
    monkeypatch.setenv("SIAGA_KAFKA_PARTITIONS", "6")
    monkeypatch.delenv("SIAGA_KAFKA_PARTITIONS")


def test_a_real_broker_and_database_named_in_the_environment_are_used_and_nothing_is_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _environment(
        monkeypatch,
        KAFKA_BOOTSTRAP="kafka-1:9092,kafka-2:9092",
        DATABASE_URL="postgresql://admin:s3cret@db.example:5432/postgres",
        DATABASE_SSLMODE="require",
    )

    infrastructure = Infrastructure.start(tmp_path)

    assert infrastructure.postgres is None
    assert (infrastructure.broker_bootstrap, infrastructure.ssl) == (
        "kafka-1:9092,kafka-2:9092",
        "require",
    )
    # Topics and databases of this run's own, so two runs on one cluster do not meet.
    run = infrastructure.run_id
    assert infrastructure.topic_prefix("fresh") == f"bench-fresh-{run}"
    assert infrastructure.database_name("fresh") == f"siaga_bench_fresh_{run}"
    assert infrastructure.database_url(infrastructure.database_name("main")) == (
        f"postgresql://admin:s3cret@db.example:5432/siaga_bench_main_{run}"
    )
    described = infrastructure.describe()
    assert described == {
        "broker": "external at kafka-1:9092,kafka-2:9092",
        "database": "external at db.example",
    }
    assert "s3cret" not in json.dumps(described) + repr(infrastructure)
    # The embedded broker's partition count is not forced on a real cluster's topics.
    assert "SIAGA_KAFKA_PARTITIONS" not in os.environ
    assert not list(tmp_path.iterdir())


def test_an_empty_bootstrap_means_the_embedded_broker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _environment(
        monkeypatch, KAFKA_BOOTSTRAP="", DATABASE_URL="postgresql://admin@db.example:5432/postgres"
    )

    infrastructure = Infrastructure.start(tmp_path)

    assert infrastructure.broker_bootstrap is None
    assert infrastructure.topic_prefix("main") == "siaga"  # a broker of the stack's own
    assert os.environ["SIAGA_KAFKA_PARTITIONS"] == "2"  # as `siaga up` gives the embedded one


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--burst", "-5"], "argument --burst: must be at least 1, not -5"),
        (["--burst", "many"], "argument --burst: not a whole number: 'many'"),
        (["--latency-seconds", "0.5"], "argument --latency-seconds: must be at least 1 s"),
        (["--steady-seconds", "1.5"], "argument --steady-seconds: must be at least 2 s"),
        (["--steady-seconds", "inf"], "argument --steady-seconds: must be at least 2 s"),
        (["--steady-seconds", "soon"], "argument --steady-seconds: not a number of seconds"),
        (["--soak-messages", "0"], "argument --soak-messages: must be at least 1, not 0"),
        (["--fast"], "unrecognized arguments: --fast"),
    ],
)
def test_a_bad_argument_gets_one_line_and_exit_code_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("make bench: ") and says in err


def test_the_defaults_are_the_documented_run() -> None:
    args = parse_args([])
    assert (args.burst, args.latency_seconds, args.soak, args.soak_messages) == (
        20_000,
        30,
        False,
        1_000_000,
    )
    assert parse_args(["--soak", "--soak-messages", "30000"]).soak_messages == 30_000


def test_a_stage_gets_the_stacks_broker_database_and_roles_and_nothing_of_another_siaga(
    tmp_path: Path,
) -> None:
    settings = CommonSettings(
        home=HomeSettings(home=tmp_path),
        kafka=KafkaSettings(bootstrap="127.0.0.1:9092", security_protocol="PLAINTEXT"),
        topic=TopicSettings(prefix="bench-main-x"),
        database=DatabaseSettings(
            url="postgresql://admin@db:5432/siaga_bench_main_x", role_prefix=ROLE_PREFIX
        ),
    )
    inherited = {
        "PATH": "/usr/bin",
        "SIAGA_KAFKA_MAX_BATCH": "250",  # a tuning the bench is asked to run with
        "SIAGA_DATABASE_ENRICHER_URL": "postgresql://siaga_enricher@db:5432/siaga",
        "siaga_database_reader_url": "postgresql://siaga_reader@db:5432/siaga",
        "SIAGA_HTTP_PORT": "8080",
        "SIAGA_DATABASE_SSLMODE": "require",
        "SIAGA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SIAGA_TOPIC_PREFIX": "siaga",
        "SIAGA_DATABASE_URL": "postgresql://admin@db:5432/siaga",
    }

    env = stage_environment(settings, inherited=inherited, home=tmp_path)

    assert env == {
        "PATH": "/usr/bin",
        "SIAGA_KAFKA_MAX_BATCH": "250",
        "SIAGA_KAFKA_BOOTSTRAP": "127.0.0.1:9092",
        "SIAGA_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "SIAGA_TOPIC_PREFIX": "bench-main-x",
        "SIAGA_DATABASE_URL": "postgresql://admin@db:5432/siaga_bench_main_x",
        "SIAGA_DATABASE_ROLE_PREFIX": "siaga_bench",
        "SIAGA_HOME": str(tmp_path),
    }
