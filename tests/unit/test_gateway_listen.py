"""The gateway's listening socket: its connections answer without Nagle's delay."""

from __future__ import annotations

import asyncio
import socket

from services.gateway.bootstrap import _listen


async def test_the_gateways_connections_send_small_answers_at_once() -> None:
    # asyncio sets TCP_NODELAY only on connections of a socket that names IPPROTO_TCP;
    # without it a small body after its head waited 40 ms for the client's delayed ACK.
    sock = _listen("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def connected(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = writer.get_extra_info("socket")
        accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(connected, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(accepted, 5) == 1
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
