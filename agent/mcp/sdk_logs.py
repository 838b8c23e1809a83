"""What the MCP SDK's client logs, kept within bounds.

The SDK logs an ERROR with a whole traceback for each line a stdio server writes that is not
JSON-RPC, and for each event-stream message an HTTP server sends that does not parse: a server
writing junk grew Steward's log by 76 GB a day, all of it passed on (review 117). Each of its
loggers passes at most BURST records a WINDOW (the first with its traceback), then says once
how many it left out. Its HTTP client logs the URL (a `${VAR}` in its query is a secret) and
every message at DEBUG: those records are never passed on.
"""

from __future__ import annotations

import logging
import time

__all__ = ["quiet_sdk_logs"]

BURST = 5
WINDOW = 60.0
LOGGERS = (
    "client",  # the SDK's session logs under this bare name (a traceback a bad notification)
    "mcp.client.client",
    "mcp.client.stdio",
    "mcp.client.streamable_http",
    "mcp.client.sse",
    "mcp.client.caching",
    "mcp.shared.dispatcher",
    "mcp.shared.jsonrpc_dispatcher",
    "mcp.shared.direct_dispatcher",
    "mcp.shared.tool_name_validation",
    "mcp.os.posix.utilities",
)

log = logging.getLogger(__name__)


class _Bounded(logging.Filter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.logger = name
        self.started = -WINDOW
        self.passed = 0
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return False
        now = time.monotonic()
        if now - self.started >= WINDOW:
            if self.dropped:
                log.warning(
                    "%s: %d more records like these were left out in the last %.0f s",
                    self.logger,
                    self.dropped,
                    now - self.started,
                )
            self.started, self.passed, self.dropped = now, 0, 0
        self.passed += 1
        if self.passed > BURST:
            self.dropped += 1
            return False
        if self.passed > 1:  # the first keeps its traceback; the rest say what it was
            record.exc_info, record.exc_text = None, None
        return True


def quiet_sdk_logs() -> None:
    """Bound the SDK's client loggers (once; a second call adds nothing)."""
    known = [n for n in logging.root.manager.loggerDict if n.startswith(("mcp.", "mcp_"))]
    for name in dict.fromkeys([*LOGGERS, *known]):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Bounded) for f in logger.filters):
            logger.addFilter(_Bounded(name))
