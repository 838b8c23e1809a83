"""Connections to the HTTP server that cannot take Steward down (review 79).

aiohttp's server waits for a request's headers and body as long as the peer likes and takes
every connection offered: 1,100 idle connections from any local process used up the process's
1,024 file descriptors, and the owner's next message failed ("Too many open files"), the audit
log with it, for as long as they were held. Now:
- at most `cap` connections are open; one more is closed at once;
- a connection with no request being handled for `idle` seconds is closed: one that never
  finishes its headers, and a kept-alive one left unused (a browser opens another);
- a request's body must have arrived `body_timeout` seconds after its headers (a form, an
  upload, a webhook's update), or its connection is cut: one sent a byte at a time holds
  nothing for long. The handler's own work is not timed.
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
_GRACE = 2.0
"""Seconds a closed connection gets to go; then it is aborted."""


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
            guarded.unsent = None
        late = None
        if request.body_exists:  # the body must have arrived by then; the work may take long
            late = asyncio.get_running_loop().call_later(self.body_timeout, _body_late, request)
        try:
            return await handler(request)
        finally:
            if late is not None:
                late.cancel()
            if guarded is not None:
                guarded.busy -= 1
                if guarded.busy == 0:
                    guarded.arm()


def _body_late(request: web.Request) -> None:
    """A body still arriving `body_timeout` after its headers: the connection is cut (the
    handler reading it gets an error); one fully received is left to its handler, however
    long that takes (an approval runs its action and resumes the turn: review 82)."""
    if not request.content.is_eof() and request.transport is not None:
        request.transport.abort()


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the guard's count and idle timer around it."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.unsent: int | None = None  # bytes still to send at the last idle check
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

    def arm(self) -> None:
        self.disarm()
        if self._transport is not None:
            self._timer = asyncio.get_running_loop().call_later(self._guard.idle, self._idle)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle(self) -> None:
        """Close an idle connection. `close()` first sends what is still buffered, so a peer
        that reads nothing (a zero window) would keep it for ever (review 82): an answer
        still unsent is given another idle period only while the peer is taking it."""
        self._timer = None
        transport = self._transport
        if self.busy or transport is None:
            return
        unsent = transport.get_write_buffer_size()  # type: ignore[attr-defined]
        if unsent == 0:
            transport.close()
            self._timer = asyncio.get_running_loop().call_later(_GRACE, transport.abort)
        elif self.unsent is not None and unsent >= self.unsent:
            transport.abort()  # nothing taken for a whole idle period
        else:
            self.unsent = unsent
            self.arm()

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
