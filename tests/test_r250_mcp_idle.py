"""R250: an idle Steward downloaded every MCP server's whole tool listing again at each health
check (every 15 s: 5,760 a day per server, a new connection to a remote one, a stdio child
woken each time), even from a server that announces its changes. Counted here on fake servers
over a short idle window, the health check run every HEALTH seconds; a server that announces
nothing is still listed, and one that dies while idle is still noticed at once."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from harness import make_settings
from mcp_servers.support import write_config

from agent.mcp import McpSupervisor, build_mcp

FAKES = Path(__file__).with_name("fakes")
RELIST = Path(__file__).with_name("mcp_servers") / "relist_server.py"
HEALTH = 0.2
"""Seconds between health checks here (15 s in production)."""
IDLE = 3.0
"""Seconds of idle counted: 15 health checks."""


@asynccontextmanager
async def counting_remote_server(announces: bool) -> AsyncIterator[tuple[str, Counter[str]]]:
    """A remote MCP server (streamable HTTP, the 2025 handshake, plain JSON answers) that
    declares `tools.listChanged` or not, and counts every request by method."""
    seen: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=405)
        body = await request.json()
        seen[body.get("method", "?")] += 1
        if "id" not in body:
            return web.Response(status=202)
        method = body["method"]
        if method == "initialize":
            value: Any = {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {"listChanged": announces}},
                "serverInfo": {"name": "remote", "version": "1"},
            }
        elif method == "tools/list":
            value = {
                "tools": [
                    {"name": f"t{i}", "description": "x" * 400, "inputSchema": {"type": "object"}}
                    for i in range(20)
                ]
            }
        else:
            error = {"code": -32601, "message": "no"}
            return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": error})
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": value})

    app = web.Application()
    app.router.add_route("*", "/mcp", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/mcp", seen
    finally:
        await runner.cleanup()


@asynccontextmanager
async def supervised(
    tmp_path: Path, servers: dict[str, Any], told: list[str] | None = None
) -> AsyncIterator[McpSupervisor]:
    """The MCP supervisor as `steward run` builds it, its health check every HEALTH seconds;
    what the owner is told goes to `told`."""
    config = write_config(tmp_path / "mcp.json", servers)
    settings = make_settings(tmp_path / "data", None, STEWARD_MCP_CONFIG=str(config))
    supervisor, _ = build_mcp(settings, lambda _: None, health_every=HEALTH, backoff=(0.2, 0.5))

    async def tell(text: str) -> None:
        (told if told is not None else []).append(text)

    await supervisor.start(notify=tell)
    try:
        assert await supervisor.settled(30)
        yield supervisor
    finally:
        await supervisor.stop()


def quiet_stdio(announces: bool) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [str(FAKES / "mcp_quiet.py")],
        "env": {"ANNOUNCES": "1" if announces else "0"},
    }


def count(path: Path) -> int:
    return int(path.read_text()) if path.exists() else 0


@pytest.mark.parametrize(("announces", "most", "least"), [(True, 0, 0), (False, 99, 5)])
async def test_an_idle_remote_server_is_listed_again_only_if_it_announces_no_changes(
    tmp_path: Path, announces: bool, most: int, least: int
) -> None:
    async with (
        counting_remote_server(announces) as (url, seen),
        supervised(tmp_path, {"remote": {"url": url}}) as supervisor,
    ):
        assert supervisor.links["remote"].status == "up"
        before = seen["tools/list"]
        await asyncio.sleep(IDLE)
        idle_lists = seen["tools/list"] - before
        assert supervisor.links["remote"].status == "up"
    assert least <= idle_lists <= most, f"{idle_lists} tools/list in {IDLE:g} s idle: {seen}"


@pytest.mark.parametrize(("announces", "most", "least"), [(True, 0, 0), (False, 99, 5)])
async def test_an_idle_stdio_server_is_listed_again_only_if_it_announces_no_changes(
    tmp_path: Path, announces: bool, most: int, least: int
) -> None:
    async with supervised(tmp_path, {"quiet": quiet_stdio(announces)}) as supervisor:
        assert supervisor.links["quiet"].status == "up"
        counted = tmp_path / "data" / "mcp" / "quiet" / "lists.count"
        before = count(counted)
        await asyncio.sleep(IDLE)
        idle_lists = count(counted) - before
        assert supervisor.links["quiet"].status == "up"
    assert least <= idle_lists <= most, f"{idle_lists} tools/list in {IDLE:g} s idle"


async def test_an_idle_server_on_a_listen_stream_is_not_listed_again(tmp_path: Path) -> None:
    """A 2026-07-28 server (the SDK's) carries its changes on the listen stream."""
    entry = {"command": sys.executable, "args": [str(RELIST)]}
    async with supervised(tmp_path, {"modern": entry}) as supervisor:
        link = supervisor.links["modern"]
        assert link.status == "up" and link.protocol == "2026-07-28"
        counted = tmp_path / "data" / "mcp" / "modern" / "pages.count"
        await asyncio.sleep(0.5)  # the listen stream opens
        before = count(counted)
        await asyncio.sleep(IDLE)
        idle_lists = count(counted) - before
        assert link.status == "up"
    assert idle_lists == 0, f"{idle_lists} tools/list in {IDLE:g} s idle"


async def test_a_stdio_server_that_announces_changes_and_dies_idle_is_noticed_at_once(
    tmp_path: Path,
) -> None:
    """No listing would notice it now: its exit (its stdout closing) does, and it is restarted."""
    told: list[str] = []
    async with supervised(tmp_path, {"quiet": quiet_stdio(True)}, told) as supervisor:
        link = supervisor.links["quiet"]
        assert link.status == "up" and supervisor.get("mcp__quiet__t0") is not None
        workdir = tmp_path / "data" / "mcp" / "quiet"
        (workdir / "exit").write_text("")
        for _ in range(60):
            if told:
                break
            await asyncio.sleep(0.05)
        assert told and "quiet" in told[0], "the owner not told within 3 s of the server's exit"
        assert link.status != "up", "a dead server still shown as up"
        assert supervisor.get("mcp__quiet__t0") is None, "a dead server's tools still offered"
        (workdir / "exit").unlink()
        for _ in range(200):
            if link.status == "up":
                break
            await asyncio.sleep(0.05)
        assert link.status == "up" and link.restarts >= 1
        assert supervisor.get("mcp__quiet__t0") is not None
