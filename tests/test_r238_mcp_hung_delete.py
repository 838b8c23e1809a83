"""R238: a remote server Steward had dropped (its health check failed) stayed "up", its tools
offered and the owner not told, for as long as it left the SDK's closing DELETE unanswered (the
HTTP client's 300 s read timeout)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web
from harness import make_settings
from mcp_servers.support import write_config

from agent.mcp import build_mcp

TOLD_WITHIN = 15.0
"""Seconds from the DELETE to the owner's notice: the DELETE waits 5 s at a time now, not 300."""
TOOL = {"name": "fetch", "description": "Fetch.", "inputSchema": {"type": "object"}}


async def test_a_lost_remote_server_is_down_at_once_and_told_though_its_delete_hangs(
    tmp_path: Path,
) -> None:
    lists = 0
    deleted = asyncio.Event()
    release = asyncio.Event()  # the test's end: the hung handler returns, no cleanup waits on it

    async def handle(request: web.Request) -> web.StreamResponse:
        nonlocal lists
        if request.method == "DELETE":
            deleted.set()
            await release.wait()  # never answers the session's end
            return web.Response(status=204)
        if request.method != "POST":
            return web.Response(status=405)
        body = await request.json()
        if "id" not in body:
            return web.Response(status=202)
        headers = {"Mcp-Session-Id": "s1"}
        if body.get("method") == "initialize":
            result = {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "hang", "version": "1"},
            }
        elif body.get("method") == "tools/list":
            lists += 1
            if lists > 1:  # the health check's listing fails: Steward drops the link
                return web.Response(status=500, headers=headers)
            result = {"tools": [TOOL]}
        else:
            error = {"code": -32601, "message": "no"}
            reply = {"jsonrpc": "2.0", "id": body["id"], "error": error}
            return web.json_response(reply, headers=headers)
        reply = {"jsonrpc": "2.0", "id": body["id"], "result": result}
        return web.json_response(reply, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/mcp", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/mcp"
    config = write_config(tmp_path / "mcp.json", {"hang": {"type": "http", "url": url}})
    settings = make_settings(tmp_path / "data", None, STEWARD_MCP_CONFIG=str(config))
    supervisor, source = build_mcp(settings, lambda _: None, health_every=0.5)
    told: list[str] = []
    was_told = asyncio.Event()

    async def tell(text: str) -> None:
        told.append(text)
        was_told.set()

    await supervisor.start(notify=tell)
    try:
        assert await supervisor.settled(30)
        link = supervisor.links["hang"]
        assert link.status == "up"
        assert [s["name"] for s in source.schemas(1)]
        await asyncio.wait_for(deleted.wait(), 15)  # dropped: the session's end was sent
        await asyncio.sleep(0.2)
        assert link.status != "up", "shown as up while its DELETE hangs"
        assert not source.schemas(1), "its tools offered while its DELETE hangs"
        try:
            await asyncio.wait_for(was_told.wait(), TOLD_WITHIN)
        except TimeoutError:
            raise AssertionError(f"the owner was not told within {TOLD_WITHIN:g} s") from None
        assert "hang" in told[0]
    finally:
        release.set()
        await asyncio.wait_for(supervisor.stop(), 30)
        await runner.cleanup()
