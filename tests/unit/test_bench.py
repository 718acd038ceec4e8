"""The benchmark's command line, and where it runs: the embedded stack by default, the real
one the environment names; the page bench's pure parts (its HTTP and server-sent events
reading, what counts as shown on a page, the busy day's read model)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.responses import JSONResponse

import services.gateway
from bench.http_client import BadAnswer, SseEvent, SseParser, parse_head, read_answer
from bench.page_seed import seed_rows
from bench.pages import GIVE_UP_S, PageClient, static_paths
from bench.run import ROLE_PREFIX, Infrastructure, parse_args, stage_environment
from bench.stats import percentiles
from services.common.gazetteer import load_gazetteer
from services.common.settings import (
    CommonSettings,
    DatabaseSettings,
    HomeSettings,
    KafkaSettings,
    TopicSettings,
    on_database,
)
from services.gateway.centre import sse
from services.gateway.centre_board import Board, board_json
from services.gateway.centre_reads import ENDED, DayFacts, MapIncident, MapUnit, day_counters


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
        (["--pages-clients", "0"], "argument --pages-clients: must be at least 1, not 0"),
        (["--pages-seconds", "0"], "argument --pages-seconds: must be at least 1 s"),
        (["--pages-loads", "two"], "argument --pages-loads: not a whole number: 'two'"),
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
    assert (args.pages_clients, args.pages_seconds, args.pages_loads) == (50, 30, 10)


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


# ---------------------------------------------------------------- the page bench


def test_percentiles_are_by_nearest_rank_and_say_when_there_is_nothing() -> None:
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "n": 0}
    figures = percentiles([float(v) for v in range(100, 0, -1)])
    assert figures == {"p50": 51.0, "p95": 96.0, "p99": 100.0, "n": 100}
    assert percentiles([7.04])["p99"] == 7.0


def _feed_in_pieces(stream: bytes, size: int) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    for i in range(0, len(stream), size):
        events += parser.feed(stream[i : i + size])
    return events


def test_server_sent_events_are_read_however_the_stream_is_cut() -> None:
    # As the centre's stream sends them: a retry, changes, a heartbeat comment.
    stream = (
        "retry: 1000\n\n" + sse("changed", "0") + ": alive\n\n" + sse("changed", "1")
    ).encode()
    # Another server's way: CRLF line ends, several data lines, an unnamed event, UTF-8.
    other = (
        b"event: note\r\ndata: satu\r\ndata: dua \xc3\xa9\r\n\r\ndata:x\r\n\r\nevent: empty\r\n\r\n"
    )
    for size in (1, 2, 3, 7, len(stream)):
        assert _feed_in_pieces(stream, size) == [SseEvent("changed", "0"), SseEvent("changed", "1")]
        assert _feed_in_pieces(other, size) == [
            SseEvent("note", "satu\ndua é"),
            SseEvent("message", "x"),
        ]


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_answers_are_read_by_length_or_chunk_by_chunk_with_their_cookies() -> None:
    head = (
        b"HTTP/1.1 303 See Other\r\nlocation: /\r\n"
        b"set-cookie: siaga_session=abc; HttpOnly; Path=/; SameSite=strict\r\n"
        b"set-cookie: siaga_lang=id; Path=/\r\ncontent-length: 0\r\n\r\n"
    )
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"
    )
    sized = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbodyHTTP/1.1 304 Not Modified\r\n\r\n"

    redirect = await read_answer(_reader(head))
    assert (redirect.status, redirect.headers["location"], redirect.body) == (303, "/", b"")
    assert redirect.cookies == {"siaga_session": "abc", "siaga_lang": "id"}
    assert (await read_answer(_reader(chunked))).body == b"hello, world"
    both = _reader(sized)  # two answers on one keep-alive connection
    assert (await read_answer(both)).body == b"body"
    assert (await read_answer(both)).status == 304
    with pytest.raises(BadAnswer, match="not an HTTP status line"):
        parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")


def _board(shown: uuid.UUID, elsewhere: uuid.UUID) -> bytes:
    """A board as the gateway sends it: `shown` an incident on it, `elsewhere` only a
    unit's incident."""
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    incident = MapIncident(
        shown,
        "classified",
        "medical",
        "P2",
        "PSC 119",
        "Batang",
        "Kauman",
        -6.9,
        109.7,
        now,
        False,
        False,
        None,
        None,
        None,
    )
    unit = MapUnit("AMB-1", "ambulance", "PSC 119", "dispatched", -6.9, 109.7, elsewhere, now)
    board = Board(now, (incident,), (unit,), (), (), (), day_counters(DayFacts((), ()), now=now))
    return bytes(JSONResponse(board_json(board, version=3)).body)


