"""An owner's rule allowing an MCP tool applies in a turn whose only outside content is that
server's own descriptions of its tools (the search that found it, or the tools offered): the
search tainted every turn that used a tool, so "always" never stopped the asking (R134); and an
"always" rule applies where that server's own answers are what the turn holds (R161).
Another server's descriptions, or anything else from outside, still make it ask."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fakes.anthropic import Reply
from mcp_servers.support import mcp_world, time_stdio

from agent.types import Address, TurnRequest

CALL = {"timezone": "Europe/Berlin"}


async def test_approved_always_then_found_by_search_again_runs_unasked(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, {"time": time_stdio()}) as w:
        w.model.reply(Reply.tool_use("mcp_tool_search", {"query": "current time"}))
        w.model.reply(Reply.tool_use("mcp__time__get_current_time", CALL))
        await w.h.say("what time is it in Berlin?", chat="c1")
        [(_, card)] = w.h.channel.approvals
        w.model.reply(Reply.text("It is late."))
        added = await w.h.say(f"/approve {card.approval_id} always")
        assert "Added to the policy" in added and "timezone='Europe/Berlin'" in added, added
        # the next day, the same question: found by search again, it runs
        w.model.reply(Reply.tool_use("mcp_tool_search", {"query": "current time"}))
        w.model.reply(Reply.tool_use("mcp__time__get_current_time", CALL))
        w.model.reply(Reply.text("It is 10:00 in Berlin."))
        assert await w.h.say("what time is it in Berlin?", chat="c2") == "It is 10:00 in Berlin."
        assert len(w.h.channel.approvals) == 1
        # its server's descriptions alone: the rule applies; another's, or a page: it asks
        owner = await w.h.steward.stores.people.owner()
        assert owner is not None and w.h.steward.policy is not None
        chat = await w.h.steward.stores.people.chat("test", "c2")
        here = Address("test", "c2")
        request = TurnRequest(kind="chat", user=owner, chat=chat, address=here, text="")
        clean = w.h.steward.runner.tool_context(request, 0)
        tool = w.h.steward.tools.get("mcp__time__get_current_time")
        assert tool is not None
        for sources, decided in (
            (("mcp-search:time", "mcp-tools:time"), "allow"),
            (("mcp-search:time", "mcp-search:clock"), "ask"),
            (("mcp-search:time", "web:evil.example"), "ask"),
            # R161: its own last answer still in view (the same chat, the next question)
            (("mcp:time",), "allow"),
            (("mcp:time", "mcp-search:time"), "allow"),
            (("mcp:clock",), "ask"),
            (("mcp:time", "web:evil.example"), "ask"),
        ):
            ctx = replace(clean, tainted=True, sources=sources)
            verdict = await w.h.steward.policy.decide(tool, CALL, ctx)
            assert verdict.decision == decided, (sources, verdict)
        # other arguments than those approved: its own answer may steer them, so it asks
        ctx = replace(clean, tainted=True, sources=("mcp:time",))
        other = await w.h.steward.policy.decide(tool, {"timezone": "Asia/Tokyo"}, ctx)
        assert other.decision == "ask", other
