"""A transport that knows whether its link ended (split from `connection.py`).

The SDK answers a call whose link dropped with an `MCPError` of code -32000, the very code a
server's own "Server error" answer may carry (review 73: a server's quota error read as a
crash). Wrapping the transport's streams tells the two apart by what happened on the wire.

It also bounds the server's own requests. Steward takes none (no sampling, elicitation or
roots: the SDK answers a ping, and "method not found" to the rest), but the SDK starts a task
for each one it reads, and over HTTP its answers go out one POST at a time: a server that held
the first answer's POST kept every later request, and its task, alive (review 99: 600 pings
of 256 KB held 160-200 MiB and 602 tasks after the call had timed out, the link still up).
More than `SERVER_REQUESTS` of them waiting for their answers is a misbehaving server: the
read stream ends there (the SDK sees the link close, a call in flight fails) and the link is
told, which drops the connection, logs it and tells the owner as for a server that died.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio
from mcp.shared.dispatcher import as_request_id, coerce_request_id
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

__all__ = ["SERVER_REQUESTS", "Wire"]

SERVER_REQUESTS = 16
"""The server's requests that may wait for their answers at once (a ping is answered at once:
a server that sends more is not waiting for them)."""


class Wire:
    """A transport (the SDK's `Transport`: an async context manager of a read and a write
    stream) that notes when its link ended: the read stream ran out or was closed, or a write
    found the stream broken. That is the SDK's CONNECTION_CLOSED, told apart from a server's
    own -32000 answer. `on_misbehaving` is called once, with Steward's words for it, when the
    server sent more than `limit` requests that wait for their answers; `on_end` when the read
    stream ends (R250: the SDK reads it all the time, and says nothing of its end but to a
    request then waiting, so a stdio server's exit waited for the next health listing)."""

    def __init__(
        self,
        transport: Any,
        on_misbehaving: Callable[[str], None] | None = None,
        limit: int = SERVER_REQUESTS,
        on_end: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._transport = transport
        self._on_misbehaving = on_misbehaving
        self._on_end = on_end
        self._limit = limit
        self.closed = False
        self.problem: str | None = None
        """Why Steward ended the link (Steward's words), None while it has not."""
        self.answering: Counter[Any] = Counter()
        """The server's requests read and not yet answered, by id."""
        self._writing: Counter[Any] = Counter()
        """Of those, the ones whose answer is being written (a held POST blocks it)."""

    def read(self, item: Any) -> None:
        """Note one item read from the server; EndOfStream when it was one request too many."""
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, JSONRPCRequest):
            if self.answering.total() >= self._limit:
                self.problem = (
                    f"it sent more than {self._limit} requests at once without waiting for "
                    "their answers, and the connection was dropped"
                )
                self.closed = True
                if self._on_misbehaving is not None:
                    self._on_misbehaving(self.problem)
                raise anyio.EndOfStream
            self.answering[coerce_request_id(message.id)] += 1
        elif (
            isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled"
        ):
            # a request its server cancelled is never answered (the SDK keeps to the spec),
            # unless its answer is being written already: that one still holds its task until
            # the write ends (R102: a cancel after each ping kept 300 tasks past the limit)
            cancelled = as_request_id((message.params or {}).get("requestId"))
            if cancelled is not None and not self._writing[coerce_request_id(cancelled)]:
                self._answered(cancelled)

    def writing(self, item: Any) -> None:
        """Note an item about to be written to the server: an answer's write has begun."""
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            self._writing[coerce_request_id(message.id)] += 1

    def wrote(self, item: Any) -> None:
        """Note one item written to the server (or given up on): an answer ends its request."""
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            key = coerce_request_id(message.id)
            if self._writing[key] > 1:
                self._writing[key] -= 1
            else:
                self._writing.pop(key, None)
            self._answered(message.id)

    def ended(self, exc: BaseException) -> None:
        """The read stream ended (the server exited, the link broke)."""
        self.closed = True
        if self._on_end is not None:
            self._on_end(exc)

    def _answered(self, request_id: Any) -> None:
        key = coerce_request_id(request_id)
        if self.answering[key] > 1:
            self.answering[key] -= 1
        else:
            self.answering.pop(key, None)

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
        if self._wire.problem is not None:
            raise anyio.EndOfStream
        try:
            item = await self._inner.receive()
        except _ENDED as exc:
            self._wire.ended(exc)
            raise
        try:
            self._wire.read(item)
        except anyio.EndOfStream:
            await self._inner.aclose()  # what the server sends after it is not read
            raise
        return item

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
        self._wire.writing(item)
        try:
            await self._inner.send(item)
        except _ENDED:
            self._wire.closed = True
            raise
        finally:
            self._wire.wrote(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _Writing:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        result: bool | None = await self._inner.__aexit__(*exc_info)
        return result
