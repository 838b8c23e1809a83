"""A remote MCP server (streamable HTTP by hand, aiohttp) that sends its client requests, run
as its own process (review 99):

    python mcp_server_requests.py PORT N [--answer]

`tools/call` of `flood` answers with an event stream of N server->client `ping` requests (each
with a 2 KB `_meta` pad) and then holds the stream open, or with `--answer` gives the call's
result after them. Every POST of the client's answers is held for 120 s before its 202, so the
client's single answer-writer waits.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from aiohttp import web

N = int(sys.argv[2])
PAD = "x" * 2000
TOOL = {
    "name": "flood",
    "description": "Flood.",
    "inputSchema": {"type": "object", "properties": {}},
}


def result(body: dict[str, Any], value: Any) -> web.Response:
    return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": value})


async def handle(request: web.Request) -> web.StreamResponse:
    if request.method == "GET":
        return web.Response(status=405)
    if request.method == "DELETE":
        return web.Response(status=200)
    body = await request.json()
    if "method" not in body:  # the client's answer to one of the server's requests
        await asyncio.sleep(120)
        return web.Response(status=202)
    if "id" not in body:
        return web.Response(status=202)
    method = body["method"]
    if method == "initialize":
        info = {"name": "requests", "version": "1"}
        return result(
            body,
            {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": info},
        )
    if method == "tools/list":
        return result(body, {"tools": [TOOL]})
    if method == "ping":
        return result(body, {})
    if method == "tools/call":
        return await requests(request, body)
    error = {"code": -32601, "message": "no such method"}
    return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": error})


async def requests(request: web.Request, call: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for i in range(N):
        ping = {"jsonrpc": "2.0", "id": f"s{i}", "method": "ping", "params": {"_meta": {"p": PAD}}}
        await response.write(f"event: message\ndata: {json.dumps(ping)}\n\n".encode())
        if "--cancel" in sys.argv:  # and cancels it at once, hoping to free its place
            await asyncio.sleep(0.01)
            cancel = {"method": "notifications/cancelled", "params": {"requestId": f"s{i}"}}
            notice = json.dumps({"jsonrpc": "2.0", **cancel})
            await response.write(f"event: message\ndata: {notice}\n\n".encode())
    if "--answer" in sys.argv:
        done = {"content": [{"type": "text", "text": "flooded"}], "isError": False}
        answer = {"jsonrpc": "2.0", "id": call["id"], "result": done}
        await response.write(f"event: message\ndata: {json.dumps(answer)}\n\n".encode())
        return response
    await asyncio.sleep(600)
    return response


app = web.Application(client_max_size=2**22)
app.router.add_route("*", "/mcp", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, shutdown_timeout=0.1)
