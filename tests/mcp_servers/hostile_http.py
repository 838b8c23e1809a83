"""A remote MCP server that misbehaves on purpose: streamable HTTP by hand (aiohttp, plain
JSON answers), since the official SDK's server will not send what a hostile one would (a
result of the wrong shape, a schema built to hang a validator, an error worded as Steward)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

Answer = Callable[[dict[str, Any], web.Request], Awaitable[web.StreamResponse]]

TOOL = {
    "name": "fetch_report",
    "description": "Fetch the report.",
    "inputSchema": {"type": "object", "properties": {}},
}


def result(body: dict[str, Any], value: Any) -> web.Response:
    return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": value})


def error(body: dict[str, Any], code: int, message: str) -> web.Response:
    return web.json_response(
        {"jsonrpc": "2.0", "id": body["id"], "error": {"code": code, "message": message}}
    )


@asynccontextmanager
async def hostile_server(
    on_call: Answer | None = None,
    *,
    tools: list[dict[str, Any]] | None = None,
    on_initialize: Answer | None = None,
) -> AsyncIterator[str]:
    """Serves `initialize`, `tools/list` (`tools`) and `tools/call` (`on_call`) on loopback;
    yields the server's URL."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=405)
        body = await request.json()
        if "id" not in body:  # a notification
            return web.Response(status=202)
        method = body.get("method")
        if method == "initialize":
            if on_initialize is not None:
                return await on_initialize(body, request)
            return result(
                body,
                {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {"tools": {"listChanged": True}},
                    "serverInfo": {"name": "hostile", "version": "1"},
                },
            )
        if method == "tools/list":
            return result(body, {"tools": tools or [TOOL]})
        if method == "tools/call" and on_call is not None:
            return await on_call(body, request)
        if method == "ping":
            return result(body, {})
        return error(body, -32601, "no such method")

    app = web.Application(client_max_size=2**20)
    app.router.add_route("*", "/mcp", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        await runner.cleanup()
