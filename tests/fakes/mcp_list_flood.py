"""A raw JSON-RPC MCP server over stdio that floods `notifications/tools/list_changed`.

Once initialized it sends one every millisecond for FLOOD_SECONDS, then adds the tool `last`
and sends one more: the change made last. Every `tools/list` is counted in `lists.count` in the
working directory. LIST_SECONDS makes each listing take that long (a slow, large one).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from jsonrpc_stdio import answer_with, initialized, send, serve

FLOOD_SECONDS = float(os.environ.get("FLOOD_SECONDS", "2"))
LIST_SECONDS = float(os.environ.get("LIST_SECONDS", "0"))
lists = 0
final = False


def flood() -> None:
    global final
    changed = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    until = time.monotonic() + FLOOD_SECONDS
    while time.monotonic() < until:
        send(changed)
        time.sleep(0.001)
    final = True
    send(changed)


def answer(message: dict[str, Any]) -> None:
    global lists
    method = message.get("method")
    if method == "notifications/initialized":
        threading.Thread(target=flood, daemon=True).start()
        return
    if "id" not in message:
        return
    result: dict[str, Any] | None = None
    if method == "initialize":
        result = initialized(message, "flood", tools={"listChanged": True})
    elif method == "tools/list":
        lists += 1
        Path("lists.count").write_text(str(lists))
        time.sleep(LIST_SECONDS)
        names = [f"t{i}" for i in range(5)] + (["last"] if final else [])
        result = {"tools": [{"name": n, "inputSchema": {"type": "object"}} for n in names]}
    elif method == "ping":
        result = {}
    answer_with(message, result)


serve(answer)
