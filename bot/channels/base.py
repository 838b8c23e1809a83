"""The one interface every chat channel implements."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from agent.types import Address, ApprovalPrompt, IncomingMessage

__all__ = ["Channel", "Dispatch"]

Dispatch = Callable[[IncomingMessage], Awaitable[None]]


class Channel(Protocol):
    """Receives messages (handing each to `dispatch`) and sends what the core posts.

    A channel is an `agent.outbox.Outbox` for its own addresses. Button presses on approval
    prompts are dispatched as the text `/approve <id>` or `/deny <id>` from the presser, so the
    router checks who pressed exactly as it checks a typed command.
    """

    name: str
    finished: asyncio.Event
    """Set when the channel has nothing more to receive (the console at end of input)."""

    async def start(self, dispatch: Dispatch) -> None:
        """Start receiving; returns once the channel is up."""
        ...

    async def stop(self) -> None: ...

    async def send_text(self, address: Address, text: str) -> str | None: ...

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None: ...

    async def mark_approval(
        self, address: Address, platform_message_id: str, text: str
    ) -> None: ...

    async def show_typing(self, address: Address) -> None: ...
