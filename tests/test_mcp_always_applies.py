"""An owner's rule allowing an MCP tool applies in a turn whose only outside content is that
server's own descriptions of its tools (the search that found it, or the tools offered): the
search tainted every turn that used a tool, so "always" never stopped the asking (R134).
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
            # R162: its own answers relay others' words (a mail, a page): they could choose
            # when an "always"-approved write runs again, so they do not count as its own
            (("mcp:time",), "ask"),
        ):
            ctx = replace(clean, tainted=True, sources=sources)
            verdict = await w.h.steward.policy.decide(tool, CALL, ctx)
            assert verdict.decision == decided, (sources, verdict)


async def test_a_read_tools_always_rule_runs_its_exact_call_in_any_turn(tmp_path: Path) -> None:
    """A `read` MCP tool asks in a turn holding outside content, as its arguments leave
    Steward; an "always" rule fixes them in advance, so nothing of the turn can ride in them:
    that call runs unasked (R161), and any other still asks."""
    rules = '[[rules]]\ntool = "mcp__time__*"\nrisk = "read"\n'
    async with mcp_world(tmp_path, {"time": time_stdio()}, rules=rules) as w:
        policy, tool = w.h.steward.policy, w.h.steward.tools.get("mcp__time__get_current_time")
        w.model.reply(Reply.text("hello"))
        await w.h.say("hello", chat="c1")  # the owner's own chat: the reply is theirs alone
        owner = await w.h.steward.stores.people.owner()
        chat = await w.h.steward.stores.people.chat("test", "c1")
        assert policy is not None and tool is not None and owner is not None
        here = Address("test", "c1")
        request = TurnRequest(kind="chat", user=owner, chat=chat, address=here, text="")
        ctx = replace(
            w.h.steward.runner.tool_context(request, 0), tainted=True, sources=("web:a.example",)
        )
        assert (await policy.decide(tool, CALL, ctx)).decision == "ask"
        identity = await tool.fingerprint(ctx, CALL) if tool.fingerprint else None
        policy.add_rule_for(tool.name, CALL, None, identity)
        allowed = await policy.decide(tool, CALL, ctx)
        assert allowed.decision == "allow", allowed
        other = await policy.decide(tool, {"timezone": "Asia/Tokyo"}, ctx)
        assert other.decision == "ask", other
