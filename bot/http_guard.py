"""Connections to the HTTP server that cannot take Steward down (review 79).

aiohttp's server waits for a request's headers and body as long as the peer likes and takes
every connection offered: 1,100 idle connections from any local process used up the process's
1,024 file descriptors, and the owner's next message failed ("Too many open files"), the audit
log with it, for as long as they were held. Now:
- at most `cap` connections are open; one more is closed at once;
- a connection with no request being handled for `idle` seconds is closed: one that never
  finishes its headers, and a kept-alive one left unused (a browser opens another);
- a request with a body gets `body_timeout` seconds in all (a form, an upload, a webhook's
  update), so a body sent a byte at a time is answered 408 and its connection closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = ["ConnectionGuard", "GuardedSite"]

CAP = 256
IDLE = 10.0
BODY_TIMEOUT = 60.0
_CLOSE_AFTER_LATE = 0.2
"""Seconds from a 408's handler returning to the close: aiohttp writes the answer meanwhile
(the close then sends what was written), instead of reading the rest of the body first."""


class ConnectionGuard:
    def __init__(
        self, *, cap: int = CAP, idle: float = IDLE, body_timeout: float = BODY_TIMEOUT
    ) -> None:
        self.cap = cap
        self.idle = idle
        self.body_timeout = body_timeout
        self.refused = 0  # connections closed at once, over the cap
        self._open: dict[asyncio.BaseTransport, _Guarded] = {}

    @property
    def open(self) -> int:
        return len(self._open)

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guarded(self, inner())

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        guarded = self._open.get(request.transport) if request.transport else None
        if guarded is not None:
            guarded.busy += 1
            guarded.disarm()
        after = self.idle
        try:
            if not request.body_exists:
                return await handler(request)
            try:
                async with asyncio.timeout(self.body_timeout):
                    return await handler(request)
            except TimeoutError:
                late = web.Response(status=408, text="The request took too long to arrive.")
                late.force_close()
                after = _CLOSE_AFTER_LATE  # once the answer is out: the rest is not waited for
                return late
        finally:
            if guarded is not None:
                guarded.busy -= 1
                if guarded.busy == 0:
                    guarded.arm(after)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the guard's count and idle timer around it."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.busy = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self._guard._open) >= self._guard.cap:
            self._guard.refused += 1
            transport.abort()
            return
        self._transport = transport
        self._guard._open[transport] = self
        self._inner.connection_made(transport)
        self.arm()

    def arm(self, after: float | None = None) -> None:
        self.disarm()
        if self._transport is not None:
            loop = asyncio.get_running_loop()
            wait = self._guard.idle if after is None else after
            self._timer = loop.call_later(wait, self._idle)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle(self) -> None:
        self._timer = None
        if self.busy == 0 and self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._transport is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return
        self.disarm()
        self._guard._open.pop(self._transport, None)
        self._transport = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.TCPSite):
    """aiohttp's TCP site, its connections made through the guard."""

    __slots__ = ("_guard",)

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard):
        super().__init__(runner, host, port)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server: Any = self._runner.server
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.factory(server), self._host, self._port, backlog=self._backlog
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
