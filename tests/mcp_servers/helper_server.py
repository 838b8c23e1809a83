"""A stdio MCP server built with the SDK that starts a helper process (as one that drives a
browser or a language server does), writes the helper's pid to `helper.pid` in its working
folder, and exits of itself when its stdin closes, leaving the helper to whoever stops it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mcp.server import MCPServer

server = MCPServer("helper", version="1.0")


@server.tool()
def ping() -> str:
    """Answers pong."""
    return "pong"


if __name__ == "__main__":
    helper = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    Path("helper.pid").write_text(str(helper.pid))
    server.run()
