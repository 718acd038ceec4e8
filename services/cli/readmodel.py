"""The command line's one way into the read model: the projector's schema, as the reader
role, whichever command asks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common import locate

if TYPE_CHECKING:
    import asyncpg

    from services.common.settings import CommonSettings

APPLICATION = "siaga-cli"


async def read_model(settings: CommonSettings | None = None) -> asyncpg.Connection:
    """A connection to the read model as the reader role (read-only). Without `settings`
    the URL comes from the environment and `stack.json` as `CommonSettings` would find it,
    without loading pydantic: a call-taker's look-up answers sooner."""
    from services.common.db import STAGE_SCHEMAS, connect_url

    plain = locate.plain_reader_url() if settings is None else None
    if plain is None:
        if settings is None:
            from services.common.settings import CommonSettings

            settings = CommonSettings()
        plain = settings.database_url_for("reader"), settings.database.sslmode
    url, sslmode = plain
    return await connect_url(
        url, schema=STAGE_SCHEMAS["projector"], application=APPLICATION, sslmode=sslmode
    )
