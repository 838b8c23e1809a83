"""Review 99: what a server's requests, a result of the wrong shape and a call lost mid-way make
Steward do and say.

- A remote server sending requests to Steward (which takes none) without waiting for their
  answers had the SDK start a task for each and keep it, with its request, while the answers
  went out one POST at a time: 600 pings of 256 KB held 160-200 MiB and 602 tasks after the
  call had timed out, the link still up. Past 16 waiting, the link is dropped and the owner
  told (tests/fakes/mcp_server_requests.py, its own process).
- A result that does not match the tool's output schema (or text only where one is declared)
  made the SDK raise a RuntimeError taken for a broken link: the server was restarted and the
  owner told it was not running. It is the server's answer, of the wrong shape: `malformed`.
- A call that timed out or whose server died was "cancelled" or worth "try again later",
  though the server may have done it already (a payment made twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fakes.anthropic import Reply
from mcp_servers.hostile_http import TOOL, hostile_server, result
from mcp_servers.support import free_port, http_server, mcp_world, notes_stdio

SERVER_REQUESTS = Path(__file__).with_name("fakes") / "mcp_server_requests.py"
MAY_HAVE_RUN = "may have run, partly or fully"


def _rules(server: str) -> str:
    return f'\n[[rules]]\ntool = "mcp__{server}__*"\nrisk = "read"\n'


@asynccontextmanager
async def requesting_server(tmp_path: Path, count: int, *flags: str) -> AsyncIterator[str]:
    port = free_port()
    argv = (str(SERVER_REQUESTS), str(port), str(count), *flags)
    async with http_server(tmp_path, port, *argv) as url:
        yield url


@asynccontextmanager
async def _flood_world(tmp_path: Path, *flags: str) -> AsyncIterator[Any]:
    """A world with the server that sends 300 requests during its one tool call."""
    async with (
        requesting_server(tmp_path, 300, *flags) as url,
        mcp_world(
            tmp_path,
            {"flood": {"type": "http", "url": url}},
            rules=_rules("flood"),
            STEWARD_MCP_TIMEOUT="20",
        ) as world,
    ):
        yield world


async def _flood_call(world: Any) -> tuple[dict[str, Any], int]:
    """The flooding tool called once: its result, and the tasks still held after the owner was
    told (within 15 s, not the 20 s of the call's timeout)."""
    tasks = len(asyncio.all_tasks())
    world.model.reply(Reply.tool_use("mcp__flood__flood", {}))
    world.model.reply(Reply.text("done"))
    await asyncio.wait_for(world.h.say("flood"), 15)
    (answer,) = world.model.requests[1].tool_results
    await world.until(lambda: bool(world.told), 10)
    return answer, len(asyncio.all_tasks()) - tasks


# -- a server's requests ----------------------------------------------------------------------


async def test_a_server_flooding_requests_during_a_call_is_dropped_and_reported(
    tmp_path: Path,
) -> None:
    async with _flood_world(tmp_path) as world:
        answer, held = await _flood_call(world)
        link = world.mcp.links["flood"]
        downs = await world.audit("mcp.server_down")
        outcome = (await world.audit("mcp.call"))[0].detail["outcome"]
    content = str(answer["content"])
    assert answer["is_error"] and "more than 16 requests at once" in content, content
    assert MAY_HAVE_RUN in content, content
    assert outcome == "crashed"
    assert held < 50, f"{held} tasks still held for the server's requests"
    assert link.restarts >= 1 or link.status != "up"
    assert "more than 16 requests at once" in world.told[0], world.told
    assert [e.subject for e in downs] == ["flood"]
    assert "more than 16 requests" in downs[0].detail["problem"]


async def test_cancelling_each_request_does_not_get_around_the_limit(tmp_path: Path) -> None:
    """R102: a server that followed each ping with `notifications/cancelled` for it, holding
    the POSTs of the answers, freed every place: 302 tasks held, the link up. A request whose
    answer is being written keeps its place until the write ends."""
    async with _flood_world(tmp_path, "--cancel") as world:
        answer, held = await _flood_call(world)
    assert "more than 16 requests at once" in str(answer["content"])
    assert held < 50, f"{held} tasks still held for the server's requests"


async def test_a_few_requests_from_a_server_are_answered_and_the_call_completes(
    tmp_path: Path,
) -> None:
    """The other side (a guard, passing before the fix too): a server's handful of pings,
    their answers still held, does not cost it its link."""
    async with (
        requesting_server(tmp_path, 12, "--answer") as url,
        mcp_world(tmp_path, {"flood": {"type": "http", "url": url}}, rules=_rules("flood")) as w,
    ):
        w.model.reply(Reply.tool_use("mcp__flood__flood", {}))
        w.model.reply(Reply.text("done"))
        await w.h.say("a few")
        (answer,) = w.model.requests[1].tool_results
        link = w.mcp.links["flood"]
        assert link.status == "up" and link.restarts == 0 and not w.told
    assert not answer.get("is_error") and "flooded" in str(answer["content"]), answer


# -- a result of the wrong shape --------------------------------------------------------------

SHAPED = {
    **TOOL,
    "outputSchema": {
        "type": "object",
        "properties": {"receipt": {"type": "string"}},
        "required": ["receipt"],
    },
}
TEXT = [{"type": "text", "text": "paid 100; receipt r-1"}]


@pytest.mark.parametrize(
    "answer",
    [
        {"content": TEXT, "structuredContent": {"receipt_id": "r-1"}},  # not the schema's
        {"content": TEXT},  # text only, though a schema is declared
    ],
    ids=["mismatch", "text-only"],
)
async def test_a_result_not_matching_the_output_schema_is_malformed_not_a_broken_link(
    tmp_path: Path, answer: dict[str, Any]
) -> None:
    calls: list[str] = []

    async def pay(body: dict[str, Any], request: web.Request) -> web.Response:
        calls.append(body["params"]["name"])
        return result(body, answer)

    async with (
        hostile_server(pay, tools=[SHAPED]) as url,
        mcp_world(tmp_path, {"shape": {"type": "http", "url": url}}, rules=_rules("shape")) as w,
    ):
        w.model.reply(Reply.tool_use("mcp__shape__fetch_report", {}))
        w.model.reply(Reply.text("done"))
        await w.h.say("pay it")
        (got,) = w.model.requests[1].tool_results
        outcome = (await w.audit("mcp.call"))[0].detail["outcome"]
        await asyncio.sleep(0.3)  # a dropped link would be seen by now
        link = w.mcp.links["shape"]
        assert link.status == "up" and link.restarts == 0, (link.status, link.restarts)
        assert not w.told and not await w.audit("mcp.server_down")
    content = str(got["content"])
    assert calls == ["fetch_report"]
    assert outcome == "malformed"
    assert got["is_error"] and "does not match the output schema" in content, content
    assert "broke" not in content and MAY_HAVE_RUN in content
    assert "receipt" not in content  # nothing of it was read


# -- a call lost mid-way ----------------------------------------------------------------------


async def test_a_call_that_timed_out_may_have_run(tmp_path: Path) -> None:
    servers = {"notes": notes_stdio()}
    rules = _rules("notes")
    async with mcp_world(tmp_path, servers, rules=rules, STEWARD_MCP_TIMEOUT="1.5") as world:
        world.model.reply(Reply.tool_use("mcp__notes__hang", {}))
        world.model.reply(Reply.text("it hung"))
        await world.h.say("hang")
        (got,) = world.model.requests[1].tool_results
    content = str(got["content"])
    assert "did not answer within 1.5 s" in content and MAY_HAVE_RUN in content, content
    assert "cancelled" not in content and "check before trying it again" in content


async def test_a_call_whose_server_died_may_have_run_and_is_not_worth_a_retry(
    tmp_path: Path,
) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=_rules("notes")) as world:
        world.model.reply(Reply.tool_use("mcp__notes__crash", {}))
        world.model.reply(Reply.text("it broke"))
        await world.h.say("crash it")
        (got,) = world.model.requests[1].tool_results
    content = str(got["content"])
    assert "stopped during the call" in content and MAY_HAVE_RUN in content, content
    assert "try again later" not in content


