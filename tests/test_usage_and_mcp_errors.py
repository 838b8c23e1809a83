"""What a failed call leaves behind: a model stream that broke off still counts in the turn's
tokens and cost (the API bills it), and an MCP server's own JSON-RPC error in the "Server error"
range (-32000, -32001) is the server's error for the model, not a crash or a timeout of the link.

The model is the wire-level fake; the MCP servers are a real process built with the SDK (stdio)
and a hand-written streamable HTTP server (tests/mcp_servers/hostile_http.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fakes.anthropic import FakeAnthropic, Reply, Usage
from fakes.telegram import FakeTelegram
from harness import OWNER, running_steward, telegram_channel
from mcp_servers.hostile_http import error, hostile_server
from mcp_servers.support import PYTHON, http_notes, mcp_world

from agent.pricing import estimate_cost
from memory.turns import TokenUsage

OWNER_TG = 1001

# -- a model stream that breaks off ------------------------------------------------------------


async def test_a_stream_that_broke_off_counts_in_the_turns_tokens_cost_and_budget(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The stream reports its input (and cache) tokens in message_start, then the connection
    drops mid-answer; the unstreamed retry answers. Both calls are billed: the turn, /usage's
    figures and the daily budget hold both."""
    fake_model.stream_delay = 0.05
    broken = Usage(
        input_tokens=5000,
        output_tokens=40,
        cache_read_input_tokens=2000,
        cache_creation_input_tokens=100,
    )
    retry = Usage(
        input_tokens=5000,
        output_tokens=5,
        cache_read_input_tokens=2000,
        cache_creation_input_tokens=0,
    )
    fake_model.reply(
        replace(Reply.text("Part of the answer " * 10, usage=broken), cut_after_events=8)
    )
    fake_model.reply(Reply.text("Whole answer.", usage=retry))
    async with (
        FakeTelegram() as tg,
        running_steward(
            tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
        ) as h,
        telegram_channel(h, tg),
    ):
        tg.push_message("hello there", user_id=OWNER_TG)
        (final,) = await tg.wait_for("sendMessage", timeout=30)
        for _ in range(100):  # the turn is stored just after the reply went out
            turns = [t for t in await h.turns() if t.kind == "chat"]
            if turns and turns[0].status == "completed":
                break
            await asyncio.sleep(0.05)
        (turn,) = turns
        since = datetime.now(UTC) - timedelta(hours=1)
        rows = await h.steward.stores.turns.usage_since(since)
        budget = await h.steward.stores.turns.budget_tokens_since(since)
        cost = await h.steward.stores.turns.cost_of(turn.id)
    assert [r.stream for r in fake_model.requests] == [True, False]  # it did break off
    assert final.result["text"] == "Whole answer."
    # message_start's input and cache figures (and its output count so far), plus the retry's
    expected = TokenUsage(
        input_tokens=10_000,
        output_tokens=1 + 5,
        cache_read_input_tokens=4000,
        cache_creation_input_tokens=100,
    )
    assert turn.usage == expected
    assert [r.usage for r in rows if r.kind == "chat"] == [expected]
    assert budget == expected.total
    assert cost == pytest.approx(estimate_cost(h.settings.model, expected))
    assert cost > estimate_cost(h.settings.model, TokenUsage(5000, 5, 2000, 0))


# -- an MCP server's own -32000 / -32001 --------------------------------------------------------

SERVER = '''
import os
from mcp import MCPError
from mcp.server import MCPServer

server = MCPServer("quota", version="1.0")


@server.tool()
def fetch_report() -> str:
    """Fetch the report."""
    raise MCPError(code=-32000, message="quota exceeded for key " + os.environ["REPORT_KEY"])


@server.tool()
def busy_report() -> str:
    """Fetch the report from the busy upstream."""
    raise MCPError(code=-32001, message="upstream report service busy, try in an hour")


@server.tool()
def status() -> str:
    """Say the server is fine."""
    return "fine, pid " + str(os.getpid())


server.run()
'''

