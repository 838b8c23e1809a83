"""The core's way out: it posts through this port and never imports a chat channel."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from agent.errors import DeliveryError
from agent.types import Address, ApprovalPrompt

if TYPE_CHECKING:
    from agent.streaming import LivePreview

__all__ = ["DeliveryError", "Outbox", "Parts", "Switchboard", "parts_of", "sending_parts"]

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """How far one stored outgoing message got: a long one goes out in several parts, and
    `done` of them are delivered. The courier hands it to the channel for the message it sends
    (`sending_parts`); a channel that sends in parts resumes after `done` and reports each part
    it delivers, which `save` keeps with the message (a redelivery after a restart then sends
    only the parts not yet seen)."""

    text: str
    done: int = 0
    save: Callable[[int], Awaitable[None]] | None = None

    async def delivered(self, parts: int) -> None:
        """`parts` parts are out. Not kept (the database failing) is logged, not raised: the
        part is delivered, and the worst is that a restart sends it again."""
        self.done = parts
        if self.save is None:
            return
        try:
            await self.save(parts)
        except Exception:
            log.exception("could not note that %d parts of a message were delivered", parts)


_PARTS: ContextVar[Parts | None] = ContextVar("steward_parts", default=None)


@contextlib.contextmanager
def sending_parts(parts: Parts) -> Iterator[Parts]:
    """While the courier sends one message: its `Parts`, for the channel (`parts_of`)."""
    token = _PARTS.set(parts)
    try:
        yield parts
    finally:
        _PARTS.reset(token)


def parts_of(text: str) -> Parts | None:
    """The courier's record of the message being sent, when `text` is that message (None when
    it keeps none: the channel then remembers in memory alone)."""
    parts = _PARTS.get()
    return parts if parts is not None and parts.text == text else None


class Outbox(Protocol):
    async def send_text(self, address: Address, text: str) -> str | None:
        """Deliver text; returns the platform's message id where there is one."""
        ...

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        """Post an approval request with Approve / Deny controls."""
        ...

    async def mark_approval(self, address: Address, platform_message_id: str, text: str) -> None:
        """Show the decision on an approval request posted earlier (edit it, where possible)."""
        ...

    async def show_typing(self, address: Address) -> None:
        """Show that Steward is working (a no-op where the platform has no such signal)."""
        ...


class Switchboard:
    """The core's Outbox: routes each message to the channel its address names.

    Channels register when they start; until a channel is registered its messages fail with
    DeliveryError and stay queued in SQLite for redelivery.
    """

    def __init__(self) -> None:
        self._routes: dict[str, Outbox] = {}

    def register(self, name: str, outbox: Outbox) -> None:
        self._routes[name] = outbox

    def unregister(self, name: str) -> None:
        self._routes.pop(name, None)

    @property
    def channels(self) -> list[str]:
        return sorted(self._routes)

    def get(self, name: str) -> Outbox | None:
        """The running channel of that name (the core asks it for a message's files)."""
        return self._routes.get(name)

    def _route(self, address: Address) -> Outbox:
        outbox = self._routes.get(address.channel)
        if outbox is None:
            raise DeliveryError(f"channel {address.channel!r} is not running")
        return outbox

    async def send_text(self, address: Address, text: str) -> str | None:
        return await self._route(address).send_text(address, text)

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        return await self._route(address).send_approval(address, prompt)

    async def mark_approval(self, address: Address, platform_message_id: str, text: str) -> None:
        await self._route(address).mark_approval(address, platform_message_id, text)

    async def show_typing(self, address: Address) -> None:
        await self._route(address).show_typing(address)

    def open_live(self, address: Address) -> LivePreview | None:
        """A live preview of a reply at `address` (agent/streaming.py), where its channel can
        show one; None otherwise (also while the channel is not running)."""
        outbox = self._routes.get(address.channel)
        open_live = getattr(outbox, "open_live", None)
        return open_live(address) if open_live is not None else None
