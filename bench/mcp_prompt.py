"""The fixed prompt with 50 MCP tools configured (issue 14): system prompt + tools list of a
chat turn's first model call, in the fake API's tokens (characters / 4, as it counts usage).

    python bench/mcp_prompt.py          # prints the table and one JSON line

Three Steward set-ups, each a real `build_steward` with a real MCP server (the tests' notes
server over stdio, 50 tools) and the loopback fake model: no MCP server; 50 MCP tools with
search-and-load (the default, more than STEWARD_MCP_DIRECT_TOOLS); the same 50 with every
schema sent (STEWARD_MCP_DIRECT_TOOLS=200), for comparison.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fakes.anthropic import FakeAnthropic, Reply  # noqa: E402
from harness import running_steward  # noqa: E402

NOTES = ROOT / "tests" / "mcp_servers" / "notes_server.py"
BASE_TOOLS = 9  # the notes server's own tools; NOTES_EXTRA_TOOLS adds the rest
LIMIT = 3000

__all__ = ["fixed_prompt", "measure"]


def fixed_prompt(body: dict[str, Any]) -> dict[str, int]:
    """Tokens of the part of a request that does not change from turn to turn."""
    tools = body.get("tools") or []
    tool_chars = sum(
        len(json.dumps({k: v for k, v in t.items() if k != "cache_control"}, sort_keys=True))
        for t in tools
    )
    system = body.get("system") or ""
    system_chars = (
        len(system) if isinstance(system, str) else sum(len(b.get("text", "")) for b in system)
    )
    mcp = [t for t in tools if t["name"].startswith("mcp")]
    mcp_chars = sum(len(json.dumps(t, sort_keys=True)) for t in mcp)
    return {
        "tokens": math.ceil((tool_chars + system_chars) / 4),
        "tools_offered": len(tools),
        "mcp_tools_offered": len(mcp),
        "mcp_tokens": math.ceil(mcp_chars / 4),
    }


async def measure(mcp_tools: int, direct_limit: int | None, workdir: Path) -> dict[str, int]:
    servers: dict[str, Any] = {}
    if mcp_tools:
        extra = str(mcp_tools - BASE_TOOLS)
        servers["notes"] = {
            "command": sys.executable,
            "args": [str(NOTES)],
            "env": {"NOTES_EXTRA_TOOLS": extra},
        }
    config = workdir / "mcp.json"
    config.write_text(json.dumps({"mcpServers": servers}))
    overrides = {"STEWARD_MCP_CONFIG": str(config), "STEWARD_EMBEDDER": "none"}
    if direct_limit is not None:
        overrides["STEWARD_MCP_DIRECT_TOOLS"] = str(direct_limit)
    async with FakeAnthropic() as model:
        model.reply(Reply.text("ok"))
        async with running_steward(workdir / "data", model.base_url, **overrides) as h:
            assert h.steward.mcp is not None
            await h.steward.mcp.start()
            await h.steward.mcp.settled(60)
            if mcp_tools:
                assert len(h.steward.mcp.tools()) == mcp_tools, "the server did not list them all"
            await h.say("hello")
        return fixed_prompt(model.requests[0].body)


async def main() -> int:
    rows: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, tools, direct in (
            ("no MCP server", 0, None),
            ("50 MCP tools, search-and-load (default)", 50, None),
            ("50 MCP tools, every schema sent", 50, 200),
        ):
            where = Path(tmp) / str(len(rows))
            where.mkdir()
            rows[label] = await measure(tools, direct, where)
    print("| set-up | fixed prompt (tokens) | tools offered | of them MCP (tokens) |")
    print("| --- | --- | --- | --- |")
    for label, row in rows.items():
        print(
            f"| {label} | {row['tokens']:,} | {row['tools_offered']} | "
            f"{row['mcp_tools_offered']} ({row['mcp_tokens']:,}) |"
        )
    fixed = rows["50 MCP tools, search-and-load (default)"]["tokens"]
    print(json.dumps({"mcp_fixed_prompt_tokens_50_tools": fixed, "limit": LIMIT}))
    return 0 if fixed <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
