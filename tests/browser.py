"""A real headless browser for the pages' tests: Debian's chromium driven by playwright
(never `playwright install`); the tests skip, saying why, where there is none."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

# Without these, chromium tries Google's services at start and this machine's closed
# network refuses it many times over.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Debian's chromium (or SIAGA_CHROMIUM), if there is one."""
    return os.environ.get("SIAGA_CHROMIUM") or shutil.which("chromium")


def why_no_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if chromium_path() is None:
        return "no chromium: `make test` installs Debian's where it may (root with apt-get)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (the dev extra has it)"
    return None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One chromium for the session; each test opens its own context (own cookies)."""
    reason = why_no_browser()
    if reason:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            yield chromium
        finally:
            await chromium.close()
