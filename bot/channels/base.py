"""The one interface every chat channel implements."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from agent.types import Address, ApprovalPrompt, IncomingMessage

__all__ = ["BackgroundTasks", "Channel", "Dispatch"]

log = logging.getLogger(__name__)


class Dispatch(Protocol):
    """The router's `dispatch`: handles a message to the end, and sets `stored` once the
    message is committed (or never will be), before which a platform is not told that the
    message was received."""

    async def __call__(
        self, message: IncomingMessage, *, stored: asyncio.Event | None = None
    ) -> None: ...


class Channel(Protocol):
    """Receives messages (handing each to `dispatch`) and sends what the core posts.

    A channel is an `agent.outbox.Outbox` for its own addresses. A press on an approval
    prompt's button is dispatched as a typed `Press` (the approval id, the choice, and the
    pressed message's platform id: what `send_approval` returned for that card) from the
    presser, so the router checks who pressed exactly as it checks a typed command; its `text`
    is the command it stands for (`/approve <id>`), for the chat's log. A command the platform
    delivers already split (a Slack slash command) comes as a `CommandCall`; typed text is
    parsed by the router. Everything sent or edited goes out with the platform's link previews /
    unfurling off.
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


class BackgroundTasks:
    """Work a channel starts and does not wait for (delivering an update, answering a button):
    kept referenced until done, failures logged, and given a grace period at stop."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", self._what, exc_info=task.exception())

    async def drain(self, grace: float = 5.0) -> None:
        """Let running work finish for up to `grace` seconds, then cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
