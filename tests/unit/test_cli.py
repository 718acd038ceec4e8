"""The command line as a user meets it: bad input is one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def siaga(*args: str, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env["SIAGA_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        ("run", "nonexistent-stage"),
        ("report", "--channel", "pigeon", "--text", "x"),
        ("report", "--caller", "0812", "--text", "x"),
        ("report", "--lat", "-7.0", "--text", "x"),
        ("unit", "status", "AMB-1", "flying"),
        ("incident", "show", "not-a-uuid"),
        ("incident", "show", "5f0c1b8e-0000-4000-8000-000000000000"),
        ("unit", "watch", "AMB-1", "--since", "yesterday"),
        ("triage",),
        ("triage", "--jsonl", "/no/such/file.jsonl"),
        ("report", "--lat", "north", "--text", "x"),
        (
            "unit",
            "add",
            "AMB-9",
            "--type",
            "spaceship",
            "--agency",
            "x",
            "--base",
            "y",
            "--lat",
            "-7",
            "--lon",
            "109",
        ),
        ("unit", "add", "AMB-9", "--type", "ambulance"),
        ("unit", "move", "AMB-9", "--lat", "-95", "--lon", "109"),
        ("dispatch", "cancel", "not-an-id", "AMB-1"),
        ("dispatch", "reassign"),
        ("workorder", "answer", "5f0c1b8e-0000-4000-8000-000000000000"),
        ("incident", "cancel", "5f0c1b8e-0000-4000-8000-000000000000"),
        ("stats", "sla", "--days", "many"),
        ("dlq", "redrive"),
        ("dlq", "redrive", "--id", "x", "--all"),
        ("dlq", "frobnicate"),
        ("rebuild", "--schema", "Bad-Name"),
        ("rebuild", "--schema", "readmodel"),
        ("replay", "intake.received"),
        ("replay", "no.such.topic", "--from-offset", "0", "--to-file", "-"),
        ("replay", "intake.received", "--since", "yesterday", "--to-file", "-"),
        ("replay", "intake.received", "--from-offset", "-3", "--to-group", "g"),
        ("incident", "log", "not-a-uuid"),
        ("lag", "--stage", "nope"),
        ("lag",),
    ],
)
def test_bad_input_gets_one_line_and_a_non_zero_exit(args: tuple[str, ...], tmp_path: Path) -> None:
    done = siaga(*args, home=tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("siaga")


@pytest.mark.parametrize(
    "args",
    [
        ("report", "--channel", "pigeon", "--text", "x"),
        ("report", "--text", "kebakaran"),  # no channel
        ("report", "--channel", "call112"),  # no text ("" for a silent call)
        ("report", "--channel", "call112", "--text", "x", "--intake-id", "not-an-id"),
        ("report", "--channel", "call112", "--text", "x" * 5000),
        ("report", "--channel", "call112", "--text", "x", "--lat", "200", "--lon", "109"),
        ("unit", "status", "AMB-1", "flying"),
        ("incident", "show", "not-a-uuid"),
        ("stats", "sla", "--days", "-3"),
        ("triage", "--jsonl", "/no/such/file.jsonl"),
    ],
)
def test_a_bad_value_exits_2_like_a_bad_argument(args: tuple[str, ...], tmp_path: Path) -> None:
    done = siaga(*args, home=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


GRADED = ("--urgency", "Immediate", "--severity", "Severe", "--certainty", "Observed")


@pytest.mark.parametrize(
    "args",
    [
        ("--hazard", "flood", "--kecamatan", "Atlantis", *GRADED),
        ("--hazard", "volcano", "--kecamatan", "Limpung", *GRADED),
        ("--hazard", "flood", "--kecamatan", "Limpung", "--urgency", "Soon"),
        ("--hazard", "flood", "--kecamatan", "Limpung"),  # no urgency, severity, certainty
        ("--hazard", "flood", *GRADED),  # no area
        ("--event", "Banjir", "--kecamatan", "Limpung", *GRADED),  # no category
        ("--hazard", "flood", "--polygon", "-7.0,109.9 -7.1,109.9 -7.0,109.9", *GRADED),
        ("--hazard", "flood", "--polygon", "-7,109.9 -7.1,109.9 -7.1,110 -7,110", *GRADED),
        ("--hazard", "flood", "--polygon", "north,east", "--area-desc", "x", *GRADED),
        ("--hazard", "flood", "--circle", "-7.0,109.9", "--area-desc", "x", *GRADED),
        ("--hazard", "flood", "--kecamatan", "Limpung", "--restriction", "BPBD", *GRADED),
        ("--hazard", "flood", "--kecamatan", "Limpung", "--scope", "Restricted", *GRADED),
        ("--hazard", "flood", "--kecamatan", "Limpung", "--expires", "soon", *GRADED),
        ("--hazard", "flood", "--kecamatan", "Limpung", "--incident", "INC-1", *GRADED),
    ],
)
def test_a_bad_alert_is_refused_in_one_line_before_anything_is_sent(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    """No broker is configured here: a command that tried to send would exit 1."""
    done = siaga("alert", "issue", *args, home=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siaga"), done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("update", "not-an-id"),
        ("cancel", "5f0c1b8e-0000-4000-8000-000000000000"),  # no --reason
        ("update", "5f0c1b8e-0000-4000-8000-000000000000", "--polygon", "1,2 3,4 5,6 1,3"),
        ("show", "x"),
    ],
)
def test_a_bad_follow_up_is_refused_in_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    done = siaga("alert", *args, home=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_an_outage_exits_1(tmp_path: Path) -> None:
    done = siaga("lag", home=tmp_path)  # no stack running here, none configured
    assert done.returncode == 1, done.stderr


def test_report_without_a_broker_keeps_the_report_and_says_so(tmp_path: Path) -> None:
    before = os.umask(0)  # the spool is private whatever the call-taker's umask
    try:
        done = siaga(
            "report", "--channel", "call112", "--text", "kebakaran di Batang", home=tmp_path
        )
    finally:
        os.umask(before)
    assert done.returncode == 3  # only in the spool: not an error, not a delivery
    intake_id = done.stdout.strip()
    assert len(intake_id) == 36
    assert done.stderr.count("\n") == 1 and "safe in the spool" in done.stderr
    assert "will go out by itself" in done.stderr
    spooled = list((tmp_path / "spool").glob("*.json"))
    assert len(spooled) == 1 and intake_id in spooled[0].read_text()
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    assert stat.S_IMODE(spooled[0].stat().st_mode) == 0o600


def test_the_next_command_tries_the_spool_and_says_what_still_waits(tmp_path: Path) -> None:
    siaga("report", "--channel", "sms", "--text", "banjir", home=tmp_path)
    done = siaga("lag", home=tmp_path)  # still no broker: the spool waits, lag fails as before
    assert done.returncode == 1
    assert "1 report(s) still wait in the spool" in done.stderr
    assert len(list((tmp_path / "spool").glob("*.json"))) == 1


def test_triage_json_follows_the_contract(tmp_path: Path) -> None:
    done = siaga(
        "triage",
        "ada kecelakaan motor di depan pasar Limpung, korban luka parah",
        "--json",
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"category", "priority", "agency", "confidence", "explanation", "place"} <= set(result)
    assert result["category"] == "traffic_accident" and result["priority"] == "P1"
    assert result["place"]["kecamatan"] == "Limpung"
    assert {"kecamatan", "desa", "lat", "lon", "confidence"} <= set(result["place"])


def test_triage_jsonl_keeps_the_order_of_its_input(tmp_path: Path) -> None:
    reports = tmp_path / "reports.jsonl"
    reports.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"text": "rumah terbakar", "channel": "call112", "place_hint": "Subah"},
                {"text": "jalan berlubang besar", "channel": "whatsapp"},
                {"text": "halo", "channel": "sms"},
            ]
        )
        + "\n"
    )
    done = siaga("triage", "--jsonl", str(reports), home=tmp_path)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    # "halo" and nothing else is a silent call, as the shared corpus labels it
    assert [r["category"] for r in results] == ["fire", "infrastructure", "ghost"]
    assert results[0]["place"]["kecamatan"] == "Subah"
    assert results[1]["place"] is None


@pytest.mark.parametrize(
    "line",
    ['{"text": 5}', '{"text": "x", "place_hint": 3}', "[1, 2]", "{half"],
)
def test_triage_jsonl_with_a_bad_line_says_where(line: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports.jsonl"
    reports.write_text('{"text": "rumah terbakar"}\n' + line + "\n")
    done = siaga("triage", "--jsonl", str(reports), home=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and ":2:" in done.stderr


def test_an_absurd_duration_is_refused(tmp_path: Path) -> None:
    done = siaga("unit", "watch", "AMB-1", "--since", "99999999999d", home=tmp_path)
    assert done.returncode == 2 and "too long" in done.stderr
