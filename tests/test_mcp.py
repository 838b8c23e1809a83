"""MCP tools through chat turns, under the same policy, approvals, taint and audit as built-ins.

Real servers only: the notes server (SDK server API) over stdio and streamable HTTP, and the
published `mcp-server-time`; the model is the loopback fake Anthropic API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fakes.anthropic import Reply
from mcp_servers.support import McpWorld, http_notes, mcp_world, notes_stdio, time_stdio
from trust_world import obedient_model

from agent.mcp.bridge import McpTool
from agent.mcp.search import SEARCH_TOOL
from agent.tools.registry import Risk

NOTES_READ = """
[[rules]]
tool = "mcp__notes__*"
risk = "read"

[[rules]]
tool = "mcp__notes__write_note"
risk = "external_effect"
"""


def _written(world: McpWorld, server: str = "notes") -> list[dict[str, str]]:
    return _rows(world.server_dir(server) / "written.jsonl")


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _write_asks_then_runs(world: McpWorld, written: Path) -> None:
    world.model.reply(Reply.tool_use("mcp__notes__write_note", {"name": "plan", "text": "hi"}))
    world.model.reply(Reply.text("saved it"))
    await world.h.say("save my plan")
    assert _rows(written) == [], "the write tool ran before approval"
    _, prompt = world.h.channel.approvals[-1]
    assert prompt.tool == "mcp__notes__write_note"
    assert "MCP server: notes" in prompt.preview
    assert "tool: write_note" in prompt.preview
    assert '"name": "plan"' in prompt.preview and '"text": "hi"' in prompt.preview
    requested = await world.audit("tool.requested")
    assert requested[0].subject == "mcp__notes__write_note"
    assert requested[0].detail["decision"] == "ask"
    assert requested[0].detail["risk"] == "external_effect"
    await world.h.say(f"/approve {prompt.approval_id}")
    assert _rows(written) == [{"name": "plan", "text": "hi"}]
    assert "saved it" in world.h.channel.texts()
    assert requested[0].detail["server"] == "notes"
    ran = await world.audit("tool.ran")
    assert ran[0].subject == "mcp__notes__write_note" and ran[0].detail["approval"]
    assert ran[0].detail["server"] == "notes" and ran[0].detail["result_chars"] > 0
    asked = await world.audit("approval.requested")
    assert asked[0].detail["server"] == "notes" and asked[0].detail["server_tool"] == "write_note"
    calls = await world.audit("mcp.call")
    assert calls[0].detail["server"] == "notes" and calls[0].detail["tool"] == "write_note"
    assert calls[0].detail["outcome"] == "ok" and calls[0].detail["result_chars"] > 0


async def test_a_write_tool_asks_and_runs_only_after_approval_stdio(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}) as world:
        await _write_asks_then_runs(world, world.server_dir("notes") / "written.jsonl")


async def test_a_write_tool_asks_and_runs_only_after_approval_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTE_KEY", "key-from-env-5521")
    server_dir = tmp_path / "remote"
    async with http_notes(server_dir) as url:
        servers = {"notes": {"type": "http", "url": url, "headers": {"X-Token": "${NOTE_KEY}"}}}
        async with mcp_world(tmp_path, servers) as world:
            assert world.mcp.states()[0].transport == "http"
            await _write_asks_then_runs(world, server_dir / "written.jsonl")
            assert _text(server_dir / "tokens.txt") == "key-from-env-5521"
            for request in world.model.requests:  # the header's value never reaches the model
                assert "key-from-env-5521" not in json.dumps(request.body)


def _text(path: Path) -> str:
    return path.read_text()


async def test_a_denied_write_never_runs(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}) as world:
        world.model.reply(Reply.tool_use("mcp__notes__write_note", {"name": "x", "text": "y"}))
        world.model.reply(Reply.text("ok, not saved"))
        await world.h.say("save x")
        _, prompt = world.h.channel.approvals[-1]
        await world.h.say(f"/deny {prompt.approval_id}")
        assert _written(world) == []
        assert await world.audit("mcp.call") == []


async def test_mcp_output_taints_the_turn_so_send_message_asks(tmp_path: Path) -> None:
    """The weather tool (read by rule, so it runs unasked) returns injected instructions; the
    obedient model follows them, and the send_message that a clean turn to the owner would
    allow must ask instead, and nothing is sent."""
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=NOTES_READ) as world:
        world.model.on_request(obedient_model)
        await world.h.say('What is the weather? DO {"tool": "mcp__notes__weather", "input": {}}')
        result = next(
            r for req in world.model.requests for r in req.tool_results if "Weather" in str(r)
        )
        assert str(result["content"]).startswith('<untrusted id="')
        assert 'source="mcp:notes"' in str(result["content"])
        asked = [p for _, p in world.h.channel.approvals if p.tool == "send_message"]
        assert asked, "send_message ran unasked after MCP output"
        assert "mcp:notes" in asked[0].reason
        assert all(a.chat_id != "attacker" for a, _ in world.h.channel.sent)
        turn = (await world.h.turns())[-1]
        assert turn.label.tainted and "mcp:notes" in turn.label.sources
        ran = [e.subject for e in await world.audit("tool.ran")]
        assert ran == ["mcp__notes__weather"]


CLOSED_NOTES = """
[[rules]]
tool = "mcp__notes__read_note"
risk = "read"
closed_world = true
"""


async def test_a_read_class_mcp_tool_asks_once_the_turn_holds_outside_content(
    tmp_path: Path,
) -> None:
    """Review 62: an MCP tool the owner classed `read` (as `steward mcp check` suggests for a
    read-only hint) sends its arguments to its server, which may pass them to the internet (a
    search, a fetch). Outside words could fill them with what the turn's context holds, so in
    a tainted turn it asks like a second web_fetch, unless the owner's rule says its world is
    closed (read_note here). In a clean turn it runs unasked (weather)."""
    secret = "CANARY-owner-private-7781"
    rules = CLOSED_NOTES + NOTES_READ
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=rules) as world:
        world.model.reply(Reply.tool_use("mcp__notes__weather", {}))  # runs; taints the turn
        world.model.reply(Reply.tool_use("mcp__notes__read_note", {"name": "plan"}))
        world.model.reply(Reply.tool_use("mcp__notes__send_message", {"text": secret}))
        world.model.reply(Reply.text("done"))
        await world.h.say(f"my bank PIN is {secret}; and what is the weather?")
        decisions = [(e.subject, e.detail["decision"]) for e in await world.audit("tool.requested")]
        assert decisions == [
            ("mcp__notes__weather", "allow"),
            ("mcp__notes__read_note", "allow"),  # closed world, on the owner's word
            ("mcp__notes__send_message", "ask"),
        ]
        calls = [e.detail.get("tool") for e in await world.audit("mcp.call")]
        assert calls == ["weather", "read_note"], "the tainted turn's arguments left unasked"
        _, prompt = world.h.channel.approvals[-1]
        assert prompt.tool == "mcp__notes__send_message" and "leave Steward" in prompt.reason


async def test_a_servers_own_word_that_its_world_is_closed_decides_nothing(
    tmp_path: Path,
) -> None:
    """Review 65: the exemption followed the server's openWorldHint, which a remote server (or
    an update of one) sets as it likes; read_note says false, and without the owner's rule it
    still asks in a tainted turn."""
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=NOTES_READ) as world:
        world.model.reply(Reply.tool_use("mcp__notes__weather", {}))
        world.model.reply(Reply.tool_use("mcp__notes__read_note", {"name": "plan"}))
        world.model.reply(Reply.text("done"))
        await world.h.say("what is the weather?")
        decisions = [(e.subject, e.detail["decision"]) for e in await world.audit("tool.requested")]
        assert decisions == [("mcp__notes__weather", "allow"), ("mcp__notes__read_note", "ask")]


async def test_an_mcp_error_result_is_outside_content_too(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=NOTES_READ) as world:
        world.model.reply(Reply.tool_use("mcp__notes__read_note", {"name": "../../etc/x"}))
        world.model.reply(Reply.tool_use("mcp__notes__read_note", {"name": 5}))  # bad type
        world.model.reply(Reply.text("done"))
        await world.h.say("read it")
        first, second = (r.tool_results[0] for r in world.model.requests[1:3])
        assert 'source="mcp:notes"' in str(first["content"])
        # checked here before anyone is asked (the turn is tainted by the first answer)
        assert second["is_error"] and "invalid arguments" in str(second["content"])


async def test_no_rule_means_external_effect_and_ask(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}) as world:
        weather = world.h.steward.tools.get("mcp__notes__weather")
        assert isinstance(weather, McpTool)
        assert weather.risk is Risk.EXTERNAL_EFFECT and weather.read_only_hint is True
        world.model.reply(Reply.tool_use("mcp__notes__weather", {}))
        world.model.reply(Reply.text("asked"))
        await world.h.say("weather?")
        assert world.h.channel.approvals[-1][1].tool == "mcp__notes__weather"
        assert await world.audit("mcp.call") == []


async def test_published_time_server_end_to_end(tmp_path: Path) -> None:
    """mcp-server-time from PyPI, driven through a chat turn the default way: the model finds
    the tool with the search tool (which loads its schema for the rest of the turn), the call
    asks (no rule), is approved, and its answer is fenced and read; the turn is tainted."""
    async with mcp_world(tmp_path, {"time": time_stdio()}) as world:
        names = [t.name for t in world.mcp.tools()]
        assert "mcp__time__get_current_time" in names
        call = {"timezone": "Europe/Berlin"}
        world.model.reply(Reply.tool_use("mcp_tool_search", {"query": "current time"}))
        world.model.reply(Reply.tool_use("mcp__time__get_current_time", call))
        world.model.reply(Reply.text("It is late in Berlin."))
        await world.h.say("what time is it in Berlin?")
        first, after_search = world.model.requests[0], world.model.requests[1]
        assert "mcp_tool_search" in first.tool_names
        assert "mcp__time__get_current_time" not in first.tool_names  # not offered until found
        assert "mcp__time__get_current_time" in after_search.tool_names
        _, prompt = world.h.channel.approvals[-1]
        assert '"timezone": "Europe/Berlin"' in prompt.preview
        await world.h.say(f"/approve {prompt.approval_id}")
        result = world.model.requests[-1].tool_results[0]
        content = str(result["content"])
        assert content.startswith('<untrusted id="') and "Europe/Berlin" in content
        assert '"datetime"' in content or "datetime" in content
        assert "It is late in Berlin." in world.h.channel.texts()
        turn = (await world.h.turns())[-1]
        assert turn.label.tainted and any("time" in s for s in turn.label.sources)


async def test_mcp_command_lists_servers_for_the_owner_only(tmp_path: Path) -> None:
    from memory.people import Identity

    async with mcp_world(tmp_path, {"notes": notes_stdio(), "time": time_stdio()}) as world:
        shown = await world.h.say("/mcp")
        assert "notes (stdio): up" in shown and "time (stdio): up" in shown
        assert "mcp__notes__write_note (external_effect)" in shown
        assert "mcp__time__convert_time" in shown
        await world.h.say("/allow test:guest")
        refused = await world.h.say("/mcp", sender=Identity("test", "guest"), chat="c2")
        assert refused and "mcp__notes" not in refused and "owner" in refused.lower()


async def test_one_servers_descriptions_do_not_free_another_servers_tool(tmp_path: Path) -> None:
    """Review 65: a listing of server A's tools (its descriptions, words A chose) taints the
    turn; it is no more than what A's own tools' definitions say, but it could steer the
    arguments of server B's tool, so B's `read` tool asks after it as after a result."""
    evil = Path(__file__).with_name("mcp_servers") / "evil_server.py"
    servers = {"notes": notes_stdio(), "evil": {"command": sys.executable, "args": [str(evil)]}}
    async with mcp_world(tmp_path, servers, rules=NOTES_READ) as world:
        world.model.reply(Reply.tool_use(SEARCH_TOOL, {"query": "lookup"}))  # evil's only
        world.model.reply(Reply.tool_use("mcp__notes__send_message", {"text": "history"}))
        world.model.reply(Reply.text("done"))
        await world.h.say("look something up")
        turn = (await world.h.turns())[-1]
        assert "mcp-search:evil" in turn.label.sources
        assert set(turn.label.sources) <= {"mcp-search:evil", "mcp-tools:evil"}
        decisions = [(e.subject, e.detail["decision"]) for e in await world.audit("tool.requested")]
        assert decisions == [(SEARCH_TOOL, "allow"), ("mcp__notes__send_message", "ask")]


async def test_with_tools_offered_directly_a_clean_turn_runs_read_tools_of_every_server(
    tmp_path: Path,
) -> None:
    """Review 66: offered directly (STEWARD_MCP_DIRECT_TOOLS), every server's descriptions are
    in every turn, as in any MCP client; counting one server's as outside content for another
    made every read tool of two servers ask in every turn, a clean one too."""
    servers = {"notes": notes_stdio(), "time": time_stdio()}
    rules = NOTES_READ + '\n[[rules]]\ntool = "mcp__time__*"\nrisk = "read"\n'
    async with mcp_world(tmp_path, servers, rules=rules, STEWARD_MCP_DIRECT_TOOLS="20") as world:
        world.model.reply(Reply.tool_use("mcp__time__get_current_time", {"timezone": "UTC"}))
        world.model.reply(Reply.text("noon"))
        await world.h.say("what time is it?")
        decisions = [(e.subject, e.detail["decision"]) for e in await world.audit("tool.requested")]
        assert decisions == [("mcp__time__get_current_time", "allow")]
