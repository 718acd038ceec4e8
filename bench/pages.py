"""The command-centre page under load: how long a change takes from the read model to fifty
open pages, and how long the page's first load takes on a busy day's read model.

Live: fifty pages, each signed in, hold `/centre/events` open and, as the page's script
does, fetch `/centre/board` after each `changed` (one fetch at a time, one more if a change
came meanwhile). Intakes go in at a modest rate; an incident is in the read model when the
projector's transaction that inserted its row commits. The bench learns that moment from
PostgreSQL itself: a trigger it adds to its own read model's `incidents` sends a
notification, which PostgreSQL delivers only once that transaction has committed (so the
row is visible to the gateway's reads by then). Each page counts the first `changed` it
gets after that commit, and the first board it fetched that lists the incident.

First load: the read model topped up to 2,000 open incidents and 500 units, then what a
browser's first visit fetches, one request after another on a new connection (time to
the last byte), and the page itself in headless chromium until its map shows the board's
incidents.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg

from bench.http_client import BadAnswer, Connection, SseParser, read_chunk, read_head
from bench.page_seed import top_up
from bench.stats import percentiles
from services.common.db import STAGE_SCHEMAS, connect_url, quote_ident
from services.common.gazetteer import Gazetteer
from services.gateway.pages import COOKIE
from services.gateway.people import Role, add_person
from services.gateway.settings import GatewaySettings

CLIENTS = 50
OPEN_INCIDENTS = 2_000
UNITS = 500
LOADS = 10  # first loads of each kind
# An incident no page showed this long after its commit is counted missed (it may have
# ended first: the bench's crews clear a call a second after its order).
GIVE_UP_S = 10.0
PERSON = "bench-centre"
CHANNEL = "siaga_bench_incident_committed"
# Like a browser's first visit: no cache, compressed answers welcome.
BROWSER_HEADERS = {"Accept-Encoding": "gzip, deflate, br", "Accept": "*/*"}
STATIC = re.compile(rb'(?:href|src)="(/static/[^"?#]+)"')
# The map is drawn once both the outlines and the board are in: then every incident of the
# board that has a position is a dot. The page's own clock tells when (ms since navigation).
MAP_SHOWN = (
    "(n) => document.querySelectorAll('#map .layer-incidents g.incident').length >= n"
    " && performance.now()"
)
NAVIGATION = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {document_ms: n.responseEnd, dom_content_loaded_ms: n.domContentLoadedEventEnd,
          load_ms: n.loadEventEnd};
}"""

Feed = Callable[[int, float], Awaitable[object]]
CpuSeconds = Callable[[], dict[str, float]]


# ---------------------------------------------------------------- one open page


def incidents_section(board: bytes) -> tuple[int, int]:
    """Where the board's `incidents` list is in its JSON (the gateway writes it compact,
    the list right before `units`); found by bytes, as fifty pages' boards parsed a few
    times a second would cost the bench more CPU than the gateway serving them."""
    start = board.find(b'"incidents":[')
    end = board.find(b'],"units":[', start)
    if start < 0 or end < 0:
        raise BadAnswer("a board without its incidents and units lists")
    return start, end


@dataclass
class PageClient:
    """One open page: the incidents committed that no `changed` has followed yet, those it
    has not shown yet, and how long each took."""

    unchanged: dict[str, float] = field(default_factory=dict)  # incident id -> commit time
    pending: dict[str, float] = field(default_factory=dict)  # not on the page yet
    changed_ms: list[float] = field(default_factory=list)
    page_ms: list[float] = field(default_factory=list)
    missed: int = 0
    changed_events: int = 0
    boards: int = 0
    board_bytes: int = 0  # the last board's size
    errors: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def committed(self, incident_id: str, at: float) -> None:
        """An incident reached the read model at `at`."""
        self.unchanged.setdefault(incident_id, at)
        self.pending.setdefault(incident_id, at)

    def changed(self, at: float) -> None:
        """A `changed` event came at `at`: the first after each commit waiting for one."""
        self.changed_events += 1
        self.changed_ms += [(at - committed) * 1000 for committed in self.unchanged.values()]
        self.unchanged.clear()
        self.connected.set()

    def saw_board(self, board: bytes, *, done_at: float) -> None:
        """A board came whole at `done_at`: the pending incidents it lists are on the page
        now; those still missing `GIVE_UP_S` after their commit are given up."""
        self.boards += 1
        self.board_bytes = len(board)
        start, end = incidents_section(board)
        for incident_id, at in list(self.pending.items()):
            if board.find(incident_id.encode(), start, end) >= 0:
                self.page_ms.append((done_at - at) * 1000)
                del self.pending[incident_id]
            elif done_at - at > GIVE_UP_S:
                self.missed += 1
                del self.pending[incident_id]


