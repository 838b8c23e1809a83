"""A raw JSON-RPC MCP server over stdio (the 2025 handshake) that stays quiet: it declares
`tools.listChanged` unless ANNOUNCES=0, counts every `tools/list` in `lists.count` in its working
directory, and exits (as a crashed server would) once a file named `exit` appears there.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from jsonrpc_stdio import answer_with, initialized, serve

ANNOUNCES = os.environ.get("ANNOUNCES", "1") == "1"
lists = 0


def exit_when_told() -> None:
    while not Path("exit").exists():
        time.sleep(0.05)
    os._exit(0)


def answer(message: dict[str, Any]) -> None:
    global lists
    if "id" not in message:
        return
    method = message.get("method")
    result: dict[str, Any] | None = None
    if method == "initialize":
        result = initialized(message, "quiet", tools={"listChanged": ANNOUNCES})
    elif method == "tools/list":
        lists += 1
        Path("lists.count").write_text(str(lists))
        result = {"tools": [{"name": f"t{i}", "inputSchema": {"type": "object"}} for i in range(5)]}
    elif method == "ping":
        result = {}
    answer_with(message, result)


threading.Thread(target=exit_when_told, daemon=True).start()
serve(answer)
