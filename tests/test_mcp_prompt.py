"""Many MCP tools must not bloat every call: with 50 configured, the model is offered one
search-and-load tool, and the fixed prompt stays within 3,000 tokens (bench/mcp_prompt.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fakes.anthropic import Reply
from mcp_servers.support import mcp_world, notes_stdio

from agent.mcp import SEARCH_TOOL

_BENCH = Path(__file__).resolve().parent.parent / "bench" / "mcp_prompt.py"
_spec = importlib.util.spec_from_file_location("mcp_prompt_bench", _BENCH)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


async def test_the_fixed_prompt_with_50_mcp_tools_stays_within_3000_tokens(
    tmp_path: Path,
) -> None:
    searched = await bench.measure(50, None, tmp_path)
    assert searched["mcp_tools_offered"] == 1  # the search tool, no schema of the 50
    assert searched["tokens"] <= 3000, searched
    (tmp_path / "all").mkdir()
    inline = await bench.measure(50, 200, tmp_path / "all")
    assert inline["mcp_tools_offered"] == 50
    assert inline["tokens"] > searched["tokens"] + 3000  # what the search tool saves


async def test_search_loads_tools_for_this_turn_only(tmp_path: Path) -> None:
    servers = {"notes": notes_stdio(NOTES_EXTRA_TOOLS="41")}
    rules = '[[rules]]\ntool = "mcp__notes__*"\nrisk = "read"\n'
    async with mcp_world(tmp_path, servers, rules=rules) as world:
        assert len(world.mcp.tools()) == 50
        model = world.model
        model.reply(Reply.tool_use(SEARCH_TOOL, {"query": "calendar"}))
        model.reply(Reply.tool_use("mcp__notes__calendar_op_05", {"item": "lunch", "count": 2}))
        model.reply(Reply.text("booked"))
        await world.h.say("book lunch")
        first, second, third = model.requests[:3]
        assert [n for n in first.tool_names if n.startswith("mcp")] == [SEARCH_TOOL]
        found = str(second.tool_results[0]["content"])
        assert found.startswith('<untrusted id="') and "mcp__notes__calendar_op_05" in found
        loaded = [n for n in second.tool_names if n.startswith("mcp__")]
        assert "mcp__notes__calendar_op_05" in loaded and len(loaded) <= 5
        assert "extra 5: lunch x2" in str(third.tool_results[0]["content"])
        model.reply(Reply.text("hi"))
        await world.h.say("and now?")
        assert [n for n in model.requests[-1].tool_names if n.startswith("mcp")] == [SEARCH_TOOL]
