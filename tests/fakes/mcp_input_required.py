"""An MCP server (the official SDK's, over stdio) whose tools answer "input required" with a
state only (2026-07-28: "call again with this state", no input asked for). `lookup` does so
once, then answers; `transfer` does so every time. Every call either receives is counted in
`calls.count` in its working directory."""

from __future__ import annotations

from pathlib import Path

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp_types import InputRequiredResult

calls = 0


def _counted() -> int:
    global calls
    calls += 1
    Path("calls.count").write_text(str(calls))
    return calls


def build() -> MCPServer:
    server = MCPServer("asks", version="1.0")

    def lookup(ctx: Context, q: str = "x") -> InputRequiredResult | str:
        _counted()
        if ctx.request_state is None:
            return InputRequiredResult(request_state="queued")
        return f"answer for {q}"

    def transfer(amount: int = 1) -> InputRequiredResult:
        return InputRequiredResult(request_state=f"round-{_counted()}")

    server.add_tool(lookup, name="lookup", description="Look something up.")
    server.add_tool(transfer, name="transfer", description="Transfer money.")
    return server


if __name__ == "__main__":
    build().run()