def _nested(levels: int) -> dict[str, Any]:
    """An output schema of `levels` allOf's of two `$ref`s each: 2**levels checks of one value."""
    refs = [{"$ref": f"#/$defs/d{i + 1}"} for i in range(levels)]
    defs: dict[str, Any] = {f"d{i}": {"allOf": [refs[i], refs[i]]} for i in range(levels)}
    defs[f"d{levels}"] = {"type": "string"}
    return {"type": "object", "$defs": defs, "properties": {"x": {"$ref": "#/$defs/d0"}}}


_SLOW = {"type": "string", "pattern": "^(a|a)*$"}


@pytest.mark.parametrize(
    ("schema", "content"),
    [
        ({"type": "object", "properties": {"x": _SLOW}}, {"x": "a" * 25 + "!"}),
        (_nested(17), {"x": "a" * 25 + "!"}),
        # R175: each match within its own limit, 300 of them held the loop 16 s
        (
            {"type": "object", "properties": {"x": {"type": "array", "items": _SLOW}}},
            {"x": ["a" * 40 + "!"] * 300},
        ),
    ],
    ids=["pattern", "nested", "many"],
)
async def test_a_slow_output_schema_holds_up_no_chat(
    tmp_path: Path, schema: dict[str, Any], content: dict[str, Any]
) -> None:
    """R173: the SDK checked a result's structuredContent against the tool's outputSchema on
    the event loop; `^(a|a)*$` against 25 "a"s and a "!", or allOf nested 17 deep, held every
    chat for seconds (doubling with each "a" or level), past STEWARD_MCP_TIMEOUT, even for a
    `read` tool that runs unasked."""
    import time

    tool = {
        "name": "lookup",
        "description": "Look up a word.",
        "inputSchema": {"type": "object", "properties": {"word": {"type": "string"}}},
        "outputSchema": schema,
    }

    async def on_call(body: dict[str, Any], request: web.Request) -> web.Response:
        answer = {
            "content": [{"type": "text", "text": "ok"}],
            "structuredContent": content,
        }
        return result(body, answer)

    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            gaps.append(time.monotonic() - last)
            last = time.monotonic()

    rules = '\n[[rules]]\ntool = "mcp__dict__*"\nrisk = "read"\n'
    async with (
        hostile_server(on_call, tools=[tool]) as url,
        mcp_world(tmp_path, {"dict": {"type": "http", "url": url}}, rules=rules) as w,
    ):
        w.model.reply(Reply.tool_use("mcp__dict__lookup", {"word": "hi"}))
        w.model.reply(Reply.text("done"))
        watch = asyncio.create_task(ticker())
        try:
            await w.h.say("look up hi")
        finally:
            watch.cancel()
        (got,) = w.model.requests[1].tool_results
    assert "ok" in str(got["content"])
    assert max(gaps) < 0.5, f"the event loop stood still {max(gaps):.2f} s"
