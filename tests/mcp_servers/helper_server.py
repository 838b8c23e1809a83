"""A stdio MCP server built with the SDK that starts a helper process (as one that drives a
browser or a language server does), writes the helper's pid to `helper.pid` in its working
folder, and exits of itself when its stdin closes, leaving the helper to whoever stops it."""

from __future__ import annotations

import os
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
    # as the host sees it: Steward may start a server in a PID namespace of its own, where
    # `helper.pid` is the namespace's id; /proc is the host's, and lists the child there
    me = os.readlink("/proc/self")
    (host,) = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    Path("helper.pid").write_text(host)
    server.run()
