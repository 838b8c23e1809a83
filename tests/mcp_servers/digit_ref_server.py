"""A server whose one tool's input schema has a local $ref with a Unicode digit
("#/allOf/²"): valid JSON, valid MCP, a $ref that resolves nowhere."""

from __future__ import annotations

import sys

from mcp.server import MCPServer


def build(poison: bool) -> MCPServer:
    server = MCPServer("digits", version="1.0")

    def lookup(q: str) -> str:
        return f"{q}: found"

    server.add_tool(lookup, name="lookup", description="Look a word up.")
    if poison:
        info = server._tool_manager.get_tool("lookup")
        info.parameters = {
            "type": "object",
            "allOf": [{}],
            "properties": {"q": {"$ref": "#/allOf/\u00b2"}},
        }
    return server


if __name__ == "__main__":
    build("--poison" in sys.argv).run()
