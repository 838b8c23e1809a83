"""A server's body, decoded under a limit: the one place compressed answers are inflated.

httpx's own decoders inflate a chunk whole and apply every layer a server lists
(`Content-Encoding: gzip, gzip`): 3.5 KB became 2 MB and then 2 GB in one call on the event
loop, before any size cap saw a byte. Steward asks for answers uncompressed; a server that
gzips or deflates anyway is inflated here, never more than the limit out of one chunk; stacked
or other encodings are refused, and so are bytes after a compressed body's end. Web pages,
feeds, Slack downloads and remote MCP servers all read through this.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

__all__ = ["ACCEPT_ENCODING", "BodyRefused", "BodyTooLarge", "CappedDecoder", "read_capped"]

ACCEPT_ENCODING = "identity"
"""What Steward asks servers for (the `Accept-Encoding` header)."""

_INFLATED = ("gzip", "x-gzip", "deflate")


class BodyRefused(Exception):
    """The body cannot be read within the limit; the message says why, in a sentence."""


class BodyTooLarge(BodyRefused):
    """More than the limit, once decoded."""


class CappedDecoder:
    """Decodes one body chunk by chunk. `feed(raw, room)` never inflates more than `room`
    bytes out of one chunk (`BodyTooLarge` when it holds more); an uncompressed chunk is
    returned as it came, for the caller to count."""

    def __init__(self, content_encoding: str | None) -> None:
        encoding = (content_encoding or "identity").strip().lower() or "identity"
        if encoding != "identity" and encoding not in _INFLATED:
            raise BodyRefused(  # the server's words stay out of Steward's messages
                "the server sent it encoded in a way that cannot be limited "
                "(only gzip or deflate, once, is read)"
            )
        # gzip or zlib-wrapped deflate, told apart by their header
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding != "identity" else None

    def feed(self, raw: bytes, room: int) -> bytes:
        inflater = self._inflater
        if inflater is None:
            return raw
        if inflater.eof and raw:
            raise BodyRefused("the server sent more after its compressed body ended")
        try:
            chunk = inflater.decompress(raw, room + 1)
        except zlib.error:
            raise BodyRefused("the server's compressed body is broken") from None
        if inflater.unused_data:
            raise BodyRefused("the server sent more after its compressed body ended")
        if len(chunk) > room or inflater.unconsumed_tail:
            raise BodyTooLarge("more than the limit")
        return chunk


async def read_capped(raw: AsyncIterator[bytes], content_encoding: str | None, limit: int) -> bytes:
    """A whole body of at most `limit` bytes once decoded, from its raw bytes (httpx's
    `response.aiter_raw()`) and its `Content-Encoding`."""
    decoder = CappedDecoder(content_encoding)
    body = bytearray()
    async for chunk in raw:
        body += decoder.feed(chunk, limit - len(body))
        if len(body) > limit:
            raise BodyTooLarge("more than the limit")
    return bytes(body)
