"""The HTTP server cannot be held by connections that send nothing, or send slowly (review 79:
1,100 idle connections from a local process used up Steward's file descriptors and the owner's
next message failed). Real sockets against the real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import subprocess
import sys

import uvloop
from aiohttp import web

from bot.http import HttpServer
from bot.http_guard import ConnectionGuard


async def _server(**guard: float) -> HttpServer:
    server = HttpServer("127.0.0.1", 0)
    server.guard = ConnectionGuard(**guard)  # type: ignore[arg-type]
    await server.start()
    return server


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed the connection; fails if it stays open."""
    async with asyncio.timeout(seconds):
        return await reader.read()


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(5):
        data = await reader.read()
    writer.close()
    return data


async def test_connections_that_send_nothing_or_half_a_request_are_closed() -> None:
    server = await _server(idle=0.5)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        silent = await asyncio.open_connection("127.0.0.1", port)
        half = await asyncio.open_connection("127.0.0.1", port)
        half[1].write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        kept = await asyncio.open_connection("127.0.0.1", port)  # a kept-alive one, then unused
        kept[1].write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert await _closed_within(silent[0], 3) == b""
        assert await _closed_within(half[0], 3) == b""
        answered = await _closed_within(kept[0], 3)
        assert answered.startswith(b"HTTP/1.1 200") and b'"ok": true' in answered
        assert server.guard.open == 0
        for _, writer in (silent, half, kept):
            writer.close()
    finally:
        await server.stop()


async def test_a_body_sent_slowly_is_cut_off_but_a_handlers_own_work_is_not_timed() -> None:
    """Review 82: the first version timed the whole handler, and an approval pressed in the
    console (its action runs, then its turn resumes, inside the request) was cancelled at 60 s
    and left "executing"."""
    server = await _server(idle=5, body_timeout=0.5)

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(1.5)  # longer than body_timeout: work after the body arrived
        return web.Response(body=body)

    server.mount("/echo", echo)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nx")
        assert await _closed_within(reader, 4) == b""  # cut, never answered
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # whole: answered
        writer.write(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nok")
        async with asyncio.timeout(4):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"ok"
        writer.close()
    finally:
        await server.stop()


def _never_reads(port: int, requests: int = 20000) -> socket.socket:
    """A peer with a tiny receive window that pipelines requests and reads no answer."""
    peer = socket.socket()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    peer.connect(("127.0.0.1", port))
    peer.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        peer.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * requests)
    return peer


async def _peers_that_never_read_are_let_go() -> None:
    server = await _server(cap=4, idle=0.5)
    port = int(server.url.rsplit(":", 1)[1])
    held = [await asyncio.to_thread(_never_reads, port) for _ in range(4)]
    try:
        for _ in range(150):  # the pipelined requests answered until the buffers fill, then
            # two idle periods without progress each, at most
            if server.guard.open == 0:
                break
            await asyncio.sleep(0.1)
        assert server.guard.open == 0, "answers no one reads held the connections"
        assert (await _get(port)).startswith(b"HTTP/1.1 200")
    finally:
        for peer in held:
            peer.close()
        await server.stop()


async def test_peers_that_never_read_their_answers_do_not_hold_the_port() -> None:
    """Review 82: closing waited for the answers to be sent, which a zero window never
    allows: 256 such peers held every place for ever."""
    await _peers_that_never_read_are_let_go()


def test_peers_that_never_read_do_not_hold_the_port_on_uvloop() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as `steward run`
        runner.run(_peers_that_never_read_are_let_go())


async def test_past_the_cap_a_connection_is_refused_and_the_others_still_answer() -> None:
    server = await _server(cap=4, idle=30)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        await asyncio.sleep(0.1)
        extra = await asyncio.open_connection("127.0.0.1", port)
        assert await _closed_within(extra[0], 3) == b""
        assert server.guard.refused >= 1 and server.guard.open == 4
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.2)
        assert (await _get(port)).startswith(b"HTTP/1.1 200")
    finally:
        await server.stop()


def test_steward_run_raises_its_open_files_limit_to_the_hard_one() -> None:
    """With systemd's default soft limit of 1,024, a few hundred sockets were enough."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    code = (
        f"import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard}));"
        "from bot.open_files import raise_open_files_limit; raise_open_files_limit();"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert int(out) == (hard if hard != resource.RLIM_INFINITY else 1 << 20)