async def _follow_events(url: str, token: str, client: PageClient, wake: asyncio.Event) -> None:
    """Hold `/centre/events` open; each `changed` wakes the board fetcher."""
    conn = Connection(url)
    try:
        headers = {"Cookie": f"{COOKIE}={token}", "Accept": "text/event-stream"}
        await conn.send("GET", "/centre/events", headers, b"")
        assert conn.reader is not None
        status, answer_headers, _ = await read_head(conn.reader)
        if status != 200:
            raise BadAnswer(f"/centre/events answered {status}")
        chunked = "chunked" in answer_headers.get("transfer-encoding", "")
        parser = SseParser()
        while True:
            piece = await (read_chunk(conn.reader) if chunked else conn.reader.read(65536))
            if not piece:
                return
            now = time.monotonic()
            for event in parser.feed(piece):
                if event.name == "changed":
                    client.changed(now)
                    wake.set()
    finally:
        await conn.close()


async def _follow_board(url: str, token: str, client: PageClient, wake: asyncio.Event) -> None:
    """Fetch the board after each `changed`, one fetch at a time, as the page does."""
    conn = Connection(url)
    headers = {"Cookie": f"{COOKIE}={token}"}
    try:
        while True:
            await wake.wait()
            wake.clear()
            try:
                answer = await conn.request("GET", "/centre/board", headers)
            except (OSError, asyncio.IncompleteReadError, BadAnswer):
                client.errors += 1
                await conn.close()
                continue
            done_at = time.monotonic()
            if answer.status != 200:
                client.errors += 1
                continue
            client.saw_board(answer.body, done_at=done_at)
    finally:
        await conn.close()


async def _open_page(url: str, token: str, client: PageClient) -> None:
    """One page: its event stream and its board fetches, until cancelled."""
    wake = asyncio.Event()
    events = asyncio.create_task(_follow_events(url, token, client, wake))
    board = asyncio.create_task(_follow_board(url, token, client, wake))
    try:
        await asyncio.gather(events, board)
    finally:
        for task in (events, board):
            task.cancel()
        await asyncio.gather(events, board, return_exceptions=True)


# ---------------------------------------------------------------- signing in


async def sign_in(url: str, database_url: str, *, sessions: int, sslmode: str | None) -> list[str]:
    """`sessions` supervisors added straight into the gateway's schema, each signed in
    through `POST /login` (one person each: the gateway lets a name try only a few times a
    minute): one session cookie's token for each page."""
    password = secrets.token_urlsafe(18)
    names = [f"{PERSON}-{i}" for i in range(sessions)]
    conn = await connect_url(database_url, schema="gateway", application="bench", sslmode=sslmode)
    try:
        for name in names:
            await add_person(
                conn, name=name, role=Role.SUPERVISOR, password=password, now=datetime.now(UTC)
            )
    finally:
        await conn.close()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    http = Connection(url)
    tokens = []
    try:
        for name in names:
            form = urlencode({"username": name, "password": password, "next": "/"}).encode()
            answer = await http.request("POST", "/login", headers, form)
            if answer.status != 303 or COOKIE not in answer.cookies:
                raise BadAnswer(f"POST /login answered {answer.status} without a session")
            tokens.append(answer.cookies[COOKIE])
    finally:
        await http.close()
    return tokens


