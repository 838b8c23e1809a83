"""A stdio MCP server that logs without measure to stderr (debug logging left on, a loop),
built with the SDK's server API: `spew` writes `megabytes` of lines and then `END-MARK`."""

from __future__ import annotations

import sys

from mcp.server import MCPServer

server = MCPServer("spew", version="1.0")


@server.tool()
def spew(megabytes: int = 8) -> str:
    """Write debug lines to stderr."""
    line = "DEBUG " + "x" * 1017 + "\n"  # 1 KiB
    for _ in range(megabytes * 1024):
        sys.stderr.write(line)
    sys.stderr.write("END-MARK\n")
    sys.stderr.flush()
    return "spewed"


if __name__ == "__main__":
    server.run()