SECRET = "UXreportKEY7q2w9"
QUOTA_RULES = '[[rules]]\ntool = "mcp__quota__*"\nrisk = "read"\nclosed_world = true\n'


@pytest.mark.parametrize(
    ("tool", "words"),
    [
        ("fetch_report", "quota exceeded for key"),
        ("busy_report", "upstream report service busy"),
    ],
)
async def test_a_stdio_servers_error_in_the_server_error_range_is_its_error_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tool: str, words: str
) -> None:
    """-32000 is not "the server stopped" and -32001 answered at once is not "did not answer
    in time": the model gets the server's words (still without the secret they quote), the
    call is audited as an error, and the server is neither reported down nor restarted."""
    monkeypatch.setenv("UX_REPORT_KEY", SECRET)
    script = tmp_path / "quota_server.py"
    script.write_text(SERVER)
    spec = {"command": PYTHON, "args": [str(script)], "env": {"REPORT_KEY": "${UX_REPORT_KEY}"}}
    async with mcp_world(tmp_path, {"quota": spec}, rules=QUOTA_RULES) as world:
        world.model.reply(Reply.tool_use(f"mcp__quota__{tool}", {}))
        world.model.reply(Reply.tool_use("mcp__quota__status", {}))
        world.model.reply(Reply.text("done"))
        await world.h.say("get the report")
        link = world.mcp.links["quota"]
        failed, after = (r.tool_results[0] for r in world.model.requests[1:3])
        outcomes = [e.detail["outcome"] for e in await world.audit("mcp.call")]
        downs = await world.audit("mcp.server_down")
        assert link.status == "up" and link.restarts == 0
    content = str(failed["content"])
    assert failed["is_error"] and words in content, content
    assert "stopped during the call" not in content and "did not answer within" not in content
    assert SECRET not in json.dumps(failed)
    assert "fine, pid" in str(after["content"])  # the same link served the next call
    assert sorted(outcomes) == ["error", "ok"]
    assert not downs and not world.told


async def _quota_answer(body: dict[str, Any], request: web.Request) -> web.Response:
    return error(body, -32000, "quota exceeded for this workspace")


async def test_a_remote_servers_minus_32000_answer_is_its_error_not_a_crash(
    tmp_path: Path,
) -> None:
    rules = '[[rules]]\ntool = "mcp__remote__*"\nrisk = "read"\nclosed_world = true\n'
    async with (
        hostile_server(_quota_answer) as url,
        mcp_world(tmp_path, {"remote": {"type": "http", "url": url}}, rules=rules) as world,
    ):
        world.model.reply(Reply.tool_use("mcp__remote__fetch_report", {}))
        world.model.reply(Reply.text("done"))
        await world.h.say("call it")
        (result,) = world.model.requests[1].tool_results
        outcomes = [e.detail["outcome"] for e in await world.audit("mcp.call")]
        downs = await world.audit("mcp.server_down")
        link = world.mcp.links["remote"]
        assert link.status == "up" and link.restarts == 0
    assert "quota exceeded for this workspace" in str(result["content"]), result
    assert outcomes == ["error"] and not downs and not world.told


async def test_a_remote_server_that_dies_mid_call_is_still_a_crash(tmp_path: Path) -> None:
    """The other side of the line above (a guard, passing before the fix too): the SDK's own
    CONNECTION_CLOSED, the HTTP server's process gone in the middle of the call, is a crash."""
    rules = '[[rules]]\ntool = "mcp__notes__*"\nrisk = "read"\n'
    async with (
        http_notes(tmp_path / "server") as url,
        mcp_world(tmp_path, {"notes": {"type": "http", "url": url}}, rules=rules) as world,
    ):
        world.model.reply(Reply.tool_use("mcp__notes__crash", {}))
        world.model.reply(Reply.text("it broke"))
        await world.h.say("crash it")
        (result,) = world.model.requests[1].tool_results
        outcomes = [e.detail["outcome"] for e in await world.audit("mcp.call")]
        downs = await world.audit("mcp.server_down")
    assert "stopped during the call" in str(result["content"]), result
    assert outcomes == ["crashed"] and [e.subject for e in downs] == ["notes"]
