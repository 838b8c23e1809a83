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

__all__ = ["ThrottledLog"]

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
