"""The embedder's cumulative CPU counter, as `make bench` reads it: GET /metrics on Steward's
HTTP server (loopback only) rises after an embed."""

from __future__ import annotations

import asyncio

import aiohttp

from bot.http import HttpServer
from memory.embed_stats import EMBED_STATS
from memory.onnx_minilm import OnnxMiniLMEmbedder


async def metrics(url: str) -> dict:
    async with aiohttp.ClientSession() as client, client.get(f"{url}/metrics") as response:
        assert response.status == 200
        return (await response.json())["embedder"]


async def test_metrics_report_the_embedders_calls_and_cpu_seconds() -> None:
    server = HttpServer("127.0.0.1", 0)
    await server.start()
    try:
        embedder = await asyncio.to_thread(OnnxMiniLMEmbedder.load, variant="int8")
        before = await metrics(server.url)
        assert set(before) >= {"calls", "texts", "cpu_s", "loads", "releases", "variant"}
        await asyncio.to_thread(embedder.embed, ["the boiler needs a service", "tea, not coffee"])
        after = await metrics(server.url)
        assert after["calls"] == before["calls"] + 1
        assert after["texts"] == before["texts"] + 2
        assert after["cpu_s"] > before["cpu_s"]
        assert after["variant"] == "int8"
        assert after == EMBED_STATS.snapshot()
    finally:
        await server.stop()


async def test_metrics_are_not_served_through_a_reverse_proxy() -> None:
    """A proxy on the same machine connects from loopback; what it forwards is someone else's
    request, and says so in a forwarding header."""
    server = HttpServer("127.0.0.1", 0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as client:
            for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
                value = "for=203.0.113.7" if header == "Forwarded" else "203.0.113.7"
                async with client.get(f"{server.url}/metrics", headers={header: value}) as r:
                    assert r.status == 404, header
            async with client.get(f"{server.url}/metrics") as r:
                assert r.status == 200
    finally:
        await server.stop()
