"""A transport that knows whether its link ended (split from `connection.py`).

The SDK answers a call whose link dropped with an `MCPError` of code -32000, the very code a
server's own "Server error" answer may carry (review 73: a server's quota error read as a
crash). Wrapping the transport's streams tells the two apart by what happened on the wire.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import anyio

__all__ = ["Wire"]


class Wire:
    """A transport (the SDK's `Transport`: an async context manager of a read and a write
    stream) that notes when its link ended: the read stream ran out or was closed, or a write
    found the stream broken. That is the SDK's CONNECTION_CLOSED, told apart from a server's
    own -32000 answer."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.closed = False

    async def __aenter__(self) -> tuple[_Reading, _Writing]:
        read, write = await self._transport.__aenter__()
        return _Reading(read, self), _Writing(write, self)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self.closed = True
        result: bool | None = await self._transport.__aexit__(exc_type, exc, tb)
        return result


_ENDED = (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError)


class _Reading:
    """The transport's read stream (the SDK's `ReadStream`), noting its end on the wire."""

    def __init__(self, inner: Any, wire: Wire) -> None:
        self._inner = inner
        self._wire = wire

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except _ENDED:
            self._wire.closed = True
            raise

    def __aiter__(self) -> _Reading:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._wire.closed = True
        await self._inner.aclose()

    async def __aenter__(self) -> _Reading:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        self._wire.closed = True
        result: bool | None = await self._inner.__aexit__(*exc_info)
        return result


class _Writing:
    """The transport's write stream (the SDK's `WriteStream`), noting a broken one."""

    def __init__(self, inner: Any, wire: Wire) -> None:
        self._inner = inner
        self._wire = wire

    async def send(self, item: Any, /) -> None:
        try:
            await self._inner.send(item)
        except _ENDED:
            self._wire.closed = True
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _Writing:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        result: bool | None = await self._inner.__aexit__(*exc_info)
        return result