def test_a_page_shows_an_incident_once_a_board_lists_it_and_counts_the_first_change_after() -> None:
    shown, elsewhere, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    client = PageClient()
    client.changed(at=1.0)  # the stream's first change: nothing committed yet
    for incident, at in ((shown, 2.0), (elsewhere, 2.1), (late, 2.2)):
        client.committed(str(incident), at)
    client.changed(at=2.25)
    assert client.changed_ms == pytest.approx([250.0, 150.0, 50.0])

    client.saw_board(_board(shown, elsewhere), done_at=2.5)
    assert client.page_ms == pytest.approx([500.0])  # a unit's incident is not on the map
    assert set(client.pending) == {str(elsewhere), str(late)}
    client.saw_board(_board(shown, elsewhere), done_at=2.15 + GIVE_UP_S)  # the first given up
    assert (client.missed, client.pending) == (1, {str(late): 2.2})
    with pytest.raises(BadAnswer):
        client.saw_board(b'{"error": "sign in first"}', done_at=20.0)


def test_the_first_load_fetches_the_pages_own_style_sheets_and_script() -> None:
    templates = Path(services.gateway.__file__).parent / "templates"
    html = b"".join((templates / name).read_bytes() for name in ("base.html", "centre.html"))
    paths = static_paths(html + b'<link href="/static/siaga.css?v=2"><a href="/static/x">')
    assert paths[:3] == ["/static/siaga.css", "/static/centre.css", "/static/centre.js"]
    assert paths[3:] == ["/static/x"]


def test_a_busy_days_read_model_is_open_incidents_mostly_complaints_and_a_busy_fleet() -> None:
    gazetteer = load_gazetteer(HomeSettings().pack())
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    seed = seed_rows(gazetteer, incidents=1_000, units=150, now=now)

    assert seed == seed_rows(gazetteer, incidents=1_000, units=150, now=now, seed=23)
    assert (len(seed.incidents), len(seed.units)) == (1_000, 150)
    assert all(i.status not in ENDED and i.received_at <= now for i in seed.incidents)
    complaints = {w.incident_id for w in seed.work_orders}
    emergencies = [i for i in seed.incidents if i.incident_id not in complaints]
    assert 0.1 < len(emergencies) / len(seed.incidents) < 0.2
    # Each emergency has its unit, on its way, or waits for one (escalated, with a reason).
    sent = {d.incident_id: d for d in seed.dispatches}
    waiting = {t.incident_id for t in seed.timeline}
    assert all((i.incident_id in sent) != (i.incident_id in waiting) for i in emergencies)
    assert waiting and all(i.escalated_at for i in emergencies if i.incident_id in waiting)
    units = {u.unit_id: u for u in seed.units}
    for incident_id, dispatch in sent.items():
        unit = units[dispatch.unit_id]
        assert (unit.incident_id, unit.status, unit.unit_type) == (
            incident_id,
            dispatch.status,
            dispatch.unit_type,
        )
    assert len(sent) == len({d.unit_id for d in seed.dispatches})  # a unit goes to one
    desa = {a.code: a for a in gazetteer.desa}
    assert all(abs(i.lat - desa[i.desa_code].lat) < 0.01 for i in seed.incidents)


def test_a_gateway_that_dies_before_it_serves_is_said_at_once_with_its_log(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys
    import time

    from bench.run import _serving
    from services.stack.processes import free_port

    log = tmp_path / "gateway-main.log"
    log.write_text("siaga: SIAGA_HTTP_PORT is taken\n")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    started = time.monotonic()
    with pytest.raises(RuntimeError) as caught:
        asyncio.run(_serving("127.0.0.1", free_port(), timeout=60, proc=proc, log=log))
    assert time.monotonic() - started < 5  # not the whole minute
    assert "exited with 3" in str(caught.value)
    assert "SIAGA_HTTP_PORT is taken" in str(caught.value)