# ---------------------------------------------------------------- live


@contextlib.asynccontextmanager
async def commit_notices(
    database_url: str, *, sslmode: str | None, on_commit: Callable[[str, float], None]
) -> AsyncIterator[None]:
    """While open, `on_commit(incident_id, when)` as each new incident row of the read model
    commits (a trigger of the bench's own on its read model, removed on the way out)."""
    table = f"{quote_ident(STAGE_SCHEMAS['projector'])}.incidents"
    conn = await asyncpg.connect(database_url, ssl=sslmode or None)

    def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        on_commit(payload, time.monotonic())

    try:
        await conn.execute(
            f"""
            CREATE OR REPLACE FUNCTION public.{CHANNEL}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('{CHANNEL}', NEW.incident_id::text); RETURN NULL; END $$;
            DROP TRIGGER IF EXISTS {CHANNEL} ON {table};
            CREATE TRIGGER {CHANNEL} AFTER INSERT ON {table}
                FOR EACH ROW EXECUTE FUNCTION public.{CHANNEL}();
            """
        )
        await conn.add_listener(CHANNEL, heard)
        yield
    finally:
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await conn.remove_listener(CHANNEL, heard)
            await conn.execute(
                f"DROP TRIGGER IF EXISTS {CHANNEL} ON {table}; "
                f"DROP FUNCTION IF EXISTS public.{CHANNEL}()"
            )
        await conn.close()


async def _until_connected(pages: list[asyncio.Task[None]], clients: list[PageClient]) -> None:
    """Wait for every page's first `changed`; a page that failed first raises why."""
    deadline = time.monotonic() + 60
    while not all(c.connected.is_set() for c in clients):
        for page in pages:
            if page.done():
                page.result()  # its exception, if it had one
                raise BadAnswer("an event stream ended before its first change")
        if time.monotonic() > deadline:
            raise TimeoutError("the pages' event streams did not all open within 60 s")
        await asyncio.sleep(0.1)


async def live(
    stack: PageStack, tokens: list[str], *, rate: float, seconds: float
) -> dict[str, Any]:
    """A page per token open on the centre while intakes go in at `rate` for `seconds`:
    from an incident's commit in the read model to the first `changed` after it and to the
    first board listing it, over every page and incident; and the cores used while the
    intakes went in."""
    clients = [PageClient() for _ in tokens]
    pages = [
        asyncio.create_task(_open_page(stack.url, t, c))
        for t, c in zip(tokens, clients, strict=True)
    ]
    last = [time.monotonic()]
    incidents = 0

    def on_commit(incident_id: str, at: float) -> None:
        nonlocal incidents
        incidents += 1
        last[0] = at
        for client in clients:
            client.committed(incident_id, at)

    try:
        await _until_connected(pages, clients)
        cpu_before, start = stack.cpu(), time.monotonic()
        async with commit_notices(stack.database_url, sslmode=stack.sslmode, on_commit=on_commit):
            await stack.feed(int(rate * seconds), rate)
            cpu_after, took = stack.cpu(), time.monotonic() - start
            # The last intakes' incidents, then every page showing them (or giving up).
            deadline = time.monotonic() + 30 + GIVE_UP_S
            while time.monotonic() < deadline:
                quiet = time.monotonic() - last[0] > 2.0
                if quiet and not any(c.pending for c in clients):
                    break
                await asyncio.sleep(0.1)
    finally:
        for page in pages:
            page.cancel()
        await asyncio.gather(*pages, return_exceptions=True)
    return {
        "clients": len(clients),
        "rate_eps": rate,
        "seconds": seconds,
        "poll_ms": GatewaySettings().live_poll_ms,
        "incidents": incidents,
        "changed_ms": percentiles([v for c in clients for v in c.changed_ms]),
        "on_page_ms": percentiles([v for c in clients for v in c.page_ms]),
        "missed": sum(c.missed + len(c.pending) for c in clients),
        "changed_events": sum(c.changed_events for c in clients),
        "board_fetches": sum(c.boards for c in clients),
        "board_bytes": max(c.board_bytes for c in clients),
        "errors": sum(c.errors for c in clients),
        "cores_used": {
            name: round((cpu_after[name] - cpu_before.get(name, 0.0)) / took, 2)
            for name in cpu_after
            if name in ("gateway", "postgres", "projector", "bench")
        },
    }


