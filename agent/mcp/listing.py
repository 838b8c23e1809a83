"""A server's tool listing, read within limits and fingerprinted tool by tool.

Every page of `tools/list` is parsed on the event loop by the SDK, and a server may page on
for ever: the listing stops at MAX_PAGES pages, MAX_LISTED tools or MAX_LISTING_BYTES of tool
definitions, whichever comes first, and says so (`Listing.cut`). Each tool carries a digest of
what the server listed, so a listing that changed in one tool rebuilds only that tool
(`catalog.py`) and an unchanged one is recognised without comparing every schema.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import mcp.types as mt
from mcp import Client

__all__ = [
    "MAX_LISTED",
    "MAX_LISTING_BYTES",
    "MAX_PAGES",
    "Listing",
    "ListingRefused",
    "read_listing",
]

MAX_PAGES = 10
MAX_LISTED = 1_000
"""Tools read from one server's listing; past it no page is asked for (only the first
`catalog.TOOLS_PER_SERVER` are offered anyway: the rest are counted as not offered)."""
MAX_LISTING_BYTES = 16 * 1024 * 1024
"""Bytes of tool definitions (as JSON) read from one listing."""


class ListingRefused(Exception):
    """A page listing more tools than Steward reads in all: the SDK had to parse all of it on
    the event loop (150,000 tools in 8 MB held every chat ~4 s, at each refresh: review 117),
    so the server is treated as misbehaving, not read again and again."""


@dataclass(frozen=True)
class Listing:
    """The server's tools as last listed, each with the digest of its definition."""

    tools: tuple[mt.Tool, ...] = field(default=(), compare=False)
    digests: tuple[str, ...] = ()
    cut: str = ""
    """Why the listing was not read to its end ("" when it was)."""


def digest(tool: mt.Tool) -> tuple[str, int]:
    """A tool's fingerprint and its size as JSON."""
    raw = tool.model_dump_json(by_alias=True, exclude_none=True).encode()
    return hashlib.sha256(raw).hexdigest(), len(raw)


async def read_listing(client: Client, max_bytes: int = MAX_LISTING_BYTES) -> Listing:
    """Every page of the server's tools, within the limits above (`max_bytes`: the bytes of
    tool definitions, MAX_LISTING_BYTES but for a test)."""
    tools: list[mt.Tool] = []
    digests: list[str] = []
    size = 0
    cursor: str | None = None
    cut = ""
    for page_number in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor, cache_mode="refresh")
        if len(page.tools) > MAX_LISTED:
            raise ListingRefused(
                f"it listed {len(page.tools):,} tools in one page (at most {MAX_LISTED:,} are read)"
            )
        taken = 0
        for tool in page.tools:
            if len(tools) >= MAX_LISTED or size > max_bytes:
                break
            fingerprint, length = digest(tool)
            size += length
            tools.append(tool)
            digests.append(fingerprint)
            taken += 1
        cursor = page.next_cursor
        more = cursor is not None or taken < len(page.tools)
        if more and len(tools) >= MAX_LISTED:
            cut = f"its listing was read up to {MAX_LISTED:,} tools"
        elif more and size > max_bytes:
            cut = f"its listing was read up to {max_bytes:,} bytes of tools"
        elif more and page_number == MAX_PAGES - 1:
            cut = f"its listing was read up to {MAX_PAGES} pages"
        if cut or cursor is None:
            break
    return Listing(tuple(tools), tuple(digests), cut)
