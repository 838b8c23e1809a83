"""A cheaper idle-connection probe for the model client's connection pool (httpx2/httpcore2).

The pool asks every idle connection whether the server closed it each time a request starts or
ends. httpcore answers through anyio's socket attributes, rebuilt at every ask (a getpeername(2)
and a dozen lambdas, ~5 us): after a burst of 200 chats left 200 connections idle, that was ~4 ms
of the event loop per model call. The streams here keep their socket and answer with one
poll(2), which is what httpcore does underneath. This reaches into private attributes
(`_transport._pool._network_backend`): if they move, nothing is installed and
tests/test_model_request.py says so.
"""

from __future__ import annotations

import select
from typing import Any

__all__ = ["probe_cheaply"]


def probe_cheaply(http: Any) -> None:
    """Have the connection pool ask whether an idle connection was closed by the server with
    one poll(2) on its socket. The pool asks it of every idle connection each time a request
    starts or ends; httpcore's own probe first builds all of anyio's socket attributes (a
    getpeername(2) and a dozen lambdas), about 5 us, so after a burst of chats has left 200
    connections idle it cost some 4 ms of the loop per call. Left as it is if httpx's insides
    are not where this expects them."""
    pool = getattr(getattr(http, "_transport", None), "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None or isinstance(backend, _ProbingBackend) or not hasattr(select, "poll"):
        return
    pool._network_backend = _ProbingBackend(backend)


class _ProbingBackend:
    """httpcore's network backend, its streams wrapped in `_ProbingStream`."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> Any:
        return _ProbingStream(await self._backend.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        return _ProbingStream(await self._backend.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _ProbingStream:
    """A network stream whose `is_readable` polls the socket it keeps, as httpcore's does
    (`httpcore._utils.is_socket_readable`), without asking anyio for it each time."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._socket = stream.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        data: bytes = await self._stream.read(max_bytes, timeout)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> Any:
        return _ProbingStream(await self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        if info != "is_readable" or self._socket is None:
            return self._stream.get_extra_info(info)
        fd = self._socket.fileno()
        if fd < 0:  # closed: the next read would give b""
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
