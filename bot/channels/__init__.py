"""Chat channels: each one turns its platform's traffic into IncomingMessage and back."""

from bot.channels.base import Channel, ChannelOutbox, Dispatch

__all__ = ["Channel", "ChannelOutbox", "Dispatch"]