# ---------------------------------------------------------------- first load


def static_paths(html: bytes) -> list[str]:
    """The page's own style sheets and scripts, in the order it names them."""
    return list(dict.fromkeys(p.decode() for p in STATIC.findall(html)))


@dataclass(frozen=True)
class BoardShape:
    """What the first load's board held: incidents (dots: those with a position), units,
    work orders, and its size."""

    incidents: int
    dots: int
    units: int
    work_orders: int
    size: int  # bytes

    @classmethod
    def of(cls, body: bytes) -> BoardShape:
        """The shape of a board's JSON."""
        board = json.loads(body)
        incidents = board["incidents"]
        dots = sum(1 for i in incidents if i["lat"] is not None and i["lon"] is not None)
        return cls(len(incidents), dots, len(board["units"]), len(board["work_orders"]), len(body))


async def _first_load(url: str, token: str) -> tuple[float, dict[str, tuple[float, int]], bytes]:
    """One first visit on a new connection, each request after the last: the total time,
    each path's time and bytes, and the board."""
    conn = Connection(url)
    headers = {**BROWSER_HEADERS, "Cookie": f"{COOKIE}={token}"}
    took: dict[str, tuple[float, int]] = {}
    board = b""
    start = time.monotonic()
    try:
        paths = ["/"]
        while paths:
            path = paths.pop(0)
            began = time.monotonic()
            answer = await conn.request("GET", path, headers)
            if answer.status != 200:
                raise BadAnswer(f"GET {path} answered {answer.status} on a first load")
            took[path] = ((time.monotonic() - began) * 1000, len(answer.body))
            if path == "/":
                paths = [*static_paths(answer.body), "/centre/outlines.json", "/centre/board"]
            elif path == "/centre/board":
                board = answer.body
    finally:
        await conn.close()
    return (time.monotonic() - start) * 1000, took, board


async def first_loads_http(url: str, token: str, *, runs: int) -> dict[str, Any]:
    """`runs` first visits (every request in turn, time to the last byte): the total, each
    path's median and bytes, and the board's shape."""
    totals: list[float] = []
    by_path: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    board = b""
    for _ in range(runs):
        total, took, board = await _first_load(url, token)
        totals.append(total)
        for path, (ms, size) in took.items():
            by_path.setdefault(path, []).append(ms)
            sizes[path] = size
    return {
        "runs": runs,
        "total_ms": percentiles(totals),
        "by_path": {
            p: {"p50_ms": percentiles(ms)["p50"], "bytes": sizes[p]} for p, ms in by_path.items()
        },
        "board": vars(BoardShape.of(board)),
    }


async def first_loads_chromium(url: str, token: str, *, runs: int, dots: int) -> dict[str, Any]:
    """`runs` first visits in headless chromium (a new context each: no cache), each until
    the map shows `dots` incidents, by the page's own clock; or why there is no chromium."""
    try:
        from tests.browser import FLAGS, chromium_path, why_no_browser
    except ImportError as exc:  # the bench without the dev extra's test helpers
        return {"skipped": f"no browser helpers: {exc}"}
    reason = why_no_browser()
    if reason:
        return {"skipped": reason}
    from playwright.async_api import async_playwright

    shown: list[float] = []
    timings: list[dict[str, float]] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            for _ in range(runs):
                context = await browser.new_context(viewport={"width": 1366, "height": 768})
                try:
                    await context.add_cookies([{"name": COOKIE, "value": token, "url": url}])
                    page = await context.new_page()
                    await page.goto(f"{url}/", wait_until="commit")
                    done = await page.wait_for_function(
                        MAP_SHOWN, arg=dots, polling="raf", timeout=60_000
                    )
                    shown.append(float(await done.json_value()))
                    timings.append(await page.evaluate(NAVIGATION))
                finally:
                    await context.close()
        finally:
            await browser.close()
    return {
        "runs": runs,
        "dots": dots,
        "map_shown_ms": percentiles(shown),
        **{
            name: percentiles([t[name] for t in timings])
            for name in ("document_ms", "dom_content_loaded_ms", "load_ms")
        },
    }


