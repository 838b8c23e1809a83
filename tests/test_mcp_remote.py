"""A remote (streamable HTTP) MCP server that goes away and comes back: noticed by its listen
stream ending (R250; else by the health check), its tools gone meanwhile, retried with
backoff, the owner told once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness import make_settings
from mcp_servers.support import free_port, http_notes, write_config

from agent.mcp import build_mcp


async def test_a_remote_server_that_goes_away_is_retried_until_it_is_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "mcp.json", {"remote": {"type": "http", "url": f"http://127.0.0.1:{port}/mcp"}}
    )
    settings = make_settings(tmp_path / "data", None, STEWARD_MCP_CONFIG=str(config))
    supervisor, source = build_mcp(
        settings, lambda name: None, health_every=0.3, backoff=(0.2, 0.5)
    )
    told: list[str] = []

    async def tell(text: str) -> None:
        told.append(text)

    link = supervisor.links["remote"]

    async def until(status: str) -> None:
        for _ in range(400):
            if link.status == status:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{link.status} != {status}")

    try:
        async with http_notes(tmp_path / "srv", port):
            await supervisor.start(notify=tell)
            await until("up")
            assert supervisor.get("mcp__remote__read_note") is not None
            assert [s["name"] for s in source.schemas(1)] == ["mcp_tool_search"]  # 9 tools
        await until("down")  # the health check noticed
        assert supervisor.tools() == []
        async with http_notes(tmp_path / "srv", port):
            await until("up")
            assert supervisor.get("mcp__remote__write_note") is not None
            assert len(told) == 1 and "remote" in told[0]  # one outage, told once
    finally:
        await supervisor.stop()
