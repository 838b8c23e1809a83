"""Compressed answers are inflated under the size cap (agent/capped_decode.py).

A few KB sent as `Content-Encoding: gzip, gzip` were inflated by httpx one whole layer at a
time, on the event loop, before web_fetch's or the feed fetcher's cap saw a byte (a 7 KB body
with a 1 MB cap peaked at 440 MiB). A loopback aiohttp server sends the bombs; the memory the
fetch allocates is traced.
"""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from agent.capped_decode import BodyRefused, BodyTooLarge, CappedDecoder, read_capped
from agent.sandbox import Sandbox
from agent.scheduler.feeds import FeedFetcher
from agent.tools.registry import ToolContext, ToolDeps
from agent.tools.web import WEB_TOOLS
from memory.clock import SystemClock
from memory.feeds import Feed
from memory.people import User
from memory.stores import Stores

pytestmark = pytest.mark.usefixtures("loopback_only")

INFLATED = 64 * 2**20
CAP = 1_000_000
PEAK = 16 * 2**20  # what a fetch with a 1 MB cap may allocate, at most


def _gzip_of_zeros(size: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join(z.compress(block) for _ in range(size >> 20)) + z.flush()


BOMB = _gzip_of_zeros(INFLATED)  # ~64 KB
DOUBLE_BOMB = gzip.compress(BOMB, 9)  # a few KB
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Roofing news</title>'
    b"<item><title>Gutters in winter</title><link>http://127.0.0.1/a</link></item>"
    b"</channel></rss>"
)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[str]]]:
    asked: list[str] = []
    answers: dict[str, tuple[bytes, str, str]] = {
        "/double": (DOUBLE_BOMB, "gzip, gzip", "text/plain"),
        "/single": (BOMB, "gzip", "text/plain"),
        "/page": (
            gzip.compress(b"<html><body><p>Gutters need care</p></body></html>"),
            "gzip",
            "text/html",
        ),
        "/feed": (gzip.compress(FEED), "gzip", "application/rss+xml"),
        "/trailing": (gzip.compress(b"fine") + b"and then more", "gzip", "text/plain"),
        "/brotli": (b"\x0b\x02\x80hello\x03", "br", "text/plain"),
    }

    async def answer(request: web.Request) -> web.Response:
        asked.append(request.headers.get("Accept-Encoding", ""))
        body, encoding, kind = answers[request.path]
        return web.Response(body=body, headers={"Content-Encoding": encoding, "Content-Type": kind})

    app = web.Application()
    for path in answers:
        app.router.add_get(path, answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", asked
    await runner.cleanup()


@pytest.fixture
async def fetch(tmp_path: Path) -> AsyncIterator[Callable[[str], object]]:
    stores = await Stores.open(tmp_path / "steward.db", SystemClock())
    sandbox = Sandbox(
        workspace=tmp_path / "ws", fetch_allow_hosts=frozenset({"127.0.0.1"}), fetch_max_bytes=CAP
    )
    deps = ToolDeps(stores=stores, clock=SystemClock(), timezone="UTC", sandbox=sandbox)
    owner = User(id=1, display_name="owner", is_owner=True, timezone=None, profile="")
    ctx = ToolContext(deps=deps, user=owner, chat=None, address=None, turn_id=0, tainted=False)
    [tool] = WEB_TOOLS

    async def run(url: str):  # type: ignore[no-untyped-def]
        return await tool.run(ctx, {"url": url})

    yield run
    await stores.close()


async def traced(call):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        result = await call
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("path", "says"), [("/double", "refused"), ("/single", "larger than")])
async def test_web_fetch_never_inflates_past_its_cap(
    server: tuple[str, list[str]], fetch, path: str, says: str
) -> None:
    base, asked = server
    result, peak = await traced(fetch(base + path))
    assert result.is_error and says in result.content
    assert peak < PEAK, f"peak {peak / 2**20:.0f} MiB for a 1 MB cap"
    assert asked == ["identity"]  # asks for the body uncompressed


async def test_web_fetch_still_reads_a_gzipped_page(server: tuple[str, list[str]], fetch) -> None:
    result = await fetch(server[0] + "/page")
    assert not result.is_error and "Gutters need care" in result.content


@pytest.mark.parametrize("path", ["/trailing", "/brotli"])
async def test_web_fetch_refuses_what_it_cannot_limit(
    server: tuple[str, list[str]], fetch, path: str
) -> None:
    result = await fetch(server[0] + path)
    assert result.is_error and "refused" in result.content


async def test_feeds_never_inflate_past_the_cap(server: tuple[str, list[str]]) -> None:
    base, asked = server
    fetcher = FeedFetcher(timeout=10, max_bytes=CAP, allow_hosts=frozenset({"127.0.0.1"}))
    feeds = [
        Feed(i, 1, base + path, "", None, None, None, None, None)
        for i, path in enumerate(["/double", "/single", "/feed"], 1)
    ]
    results, peak = await traced(fetcher.fetch_all(feeds))
    assert peak < PEAK, f"peak {peak / 2**20:.0f} MiB for a 1 MB cap"
    double, single, fine = results
    assert double.status == "error" and "cannot be limited" in (double.error or "")
    assert single.status == "error" and "larger than" in (single.error or "")
    assert fine.status == "ok" and [i.title for i in fine.items] == ["Gutters in winter"]
    assert set(asked) == {"identity"}


async def test_decoder_counts_what_it_inflates() -> None:
    async def chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    text = b"roof " * 50_000
    assert await read_capped(chunks(zlib.compress(text)), "deflate", len(text)) == text
    assert await read_capped(chunks(gzip.compress(text)), "GZIP ", len(text)) == text
    with pytest.raises(BodyTooLarge):
        await read_capped(chunks(gzip.compress(text)), "gzip", len(text) - 1)
    with pytest.raises(BodyTooLarge):
        await read_capped(chunks(text), None, len(text) - 1)
    for stacked in ("gzip, gzip", "gzip,identity", "br", "compress"):
        with pytest.raises(BodyRefused, match="cannot be limited"):
            CappedDecoder(stacked)
    with pytest.raises(BodyRefused, match="broken"):
        await read_capped(chunks(b"\x1f\x8b\x08\x00 not really gzip"), "gzip", 100)
