"""Chat channels: each one turns its platform's traffic into IncomingMessage and back."""

from bot.channels.base import Channel, Dispatch

__all__ = ["Channel", "Dispatch"]
