"""The embedded PostgreSQL asks every connection for its password, kept in a private file."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import asyncpg
import pytest

from services.stack.embedded import EmbeddedPostgres

pytestmark = pytest.mark.integration


async def _refusal(url: str) -> str | None:
    """Why the server refuses `url`, or None when it lets it in."""
    try:
        conn = await asyncpg.connect(url)
    except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError) as exc:
        return str(exc)
    await conn.close()
    return None


def test_a_connection_without_the_password_is_refused(tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(home=tmp_path / ".siaga").start()
    try:
        assert stat.S_IMODE(postgres.password_file.stat().st_mode) == 0o600
        address = f"127.0.0.1:{postgres.port}/postgres"
        assert "password authentication failed" in str(
            asyncio.run(_refusal(f"postgresql://postgres@{address}"))
        )
        assert asyncio.run(_refusal(f"postgresql://postgres:guess@{address}"))
        assert asyncio.run(_refusal(postgres.url())) is None

        # A cluster made before passwords (it trusted every local connection): its next
        # start gives it a password and the password-only rules before it listens.
        postgres.stop()
        (postgres.data_dir / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
        postgres.password_file.unlink()
        postgres.start()
        assert asyncio.run(_refusal(f"postgresql://postgres@{address}"))
        assert asyncio.run(_refusal(postgres.url())) is None
    finally:
        postgres.stop()
        postgres.remove()
    assert not postgres.data_dir.exists() and not postgres.password_file.exists()
