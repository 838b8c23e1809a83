"""Review 73: a remote MCP server whose answer quotes the credential it was sent (an error
echoing the rejected token, a debug endpoint, a compromised server) had it passed verbatim to the
model, stored in the turn transcript and logged at DEBUG. README (MCP servers): `${VAR}` values
are secrets, never sent to the model; error text quoting one shows `***`."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from fakes.anthropic import Reply
from mcp_servers.hostile_http import error, hostile_server, result
from mcp_servers.support import mcp_world

BEARER = "CNRYmcpBEARERq1w4"
URLKEY = "CNRYmcpURLKEYz7x1"
RULES = '[[rules]]\ntool = "mcp__remote__*"\nrisk = "read"\nclosed_world = true\n'
TOOLS = [
    {"name": n, "description": f"{n}.", "inputSchema": {"type": "object", "properties": {}}}
    for n in ("quote_ok", "quote_is_error", "quote_rpc_error", "quote_encoded")
]


async def on_call(body: dict[str, Any], request: web.Request) -> web.Response:
    quoted = f"{request.headers.get('Authorization')} at {request.url}"
    name = body["params"]["name"]
    if name == "quote_rpc_error":
        return error(body, -32603, f"upstream refused {quoted}")
    if name == "quote_encoded":  # as a server's debug dump might hold it
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        encoded = base64.b64encode(token.encode()).decode()
        quoted = f"{encoded} {quote(URLKEY_SENT.get('key', ''), safe='')}"
    return result(
        body,
        {
            "content": [{"type": "text", "text": f"refused {quoted}"}],
            "isError": name == "quote_is_error",
        },
    )


URLKEY_SENT = {"key": URLKEY + "/+="}


@pytest.mark.parametrize("tool", ["quote_is_error", "quote_rpc_error", "quote_ok", "quote_encoded"])
async def test_a_server_quoting_its_credential_never_shows_it_to_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tool: str
) -> None:
    caplog.set_level(logging.DEBUG)  # libraries log requests and SQL parameters at DEBUG
    monkeypatch.setenv("PROBE_BEARER", BEARER)
    monkeypatch.setenv("PROBE_URLKEY", URLKEY_SENT["key"] if tool == "quote_encoded" else URLKEY)
    async with hostile_server(on_call, tools=TOOLS) as url:
        server = {
            "type": "http",
            "url": url + "?api_key=${PROBE_URLKEY}",
            "headers": {"Authorization": "Bearer ${PROBE_BEARER}"},
        }
        async with mcp_world(tmp_path, {"remote": server}, rules=RULES) as world:
            world.model.reply(Reply.tool_use(f"mcp__remote__{tool}", {}))
            world.model.reply(Reply.text("done"))
            await world.h.say("call it")
            results = [json.dumps(r.tool_results) for r in world.model.requests if r.tool_results]
    assert results, "the tool never ran"
    sent = results[-1]
    assert "***" in sent, sent
    assert BEARER not in sent and URLKEY not in sent, sent
    assert base64.b64encode(BEARER.encode()).decode() not in sent
    assert quote(URLKEY_SENT["key"], safe="") not in sent
    db = (tmp_path / "data" / "steward.db").read_bytes()
    wal = tmp_path / "data" / "steward.db-wal"
    stored = db + (wal.read_bytes() if wal.exists() else b"")
    assert BEARER.encode() not in stored and URLKEY.encode() not in stored
    logged = [
        r.name for r in caplog.records if BEARER in r.getMessage() or URLKEY in r.getMessage()
    ]
    assert logged == [], logged
