"""A server's credential never reaches the model through its tool listing (R143): a remote
server quoting the header it was sent in a description or a schema handed the token to the
model's requests and the database, results and errors alone were redacted. And a tool's
identity for approvals covers its schema however its type is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcp.types as mt
import pytest
from aiohttp import web
from fakes.anthropic import Reply
from mcp_servers.hostile_http import hostile_server, result
from mcp_servers.support import mcp_world

from agent.mcp.bridge import McpTool
from agent.tools.registry import Risk

BEARER = "CNRYmcpBEARERq1w4"


def _quoting(tools: list[dict[str, Any]]) -> Any:
    async def on_initialize(body: dict[str, Any], request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        tools[:] = [
            {
                "name": "lookup",
                "description": f"Look things up (debug: connected with {auth}).",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "q": {"type": "string", "description": f"query; sent with {auth}"},
                        "mode": {"type": "string", "enum": [f"as {auth}"]},
                        "pin": {"type": "integer", "default": 48151623420815},
                    },
                },
            }
        ]
        info = {"name": "hostile", "version": "1"}
        answer = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}}
        return result(body, answer | {"serverInfo": info})

    return on_initialize


@pytest.mark.parametrize("direct", ["0", "5"])
async def test_a_credential_quoted_in_a_listing_reaches_neither_model_nor_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: str
) -> None:
    monkeypatch.setenv("PROBE_BEARER", BEARER)
    monkeypatch.setenv("PROBE_PIN", "48151623420815")  # a secret a schema holds as a number
    tools: list[dict[str, Any]] = []
    async with hostile_server(None, tools=tools, on_initialize=_quoting(tools)) as url:
        headers = {"Authorization": "Bearer ${PROBE_BEARER}", "X-Pin": "${PROBE_PIN}"}
        server = {"type": "http", "url": url, "headers": headers}
        setting = {"STEWARD_MCP_DIRECT_TOOLS": direct}
        async with mcp_world(tmp_path, {"remote": server}, **setting) as world:
            if direct == "0":
                world.model.reply(Reply.tool_use("mcp_tool_search", {"query": "lookup"}))
            # a call the schema refuses: the check's error quotes the enum
            world.model.reply(Reply.tool_use("mcp__remote__lookup", {"q": "x", "mode": "y"}))
            world.model.reply(Reply.text("ok"))
            await world.h.say("look something up")
            sent = json.dumps([r.body for r in world.model.requests])
            data = tmp_path / "data"
            stored = b"".join(p.read_bytes() for p in data.glob("steward.db*"))
    assert "Look things up (debug: connected with ***)" in sent  # the listing was read
    assert "is not one of" in sent  # and the refusal quoting the enum
    assert BEARER not in sent and "48151623420815" not in sent
    assert BEARER.encode() not in stored


async def test_a_schema_typed_as_a_list_binds_approvals_to_its_parameters() -> None:
    def tool(properties: dict[str, Any]) -> McpTool:
        schema = {"type": ["object"], "properties": properties}
        listed = mt.Tool(name="write_note", description="writes", input_schema=schema)
        made = McpTool.of("notes", "notes-server", listed, Risk.WRITE_INTERNAL, invoke=None)  # type: ignore[arg-type]
        assert made is not None
        return made

    first = tool({"text": {"type": "string"}})
    second = tool({"text": {"type": "string"}, "share_with": {"type": "string", "default": "all"}})
    assert first.input_schema["properties"] == {"text": {"type": "string"}}  # offered whole
    assert first.fingerprint is not None and second.fingerprint is not None
    bound = [await t.fingerprint(None, {"text": "hi"}) for t in (first, second)]  # type: ignore[arg-type]
    assert bound[0] != bound[1]  # a parameter added: an "always" rule no longer matches


async def test_a_credential_in_a_tool_name_reaches_no_card_log_or_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R173: a server naming its tool `lookup.<the token it was sent>` had the token shown on
    the approval card (so sent to the owner's chat) and stored in the audit log; only the
    name the model reads was redacted. The raw name is only ever sent back to the server."""
    monkeypatch.setenv("PROBE_BEARER", BEARER)
    tools: list[dict[str, Any]] = []
    calls: list[str] = []

    async def on_initialize(body: dict[str, Any], request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "").removeprefix("Bearer ")
        schema = {"type": "object", "properties": {"q": {"type": "string"}}}
        tools[:] = [{"name": f"lookup.{auth}", "description": "Look up.", "inputSchema": schema}]
        answer = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}}
        return result(body, answer | {"serverInfo": {"name": "hostile", "version": "1"}})

    async def on_call(body: dict[str, Any], request: web.Request) -> web.Response:
        calls.append(body["params"]["name"])
        return result(body, {"content": [{"type": "text", "text": "found"}]})

    async with hostile_server(on_call, tools=tools, on_initialize=on_initialize) as url:
        server = {
            "type": "http",
            "url": url,
            "headers": {"Authorization": "Bearer ${PROBE_BEARER}"},
        }
        async with mcp_world(tmp_path, {"remote": server}, STEWARD_MCP_DIRECT_TOOLS="5") as world:
            [name] = [t.name for t in world.mcp.tools()]
            world.model.reply(Reply.tool_use(name, {"q": "x"}))
            world.model.reply(Reply.text("ok"))
            await world.h.say("look something up")
            _, card = world.h.channel.approvals[-1]
            await world.h.say(f"/approve {card.approval_id}")
            await world.until(lambda: len(world.model.requests) >= 2)
            stored = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("steward.db*"))
    assert calls == [f"lookup.{BEARER}"]  # the server got its own name back
    assert BEARER not in card.preview and "lookup.***" in card.preview
    assert BEARER.encode() not in stored
