"""The one HTTP server for webhooks, on STEWARD_HTTP_HOST:STEWARD_HTTP_PORT.

Channels mount their endpoints (`/telegram/webhook`, `/slack/events`) and then call `start()`;
the server starts once, on the first channel (or the web console) that needs it, and serves every
mounted path; the web console (`serve_rest`) answers every other path.
`GET /healthz` answers with the mounted paths and the number of asyncio tasks, for a load
balancer or a quick check; `GET /metrics`, to loopback clients only, with the embedder's
cumulative calls and CPU seconds (`memory.embed_stats`; `make bench` reads it between phases)
and the garbage collector's pauses (`bot.gc_pauses`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot.errors import HttpServerError
from bot.http_guard import ConnectionGuard, GuardedSite
from bot.throttled_log import MalformedRequests

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["HttpServer", "HttpServerError"]

log = logging.getLogger(__name__)
_PROTOCOL_LOG = logging.getLogger("bot.http.protocol")  # aiohttp's server logs through it
_PROTOCOL_LOG.addFilter(MalformedRequests())

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


class HttpServer:
    def __init__(self, host: str, port: int, *, max_body: int = 1024 * 1024) -> None:
        self.host = host
        self.port = port
        self._max_body = max_body
        self._mounts: dict[str, Handler] = {}
        self._fallback: Handler | None = None
        self._host_ok: Callable[[str | None], bool] | None = None
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()
        self.guard = ConnectionGuard()
        """Caps connections and closes idle and slow ones (bot/http_guard.py, review 79)."""

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        """The base URL it listens on (the real port once started, if 0 was asked for)."""
        if self._runner is not None and self._runner.addresses:
            host, port = self._runner.addresses[0][:2]
            return f"http://{host}:{port}"
        return f"http://{self.host}:{self.port}"

    def mount(self, path: str, handler: Handler) -> None:
        """Serve `path` (any method) with `handler`; mounting works before and after start()."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        if path in self._mounts:
            raise ValueError(f"{path} is mounted twice")
        self._mounts[path] = handler

    def unmount(self, path: str) -> None:
        self._mounts.pop(path, None)

    def serve_rest(
        self, handler: Handler | None, host_ok: Callable[[str | None], bool] | None = None
    ) -> None:
        """Serve every path no channel mounted (the web console, `bot/web/`); None stops it.
        `host_ok` (the console's perimeter) also guards /metrics and what /healthz says
        beyond "ok": a rebinding page on another name reads nothing of them (review 63)."""
        self._fallback = handler
        self._host_ok = host_ok if handler is not None else None

    async def start(self) -> None:
        from aiohttp import web  # only when a channel needs the server

        async with self._lock:
            if self._runner is not None:
                return
            app = web.Application(
                client_max_size=self._max_body, middlewares=[self.guard.middleware]
            )
            app.router.add_route("*", "/{tail:.*}", self._route)
            runner = web.AppRunner(
                app,
                access_log=None,
                shutdown_timeout=2.0,
                # no client compresses what it sends here (Telegram, Slack, a browser's form):
                # a body said to be gzip or br was a 500 or a traceback each (review 36)
                auto_decompress=False,
                logger=_PROTOCOL_LOG,
            )
            await runner.setup()
            try:
                await GuardedSite(runner, self.host, self.port, self.guard).start()
            except OSError as exc:
                await runner.cleanup()
                raise HttpServerError(
                    f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); "
                    "set STEWARD_HTTP_HOST / STEWARD_HTTP_PORT"
                ) from None
            self._runner = runner
            log.info("HTTP server listening on %s%s", self.url, self._mounted())

    def _mounted(self) -> str:
        """The mounted paths for the start-up line, in parentheses; nothing when there are none
        (R196: "webhook server … ()" on a plain console start, where it serves the web
        console alone)."""
        return f" (webhooks: {', '.join(sorted(self._mounts))})" if self._mounts else ""

    async def stop(self) -> None:
        async with self._lock:
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None

    async def _route(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        handler = self._mounts.get(request.path)
        if handler is not None:
            return await handler(request)
        foreign = self._host_ok is not None and not self._host_ok(request.headers.get("Host"))
        if request.path == "/healthz" and request.method == "GET":
            if foreign:  # a probe by another name (a container's, a load balancer's): alive,
                return web.json_response({"ok": True})  # and nothing more (review 65)
            tasks = len(asyncio.all_tasks())  # a count that grows is a leak (`make soak`)
            body = {"ok": True, "endpoints": sorted(self._mounts), "tasks": tasks}
            return web.json_response(body)
        if request.path == "/metrics" and foreign:
            return web.Response(status=421, text="This host name is not Steward's.")
        if request.path == "/metrics" and request.method == "GET" and _local(request):
            from bot.event_loop import loop_name
            from bot.gc_pauses import GC_PAUSES
            from memory.embed_stats import EMBED_STATS  # stdlib only: no numpy, no onnxruntime

            body = {
                "embedder": EMBED_STATS.snapshot(),
                "event_loop": loop_name(),
                "gc": GC_PAUSES.snapshot(),
            }
            return web.json_response(body)
        if self._fallback is not None:
            return await self._fallback(request)
        return web.Response(status=404, text="not found")


def _local(request: web.Request) -> bool:
    """Asked from this machine itself: a loopback peer that is not a reverse proxy on it
    passing on someone else's request (it says so in a forwarding header)."""
    if any(h in request.headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-IP")):
        return False
    remote = request.remote
    return remote is not None and (remote == "::1" or remote.startswith("127."))
