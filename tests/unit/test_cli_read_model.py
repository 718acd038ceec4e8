"""The command line's way into the read model (always the reader role) and what a
call-taker's commands load: the heavy libraries only when a command uses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from services.cli.main import main
from services.common import locate
from services.common.settings import CommonSettings, HomeSettings

ADMIN_URL = "postgresql://siaga_admin:admin-secret@127.0.0.1:1/siaga"
INCIDENT = "5f0c1b8e-0000-4000-8000-00000000c0de"

# Every command that reads the read model (the supervisor's commands look up the incident
# of an intake id there before they send anything).
READERS = [
    ("incident", "show", INCIDENT),
    ("incident", "list"),
    ("incident", "list", "--review"),
    ("unit", "list"),
    ("unit", "status", "AMB-1", "en_route"),
    ("dlq", "list"),
    ("workorder", "list"),
    ("stats", "sla"),
    ("dispatch", "cancel", INCIDENT, "AMB-1"),
    ("dispatch", "reassign", INCIDENT, "AMB-1"),
    ("incident", "cancel", INCIDENT, "--reason", "test"),
    ("incident", "close", INCIDENT),
    ("incident", "review", INCIDENT, "--confirm"),
    ("workorder", "answer", INCIDENT, "--text", "x"),
    ("workorder", "close", INCIDENT, "--text", "x"),
]


@pytest.fixture
def no_siaga_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment with no SIAGA_ variable but a home of its own."""
    for name in list(os.environ):
        if name.upper().startswith("SIAGA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SIAGA_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_every_read_of_the_read_model_is_the_reader_role(
    args: tuple[str, ...], no_siaga_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIAGA_DATABASE_URL", ADMIN_URL)
    monkeypatch.setenv("SIAGA_DATABASE_ROLE_PASSWORD", "reader-secret")
    users: list[str | None] = []

    async def refused(dsn: str, **_: object) -> asyncpg.Connection:
        users.append(urlsplit(dsn).username)
        raise ConnectionRefusedError("no database in a unit test")

    monkeypatch.setattr(asyncpg, "connect", refused)
    assert main(list(args)) == 1  # an outage: no database (and no broker) here
    assert users == ["siaga_reader"]


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"SIAGA_DATABASE_URL": ADMIN_URL},
        {"SIAGA_DATABASE_URL": ADMIN_URL, "SIAGA_DATABASE_ROLE_PASSWORD": "p@ss/word"},
        {"SIAGA_DATABASE_URL": ADMIN_URL, "SIAGA_DATABASE_ROLE_PASSWORD": ""},
        {"SIAGA_DATABASE_URL": ADMIN_URL, "siaga_database_reader_url": "postgresql://r@h/d"},
        {"SIAGA_DATABASE_URL": "", "SIAGA_DATABASE_SSLMODE": "require"},
        {"SIAGA_DATABASE_URL": "postgresql:///siaga?host=/run/pg", "SIAGA_DATABASE_SSLMODE": ""},
    ],
)
@pytest.mark.parametrize(
    "stack",
    [
        None,
        {"database_url": ADMIN_URL},
        {
            "database_url": "postgresql://siaga@127.0.0.1:5/siaga",
            "database_role_password": "s3cret",
        },
    ],
)
def test_the_readers_url_without_pydantic_is_the_settings_own(
    env: dict[str, str],
    stack: dict[str, str] | None,
    no_siaga_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if stack is not None:
        (no_siaga_env / "stack.json").write_text(json.dumps(stack))
    try:
        expected: object = (
            CommonSettings().database_url_for("reader"),
            CommonSettings().database.sslmode or None,  # what the connection is given
        )
    except locate.NotConfigured as exc:
        expected = str(exc)
    try:
        found: object = locate.plain_reader_url()
    except locate.NotConfigured as exc:
        found = str(exc)
    assert found == expected


@pytest.mark.parametrize("name", ["SIAGA_DATABASE_STAGE_ROLES", "SIAGA_DATABASE_ROLE_PREFIX"])
def test_settings_that_need_checking_are_left_to_the_settings(
    name: str, no_siaga_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIAGA_DATABASE_URL", ADMIN_URL)
    monkeypatch.setenv(name, "false")
    assert locate.plain_reader_url() is None


@pytest.mark.parametrize("home", [None, "", "/srv/siaga", "rel/dir"])
def test_the_home_without_pydantic_is_the_settings_own(
    home: str | None, no_siaga_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIAGA_HOME")
    if home is not None:
        monkeypatch.setenv("Siaga_Home", home)
        monkeypatch.setenv("SIAGA_DATA_DIR", home)
    settings = HomeSettings()
    assert (locate.home_folder(), locate.data_dir()) == (settings.home, settings.data_dir)


HEAVY = {
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "asyncpg",
    "aiokafka",
    "faststream",
    "numpy",
    "structlog",
    "aiohttp",
}


def _loaded_after(code: str, home: Path) -> set[str]:
    """The heavy libraries a fresh interpreter has loaded after `code`."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r}))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SIAGA_")}
    env["SIAGA_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


CALL_TAKER = [
    ["report", "--channel", "call112", "--text", "kebakaran", "--caller", "+6281234567890"],
    ["incident", "show", INCIDENT, "--json"],
    ["unit", "status", "AMB-1", "en_route", "--incident", INCIDENT],
]


@pytest.mark.parametrize("argv", CALL_TAKER, ids=lambda a: " ".join(a[:2]))
def test_a_call_takers_arguments_are_handled_without_a_heavy_library(
    argv: list[str], tmp_path: Path
) -> None:
    """Everything main() does before the command's own work (parsing, the combination
    checks, the home, the data pack, the spool) loads nothing heavy."""
    loaded = _loaded_after(
        "import services.cli.main as cli\n"
        "cli._dispatch = lambda args: 0  # the command's own work is not this test's\n"
        f"assert cli.main({argv!r}) == 0",
        tmp_path,
    )
    assert loaded == set()


def test_incident_show_needs_the_database_driver_and_nothing_else_heavy(tmp_path: Path) -> None:
    # No database here: the command stops at connecting, after it imported what it uses.
    loaded = _loaded_after(
        "import os; os.environ['SIAGA_DATABASE_URL'] = 'postgresql://u@127.0.0.1:1/d'\n"
        "from services.cli.main import main\n"
        f"assert main(['incident', 'show', '{INCIDENT}']) == 1",
        tmp_path,
    )
    assert loaded == {"asyncpg"}


def test_a_unit_status_refused_at_once_loads_nothing_heavy(tmp_path: Path) -> None:
    loaded = _loaded_after(
        "from services.cli.main import main\nassert main(['unit', 'status', 'AMB-1', 'flying']) == 2",
        tmp_path,
    )
    assert loaded == set()
