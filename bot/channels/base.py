"""The one interface every chat channel implements, and the Outbox that fans out to them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from agent.outbox import DeliveryError
from agent.types import Address, ApprovalPrompt, IncomingMessage

__all__ = ["Channel", "ChannelOutbox", "Dispatch"]

Dispatch = Callable[[IncomingMessage], Awaitable[None]]


class Channel(Protocol):
    """Receives messages (handing each to `dispatch`) and sends what the core posts."""

    name: str
    finished: asyncio.Event
    """Set when the channel has nothing more to receive (the console at end of input)."""

    async def start(self, dispatch: Dispatch) -> None:
        """Start receiving; returns once the channel is up."""
        ...

    async def stop(self) -> None: ...

    async def send_text(self, address: Address, text: str) -> str | None: ...

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None: ...

    async def show_typing(self, address: Address) -> None: ...


class ChannelOutbox:
    """Routes each outgoing message to the channel its address names."""

    def __init__(self, channels: list[Channel]) -> None:
        self._channels = {channel.name: channel for channel in channels}

    def _channel(self, address: Address) -> Channel:
        channel = self._channels.get(address.channel)
        if channel is None:
            raise DeliveryError(f"channel {address.channel!r} is not running")
        return channel

    async def send_text(self, address: Address, text: str) -> str | None:
        return await self._channel(address).send_text(address, text)

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        return await self._channel(address).send_approval(address, prompt)

    async def show_typing(self, address: Address) -> None:
        await self._channel(address).show_typing(address)
