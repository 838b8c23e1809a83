"""A hop between Steward and a loopback fake (Telegram's or Slack's) that is slow once: the
first request whose path ends with a method's name has its answer held (the platform did it;
its answer is late) or is itself carried out late (a request already sent, done all the same).
What a slow platform API does that the fakes alone cannot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal, Protocol

import aiohttp
from aiohttp import web


class _Fake(Protocol):
    base_url: str


@asynccontextmanager
async def slow_hop(
    fake: _Fake, method: str, delay: float, *, late: Literal["answer", "request"] = "answer"
) -> AsyncIterator[None]:
    """Point `fake.base_url` (what the harness points Steward at) through the hop while open."""
    upstream, held = fake.base_url, []

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()  # before any wait: read later, a request given up is lost
        slow = request.path.endswith("/" + method) and not held
        if slow:
            held.append(request.path)
        if slow and late == "request":
            await asyncio.sleep(delay)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "authorization")
        }
        async with session.post(upstream + request.path_qs, data=body, headers=headers) as got:
            answer, status = await got.read(), got.status
            kind = got.headers.get("Content-Type", "application/json").split(";")[0]
        if slow and late == "answer":
            await asyncio.sleep(delay)
        return web.Response(body=answer, status=status, content_type=kind)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
    async with aiohttp.ClientSession() as session:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        fake.base_url = f"http://{host}:{port}"
        try:
            yield
        finally:
            fake.base_url = upstream
            await runner.cleanup()
