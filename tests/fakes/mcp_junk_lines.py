"""A raw JSON-RPC MCP server over stdio that, once initialized, writes lines that are not
JSON-RPC (JUNK=text) or notifications whose params are wrong (JUNK=notification) as fast as it
can (the SDK logs each with a traceback); otherwise one tool, `get`."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from jsonrpc_stdio import _lock, answer_with, initialized, serve

LINE = {
    "text": "not json\n",
    "notification": '{"jsonrpc":"2.0","method":"notifications/progress","params":{"bogus":1}}\n',
}[os.environ.get("JUNK", "text")]


def flood() -> None:
    while True:
        with _lock:
            sys.stdout.write(LINE * 50)
            sys.stdout.flush()
        time.sleep(0.01)


def answer(message: dict[str, Any]) -> None:
    method = message.get("method")
    if method == "notifications/initialized":
        threading.Thread(target=flood, daemon=True).start()
        return
    if "id" not in message:
        return
    if method == "initialize":
        answer_with(message, initialized(message, "junk", tools={}))
    elif method == "tools/list":
        answer_with(message, {"tools": [{"name": "get", "inputSchema": {"type": "object"}}]})
    elif method == "tools/call":
        answer_with(message, {"content": [{"type": "text", "text": "ok"}]})
    else:
        answer_with(message, {} if method == "ping" else None)


serve(answer)
