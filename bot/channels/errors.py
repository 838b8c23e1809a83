"""Errors a chat channel reports to the composition root (defined in `bot/errors.py`)."""

from __future__ import annotations

from bot.errors import ChannelStartError

__all__ = ["ChannelStartError"]
