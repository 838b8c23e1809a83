"""A raw JSON-RPC MCP server over stdio listing many tools, page by page.

TOOLS tools (`t0`, `t1`, …) in pages of PER_PAGE. Calling `t0` changes `t7`'s description and
sends `notifications/tools/list_changed`. Every `tools/list` request (one a page) is counted in
`pages.count` in the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jsonrpc_stdio import answer_with, initialized, send, serve

TOOLS = int(os.environ.get("TOOLS", "1000"))
PER_PAGE = int(os.environ.get("PER_PAGE", "250"))
version = 1
pages = 0


def tool(i: int) -> dict[str, Any]:
    about = f"tool {i}" + (f" version {version}" if i == 7 else "")
    schema = {"type": "object", "properties": {"text": {"type": "string"}}}
    return {"name": f"t{i}", "description": about, "inputSchema": schema}


def answer(message: dict[str, Any]) -> None:
    global version, pages
    method = message.get("method")
    if "id" not in message:
        return  # a notification
    result: dict[str, Any] | None = None
    if method == "initialize":
        result = initialized(message, "many", tools={"listChanged": True})
    elif method == "tools/list":
        pages += 1
        Path("pages.count").write_text(str(pages))
        start = int((message.get("params") or {}).get("cursor") or 0)
        end = min(start + PER_PAGE, TOOLS)
        result = {"tools": [tool(i) for i in range(start, end)]}
        if end < TOOLS:
            result["nextCursor"] = str(end)
    elif method == "tools/call":
        version += 1
        send({"jsonrpc": "2.0", "id": message["id"], "result": {"content": []}})
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        return
    elif method == "ping":
        result = {}
    answer_with(message, result)


serve(answer)
