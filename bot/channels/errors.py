"""Errors a chat channel reports to the composition root."""

from __future__ import annotations

__all__ = ["ChannelStartError"]


class ChannelStartError(Exception):
    """A channel could not start (a refused token, a missing setting, a port in use).

    The message is one line for the person running Steward: what failed and which setting to
    check. The other channels keep running.
    """
