"""Per-chat ordering: one chat's work is done in arrival order, chats run concurrently.

Every turn takes its chat's place in line: a message (the router takes a ticket the moment it
arrives), a scheduled job, and a turn resumed after an approval or its expiry. A task that
already holds a chat's place (the owner's `/approve` resuming a turn of the same chat) goes on
without queueing behind itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable
from contextvars import ContextVar, Token
from types import TracebackType

__all__ = ["ChatSequencer", "Ticket"]

_HELD: ContextVar[frozenset[Hashable]] = ContextVar("steward_held_chats", default=frozenset())


class Ticket:
    """A place in one chat's queue, taken synchronously when a message arrives."""

    def __init__(
        self, owner: ChatSequencer, key: Hashable, previous: asyncio.Future[None] | None
    ) -> None:
        self._owner = owner
        self._key = key
        self._previous = previous
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held: Token[frozenset[Hashable]] | None = None

    async def __aenter__(self) -> None:
        if self._previous is not None:
            await asyncio.shield(self._previous)
        self._held = _HELD.set(_HELD.get() | {self._key})

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._held is not None:
            _HELD.reset(self._held)
            self._held = None
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

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable | None) -> AsyncIterator[None]:
        """Hold `key`'s place for work that did not arrive as a message (a scheduled job, a
        resumed turn); no wait when this task already holds it, or when there is no chat."""
        if key is None or key in _HELD.get():
            yield
            return
        ticket = self.take(key)
        try:
            async with ticket:
                yield
        finally:
            ticket.release()

    def _forget(self, key: Hashable, done: asyncio.Future[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    def __len__(self) -> int:
        return len(self._tails)
