"""R238: a server answering a call with HEADER_MISMATCH (-32020) had the SDK re-list its tools by
itself (up to 100 pages, none of Steward's listing limits, parsed on the event loop) and send the
same call again: one approved call reached the server twice. The server's answer now stands as
its error, nothing is resent, and Steward re-lists through its own limited listing."""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from harness import make_settings
from mcp import Client, MCPError
from mcp_servers.support import write_config

from agent.mcp import build_mcp
from agent.mcp.connection import ServerLink

SERVER = Path(__file__).parent / "mcp_servers" / "relist_server.py"
HEADER_MISMATCH = -32020


@asynccontextmanager
async def relist_link(tmp_path: Path, **env: str) -> AsyncIterator[tuple[ServerLink, Path]]:
    entry = {"command": sys.executable, "args": [str(SERVER)], "env": env}
    config = write_config(tmp_path / "mcp.json", {"relist": entry})
    settings = make_settings(
        tmp_path / "data", None, STEWARD_MCP_CONFIG=str(config), STEWARD_MCP_TIMEOUT="20"
    )
    supervisor, _ = build_mcp(settings, lambda _: None, health_every=600.0)
    await supervisor.start()
    try:
        assert await supervisor.settled(30)
        link = supervisor.links["relist"]
        assert link.status == "up", link.error
        assert link.protocol == "2026-07-28"  # the SDK re-lists only on this version
        yield link, tmp_path / "data" / "mcp" / "relist"
    finally:
        await supervisor.stop()


def test_the_sdk_still_relists_through_the_attribute_steward_replaces() -> None:
    """Steward replaces the SDK's private `Client._relist_tool` on each client: renamed, the
    SDK's own re-listing and resend would come back unnoticed."""
    assert callable(getattr(Client, "_relist_tool", None)), "the SDK renamed _relist_tool"
    assert "self._relist_tool(" in inspect.getsource(Client.call_tool)


async def test_one_call_is_one_tools_call_even_when_the_server_answers_header_mismatch(
    tmp_path: Path,
) -> None:
    async with relist_link(tmp_path, MISMATCH="1") as (link, where):
        with pytest.raises(MCPError) as raised:
            await link.call("pay", {"amount": 500}, 20)
        assert raised.value.code == HEADER_MISMATCH  # the server's answer, as its error
        calls = (where / "calls.jsonl").read_text().splitlines()
        assert len(calls) == 1, f"one approved call reached the server {len(calls)} times"


async def test_a_call_cannot_make_the_sdk_parse_a_listing_past_stewards_limits(
    tmp_path: Path,
) -> None:
    """Once called, the server lists 60,000 tools a page, pages without end (Steward refuses a
    page of more than 1,000: R117). The SDK's own re-listing read up to 100 such pages."""
    async with relist_link(tmp_path, MISMATCH="1", FAT_TOOLS="60000") as (link, where):
        stall = 0.0
        done = False

        async def beat() -> None:
            nonlocal stall
            last = time.monotonic()
            while not done:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                stall = max(stall, now - last)
                last = now

        beater = asyncio.create_task(beat())
        try:
            with pytest.raises(MCPError):
                await link.call("pay", {"amount": 500}, 20)
        finally:
            done = True
            await beater
        assert stall < 0.5, f"the call held the event loop {stall:.2f} s"
        # Steward's own re-list reads at most one such page, and drops the server for it
        for _ in range(100):
            if link.status != "up":
                break
            await asyncio.sleep(0.1)
        pages = int((where / "pages.count").read_text())
        assert pages <= 2, f"{pages - 1} listings of 60,000 tools a page for one call"
        assert link.status != "up"
