"""An MCP server (the official SDK's, over stdio) whose one tool always answers "input
required" (2026-07-28's InputRequiredResult: more input wanted before it completes). Every
call it receives is counted in `calls.count` in its working directory."""

from __future__ import annotations

from pathlib import Path

from mcp.server import MCPServer
from mcp_types import InputRequiredResult

calls = 0


def build() -> MCPServer:
    server = MCPServer("asks", version="1.0")

    def transfer(amount: int = 1) -> InputRequiredResult:
        global calls
        calls += 1
        Path("calls.count").write_text(str(calls))
        return InputRequiredResult(request_state=f"round-{calls}")

    server.add_tool(transfer, name="transfer", description="Transfer money.")
    return server


if __name__ == "__main__":
    build().run()
