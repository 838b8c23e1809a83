"""A broken stdio MCP server, spoken by hand (the SDK's own server keeps its link's stdout to
itself): it answers the handshake and lists one tool, `endless`, whose call writes to the
link without a line break, ever (a GiB at most, if nobody stops it)."""

from __future__ import annotations

import json
import sys


def answer(request: dict, result: dict) -> None:
    reply = {"jsonrpc": "2.0", "id": request["id"], "result": result}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        method = request.get("method")
        if "id" not in request:
            continue  # a notification
        if method == "initialize":
            answer(
                request,
                {
                    "protocolVersion": request["params"]["protocolVersion"],
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "endless", "version": "1"},
                },
            )
        elif method == "tools/list":
            tool = {
                "name": "endless",
                "description": "Writes without end.",
                "inputSchema": {"type": "object", "properties": {}},
            }
            answer(request, {"tools": [tool]})
        elif method == "tools/call":
            chunk = b"x" * (1024 * 1024)
            try:
                for _ in range(1024):
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
            except OSError:
                return
        else:
            answer(request, {})


if __name__ == "__main__":
    main()
