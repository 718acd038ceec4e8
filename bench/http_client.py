"""HTTP/1.1 for the page bench on raw asyncio streams: requests on a keep-alive connection,
answers read whole (by length or chunk by chunk), and server-sent events read as they come.
Cheap on CPU, so fifty open pages cost the bench little beside the gateway it measures."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit


class BadAnswer(RuntimeError):
    """An answer the bench cannot read (or one it did not expect)."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers (lower-case names), cookies it sets, and body."""

    status: int
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes


def parse_head(head: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    """Status, headers and the cookies set, of an answer's head (status line and headers)."""
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise BadAnswer(f"not an HTTP status line: {lines[0][:80]!r}") from None
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "set-cookie":
            cookie, _, _ = value.partition(";")
            key, _, cookie_value = cookie.partition("=")
            cookies[key.strip()] = cookie_value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return status, headers, cookies


async def read_chunk(reader: asyncio.StreamReader) -> bytes:
    """The next chunk of a chunked body; b"" for the last (its trailer read too)."""
    size_line = await reader.readuntil(b"\r\n")
    try:
        size = int(size_line.split(b";", 1)[0].strip(), 16)
    except ValueError:
        raise BadAnswer(f"not a chunk size: {size_line[:40]!r}") from None
    if size == 0:
        while await reader.readuntil(b"\r\n") != b"\r\n":
            pass  # trailer fields, which nothing here sends
        return b""
    data = await reader.readexactly(size + 2)
    return data[:-2]


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict[str, str]]:
    """The head of the next answer."""
    return parse_head(await reader.readuntil(b"\r\n\r\n"))


async def read_answer(reader: asyncio.StreamReader, *, method: str = "GET") -> Answer:
    """A whole answer, its body read by its length or chunk by chunk."""
    status, headers, cookies = await read_head(reader)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Answer(status, headers, cookies, b"")
    if "chunked" in headers.get("transfer-encoding", ""):
        parts = []
        while chunk := await read_chunk(reader):
            parts.append(chunk)
        return Answer(status, headers, cookies, b"".join(parts))
    length = int(headers.get("content-length", "0"))
    return Answer(status, headers, cookies, await reader.readexactly(length) if length else b"")


def request_bytes(
    method: str, host: str, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    """A request as it goes on the wire."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection to a server; requests one at a time."""

    def __init__(self, url: str) -> None:
        where = urlsplit(url)
        self.host, self.port = where.hostname or "127.0.0.1", where.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        """Connect (again)."""
        await self.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def send(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        """Write a request (connecting first if not connected)."""
        if self.writer is None:
            await self.open()
        assert self.writer is not None
        self.writer.write(request_bytes(method, f"{self.host}:{self.port}", path, headers, body))
        await self.writer.drain()

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Answer:
        """Send a request and read its whole answer."""
        await self.send(method, path, headers or {}, body)
        assert self.reader is not None
        answer = await read_answer(self.reader, method=method)
        if answer.headers.get("connection", "").lower() == "close":
            await self.close()
        return answer

    async def close(self) -> None:
        """Close the connection, if open."""
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event: its name ("message" unless named) and its data."""

    name: str
    data: str


class SseParser:
    """Server-sent events out of a `text/event-stream` body fed piece by piece (pieces may
    split a line, a CRLF or a UTF-8 character anywhere); comments, `id` and `retry` are
    read and left."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._name = ""
        self._data: list[str] = []

    def feed(self, piece: bytes) -> list[SseEvent]:
        """The events completed by this piece of the stream."""
        self._buffer += self._decoder.decode(piece)
        events: list[SseEvent] = []
        while True:
            cut = min(
                (i for i in (self._buffer.find("\r"), self._buffer.find("\n")) if i >= 0),
                default=-1,
            )
            if cut < 0:
                return events
            end = cut + 1
            if self._buffer[cut] == "\r":
                if end == len(self._buffer):
                    return events  # a CR at the end: its LF may be in the next piece
                if self._buffer[end] == "\n":
                    end += 1
            line, self._buffer = self._buffer[:cut], self._buffer[end:]
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> SseEvent | None:
        if not line:  # a blank line ends an event; one without data is dropped
            event = SseEvent(self._name or "message", "\n".join(self._data)) if self._data else None
            self._name, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
        return None
