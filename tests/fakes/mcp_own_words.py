"""A raw JSON-RPC MCP server over stdio whose `initialize` answer carries WORDS as its protocol
version: the SDK's error quotes it ("Unsupported protocol version from the server: …")."""

from __future__ import annotations

import os
from typing import Any

from jsonrpc_stdio import answer_with, serve

WORDS = os.environ.get("WORDS", "")


def answer(message: dict[str, Any]) -> None:
    if "id" not in message:
        return
    if message.get("method") == "initialize":
        info = {"name": "odd", "version": "1"}
        answer_with(
            message, {"protocolVersion": WORDS, "capabilities": {"tools": {}}, "serverInfo": info}
        )
    else:
        answer_with(message, None)


serve(answer)
