"""An aiohttp app served on 127.0.0.1 that records each request's path and headers (the feed
and page servers of the briefing and fetch tests)."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp import web


async def serve_recorded(
    app: web.Application, requests: list[tuple[str, dict[str, str]]]
) -> tuple[web.AppRunner, str]:
    """Serve `app` on a free loopback port, appending `(path, headers)` of each request to
    `requests`. Returns the runner (to clean up) and the base URL."""

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        requests.append((request.path, dict(request.headers)))
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(record)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"
