"""Every exception `bot/` raises on purpose, in one place.

Exception
├── ChannelStartError  a channel could not start (the others keep running)
├── HttpServerError    the webhook server could not listen (port taken, bad host)
├── UsageError         a command's arguments do not fit (answered with usage and example)
└── RuntimeError
    ├── BackupError    a backup or restore that cannot be done (one line why)
    └── CliError       a `steward` command that cannot do what was asked (one line)

Here, not beside the code raising them, so `steward`'s error handler names them without
importing that code (the backup module alone loads the console channel: ~0.5 s a command).
"""

from __future__ import annotations

__all__ = ["BackupError", "ChannelStartError", "CliError", "HttpServerError", "UsageError"]


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


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why, in one line."""


class CliError(RuntimeError):
    """A command that cannot do what was asked; its message is the one line shown."""
