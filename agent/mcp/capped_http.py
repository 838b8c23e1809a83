"""A limit on what a remote MCP server may send in one message.

The SDK reads a JSON answer whole and an event stream line by line, with no limit, and a
call's timeout ends Steward's wait but not the transport's read: a server streaming an endless
answer took Steward from 122 to 566 MiB, still growing after the turn had ended. Wrapped in
this transport, a JSON body past the limit, or an event-stream line past it, ends the response
with a transport error (the connection is dropped and set up again). The limit counts what
the answer is once decoded: Steward asks for answers uncompressed, and a server that gzips or
deflates anyway is decoded here, counting (8 MiB of gzip decode to 8 GiB); another encoding is
refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2

from agent.capped_decode import ACCEPT_ENCODING, BodyRefused, BodyTooLarge, CappedDecoder

__all__ = ["MESSAGE_LIMIT", "CappedTransport", "TooLarge"]

MESSAGE_LIMIT = 8 * 1024 * 1024
"""Bytes in one JSON answer or one event-stream line (a tool's output is cut far below)."""


class TooLarge(httpx2.ReadError):
    """A response (or one line of an event stream) went past the limit."""


class CappedTransport(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx2.AsyncBaseTransport, limit: int = MESSAGE_LIMIT) -> None:
        self._inner = inner
        self._limit = limit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["Accept-Encoding"] = ACCEPT_ENCODING
        response = await self._inner.handle_async_request(request)
        events = response.headers.get("content-type", "").startswith("text/event-stream")
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        try:
            decoder = CappedDecoder(response.headers.get("content-encoding"))
        except BodyRefused as exc:
            await response.aclose()
            raise TooLarge(str(exc), request=request) from None
        headers = httpx2.Headers(
            [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        )
        return httpx2.Response(
            status_code=response.status_code,
            headers=headers,
            stream=_Capped(
                response.stream,
                self._limit,
                per_line=events,
                request=request,
                decoder=decoder,
            ),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Capped(httpx2.AsyncByteStream):
    def __init__(
        self,
        inner: httpx2.AsyncByteStream,
        limit: int,
        *,
        per_line: bool,
        request: httpx2.Request,
        decoder: CappedDecoder,
    ) -> None:
        self._inner = inner
        self._limit = limit
        self._per_line = per_line
        self._request = request
        self._decoder = decoder

    async def __aiter__(self) -> AsyncIterator[bytes]:
        run = 0  # bytes of the body, or since the last line end of an event stream
        async for raw in self._inner:
            try:  # never more out of one chunk than the limit (a zip bomb stops here)
                chunk = self._decoder.feed(raw, self._limit)
            except BodyTooLarge:
                chunk = None
            except BodyRefused as exc:
                await self._inner.aclose()  # bytes after the end: never read on, or kept
                raise TooLarge(str(exc), request=self._request) from None
            if chunk is not None:
                end = chunk.rfind(b"\n") if self._per_line else -1
                run = len(chunk) - end - 1 if end >= 0 else run + len(chunk)
            if chunk is None or run > self._limit:
                await self._inner.aclose()
                raise TooLarge(
                    f"the server sent more than {self._limit:,} bytes in one message",
                    request=self._request,
                )
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()
