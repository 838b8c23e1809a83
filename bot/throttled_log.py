"""Log lines anyone on the network can cause, at most one a minute for each kind.

A webhook path is published to the internet (a reverse proxy in front of Steward): a request
without Telegram's secret token, or an unsigned Slack request whose body cannot be read, wrote
a line (or a traceback) each, so anyone could fill the log, and on the console channel the
owner's terminal. One line a minute says how many came since the last.
"""

from __future__ import annotations

import logging
import time
from typing import Any

__all__ = ["MalformedRequests", "ThrottledLog"]

WINDOW = 60.0


class ThrottledLog:
    def __init__(self, logger: logging.Logger, window: float = WINDOW) -> None:
        self._log = logger
        self._window = window
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, message: str, *args: Any) -> None:
        """`message` (a format string: also the kind) now, or counted for the next line."""
        now = time.monotonic()
        last = self._last.get(message)
        if last is not None and now - last < self._window:
            self._held[message] = self._held.get(message, 0) + 1
            return
        self._last[message] = now
        held = self._held.pop(message, 0)
        if held:
            self._log.warning(message + " (and %d more since the last line)", *args, held)
        else:
            self._log.warning(message, *args)


class MalformedRequests(logging.Filter):
    """aiohttp's server logs every request it cannot parse (a bad header line, a chunk size
    that is not one) as an ERROR with a traceback, from anyone who reaches the port: here one
    line a minute at WARNING, naming the kind of fault, not its bytes. Its own faults (a 500)
    pass as they are."""

    def __init__(self, window: float = WINDOW) -> None:
        super().__init__()
        self._window = window
        self._last: float | None = None
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError  # the server has it loaded

        fault = record.exc_info[1] if record.exc_info else None
        if not isinstance(fault, HttpProcessingError) or not 400 <= (fault.code or 0) < 500:
            return True
        now = time.monotonic()
        if self._last is not None and now - self._last < self._window:
            self._held += 1
            return False
        self._last, held = now, self._held
        self._held = 0
        record.msg = "HTTP: a malformed request refused (%s, %d); %d more since the last line"
        record.args = (type(fault).__name__, fault.code, held)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