# ---------------------------------------------------------------- the whole


@dataclass(frozen=True)
class PageStack:
    """What the page bench needs of a running stack."""

    url: str  # the gateway
    database_url: str  # the stack's database, as its owner
    sslmode: str | None
    db: asyncpg.Pool
    gazetteer: Gazetteer
    feed: Feed  # sends `count` intakes at `rate` a second
    cpu: CpuSeconds  # CPU seconds each of the stack's processes has used so far


async def measure(
    stack: PageStack, *, clients: int, seconds: float, rate: float, loads: int
) -> dict[str, Any]:
    """Live latency to `clients` open pages, then (the read model topped up to a busy
    day's) the first load over HTTP and in chromium."""
    tokens = await sign_in(
        stack.url, stack.database_url, sessions=clients + 1, sslmode=stack.sslmode
    )
    live_figures = await live(stack, tokens[:clients], rate=rate, seconds=seconds)
    async with stack.db.acquire() as conn:
        seeded = await top_up(
            conn, stack.gazetteer, open_incidents=OPEN_INCIDENTS, units=UNITS, now=datetime.now(UTC)
        )
    http = await first_loads_http(stack.url, tokens[-1], runs=loads)
    browser = await first_loads_chromium(
        stack.url, tokens[-1], runs=loads, dots=http["board"]["dots"]
    )
    return {"live": live_figures, "read_model": seeded, "first_load": http, "chromium": browser}


def page_rows(p: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The page's figures, for people (none in results from before they existed)."""
    if not p:
        return []

    def lat(d: dict[str, Any]) -> str:
        return f"p50 {d['p50']} / p95 {d['p95']} / p99 {d['p99']} ms (n={d['n']})"

    live_, model, http, browser = p["live"], p["read_model"], p["first_load"], p["chromium"]
    board = http["board"]
    rows: list[tuple[str, Any]] = [
        (
            f"read model -> `changed` on {live_['clients']} open pages @{live_['rate_eps']:g}/s",
            lat(live_["changed_ms"]),
        ),
        ("  -> the page's board lists it", lat(live_["on_page_ms"])),
        (
            "  missed / errors / board fetches",
            f"{live_['missed']} / {live_['errors']} / {live_['board_fetches']} of "
            f"{live_['board_bytes'] // 1024} KiB at most (poll every {live_['poll_ms']} ms; "
            f"gateway {live_['cores_used'].get('gateway')} cores)",
        ),
        (
            f"first load, {model['open_incidents']} open incidents, {model['units']} units",
            f"p50 {http['total_ms']['p50']} / p95 {http['total_ms']['p95']} ms "
            f"(HTTP, {http['runs']} runs, sequential)",
        ),
        (
            "  board on it",
            f"{board['incidents']} incidents ({board['dots']} on the map), {board['units']} "
            f"units, {board['work_orders']} work orders, {board['size'] // 1024} KiB; "
            f"GET /centre/board p50 {http['by_path']['/centre/board']['p50_ms']} ms",
        ),
    ]
    if "skipped" in browser:
        rows.append(("  in chromium", f"not measured: {browser['skipped']}"))
    else:
        shown = browser["map_shown_ms"]
        rows.append(
            (
                "  in chromium, until the map shows them",
                f"p50 {shown['p50']} / p95 {shown['p95']} ms ({browser['runs']} runs; "
                f"DOMContentLoaded p50 {browser['dom_content_loaded_ms']['p50']} ms)",
            )
        )
    return rows
