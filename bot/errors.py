"""Every exception `bot/` raises on purpose, in one place.

Exception
├── ChannelStartError  a channel could not start (the others keep running)
├── HttpServerError    the webhook server could not listen (port taken, bad host)
└── UsageError         a command's arguments do not fit (answered with usage and example)
"""

from __future__ import annotations

__all__ = ["ChannelStartError", "HttpServerError", "UsageError"]


class ChannelStartError(Exception):
    """A channel could not start (a refused token, a missing setting, a port in use).

    The message is one line for the person running Steward: what failed and which setting to
    check. The other channels keep running.
    """


class HttpServerError(Exception):
    """The server could not listen (port taken, bad host)."""


class UsageError(Exception):
    """The arguments do not fit; the router answers with the command's usage and example."""

    def __init__(self, problem: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
