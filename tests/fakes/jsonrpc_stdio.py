"""What the raw JSON-RPC MCP servers over stdio (tests/fakes/mcp_*.py) share: one message a
line, written whole under a lock (a flood thread writes beside the answers), the answer to a
request, and the loop that reads stdin. Imported by the scripts, which run from this folder."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["answer_with", "initialized", "send", "serve"]

_lock = threading.Lock()


def send(message: dict[str, Any]) -> None:
    with _lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def initialized(message: dict[str, Any], name: str, **capabilities: Any) -> dict[str, Any]:
    """The `initialize` result: the protocol version the client asked for, `capabilities`."""
    return {
        "protocolVersion": message["params"]["protocolVersion"],
        "capabilities": capabilities,
        "serverInfo": {"name": name, "version": "1"},
    }


def answer_with(message: dict[str, Any], result: dict[str, Any] | None) -> None:
    """`result` for a request, or "no such method" when it is None."""
    if result is None:
        error = {"code": -32601, "message": f"no method {message.get('method')}"}
        send({"jsonrpc": "2.0", "id": message["id"], "error": error})
    else:
        send({"jsonrpc": "2.0", "id": message["id"], "result": result})


def serve(answer: Callable[[dict[str, Any]], None]) -> None:
    for line in sys.stdin:
        if line.strip():
            answer(json.loads(line))
