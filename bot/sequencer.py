"""Per-chat ordering: one chat's messages are handled in arrival order, chats run concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from types import TracebackType

__all__ = ["ChatSequencer", "Ticket"]


class Ticket:
    """A place in one chat's queue, taken synchronously when a message arrives."""

    def __init__(
        self, owner: ChatSequencer, key: Hashable, previous: asyncio.Future[None] | None
    ) -> None:
        self._owner = owner
        self._key = key
        self._previous = previous
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def __aenter__(self) -> None:
        if self._previous is not None:
            await asyncio.shield(self._previous)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        self._owner._forget(self._key, self.done)


class ChatSequencer:
    def __init__(self) -> None:
        self._tails: dict[Hashable, asyncio.Future[None]] = {}

    def take(self, key: Hashable) -> Ticket:
        """Queue behind whatever this chat is already doing. Call before any `await`."""
        ticket = Ticket(self, key, self._tails.get(key))
        self._tails[key] = ticket.done
        return ticket

    def _forget(self, key: Hashable, done: asyncio.Future[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    def __len__(self) -> int:
        return len(self._tails)
