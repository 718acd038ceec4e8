"""What people read: phone numbers masked wherever shown, ETAs rounded one way, the spool
private, and the command line quick because it loads only what a command uses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.envelope import new_event
from schemas.events import DeadLetterV1, UnitDispatchedV1, WorkOrderAnsweredV1
from schemas.vocabulary import Category, Channel, Priority, UnitType
from services.clients.operator import Spool, intake_event, new_intake
from services.common.readable import eta_minutes, mask_phone, mask_phones_in
from services.stack.monitor import describe

PHONE = "+6281234567890"


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (PHONE, "+6281*******90"),
        ("081234567890", "08123*****90"),
        ("0812-3456-7890", "08123*****90"),
        ("0812 3456 7890", "08123*****90"),
        ("+62 812-3456-7890", "+6281*******90"),
        ('{"caller":{"phone":"+6281234567890"}}', '{"caller":{"phone":"+6281*******90"}}'),
    ],
)
def test_numbers_are_masked_however_they_are_written(written: str, shown: str) -> None:
    assert mask_phones_in(f"hubungi {written} segera") == f"hubungi {shown} segera"


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23 10:00:00+07:00",
        "jam 08.30 ada 3 orang, RT 02/05",
        "lat -6.912345 lon 109.812345",
        "08-12-2026, 10.000.000 rupiah",
        "incident 6f76f936-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    ],
)
def test_dates_times_amounts_coordinates_and_ids_are_left_alone(text: str) -> None:
    assert mask_phones_in(text) == text


def test_a_masked_number_keeps_enough_to_see_a_caller_again() -> None:
    assert mask_phone(PHONE) == "+6281*******90"
    assert mask_phone(PHONE) != mask_phone("+6281234567811")


def test_the_live_view_of_siaga_up_masks_numbers_in_what_it_shows() -> None:
    intake = new_intake(
        channel=Channel.CALL112,
        text="tolong hubungi saya di 0812-3456-7890, rumah terbakar",
        phone=PHONE,
    )
    line = describe(intake_event(intake)) or ""
    assert "received" in line and "08123*****90" in line and "3456-7890" not in line
    now = datetime.now(UTC)
    answered = WorkOrderAnsweredV1(
        work_order_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        agency="DPUPR",
        response=f"sudah kami telepon ke {PHONE}",
        answered_by="petugas",
        answered_at=now,
    )
    dead = DeadLetterV1(
        stage="enricher",
        reason=f"bad_payload: caller {PHONE} refused",
        error_type="DecodeError",
        source_topic="siaga.intake.received",
        source_partition=0,
        source_offset=7,
        original_key_b64=None,
        original_headers=[],
        original_value_b64="",
        original_size=0,
        original_truncated=False,
        dead_lettered_at=now,
    )
    for payload in (answered, dead):
        shown = describe(new_event(payload, id=uuid.uuid4(), source="/test")) or ""
        assert shown and PHONE not in shown and "+6281*******90" in shown


def test_an_eta_under_a_minute_is_one_minute_everywhere() -> None:
    assert [eta_minutes(s) for s in (0, 45, 60, 119, 120)] == [1, 1, 1, 1, 2]
    order = UnitDispatchedV1(
        dispatch_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        unit_id="AMB-LIMPUNG",
        unit_type=UnitType.AMBULANCE,
        category=Category.MEDICAL,
        priority=Priority.P1,
        place=None,
        distance_km=0.4,
        eta_seconds=45,
        dispatched_at=datetime.now(UTC),
    )
    assert "ETA 1 min" in (describe(new_event(order, id=uuid.uuid4(), source="/test")) or "")


def test_the_spool_is_readable_by_its_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    before = os.umask(0)
    try:
        spool = Spool(tmp_path / "spool")
        path = spool.put(intake_event(new_intake(channel=Channel.SMS, text="x", phone=PHONE)))
        aside = spool.set_aside(path, reason="test")
    finally:
        os.umask(before)
    assert stat.S_IMODE(spool.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((spool.folder / "bad").stat().st_mode) == 0o700
    for written in (aside, aside.with_suffix(".reason")):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600, written


HEAVY = ("faststream", "aiokafka", "asyncpg", "numpy", "pydantic", "structlog", "aiohttp")


def _loaded_after(code: str) -> set[str]:
    """Which heavy libraries a fresh interpreter has loaded after running `code`."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_command_line_loads_no_heavy_library_to_start() -> None:
    assert _loaded_after("import services.cli.main") == set()


def test_incident_show_loads_neither_the_broker_client_nor_the_stages(tmp_path: Path) -> None:
    # No database here: the command fails at connecting, after it imported what it uses.
    loaded = _loaded_after(
        f"import os; os.environ['SIAGA_HOME'] = {str(tmp_path)!r}\n"
        "from services.cli.main import main\n"
        f"main(['incident', 'show', '{uuid.uuid4()}'])"
    )
    assert "asyncpg" in loaded and not loaded & {"faststream", "aiokafka", "numpy", "aiohttp"}


def test_report_loads_neither_the_stages_nor_the_classifier(tmp_path: Path) -> None:
    loaded = _loaded_after(
        f"import os; os.environ['SIAGA_HOME'] = {str(tmp_path)!r}\n"
        "from services.cli.main import main\n"
        "main(['report', '--channel', 'call112', '--text', 'x'])"
    )
    assert "aiokafka" in loaded and not loaded & {"faststream", "numpy", "aiohttp"}
