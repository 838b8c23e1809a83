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
from typing import Any

__all__ = ["ChatSequencer", "Ticket"]

# Which chats the *current task* holds. A context is copied into every task and callback created
# from it (APScheduler's alarms, spawned jobs), so a key alone would let work started while a
# chat is held skip that chat's line later: each key records the task that holds it.
_HELD: ContextVar[dict[Hashable, asyncio.Task[Any] | None]] = ContextVar("steward_held_chats")


class Ticket:
    """A place in one chat's queue, taken synchronously when a message arrives."""

    def __init__(
        self, owner: ChatSequencer, key: Hashable, previous: asyncio.Future[None] | None
    ) -> None:
        self._owner = owner
        self._key = key
        self._previous = previous
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held: Token[dict[Hashable, asyncio.Task[Any] | None]] | None = None
        self._chained = False

    async def __aenter__(self) -> None:
        if self._previous is not None:
            await asyncio.shield(self._previous)
        held = {**_HELD.get({}), self._key: asyncio.current_task()}
        self._held = _HELD.set(held)

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
        """Give the place up; the chat's next work still waits for everything before it. A
        message dropped without entering (a stranger's, a duplicate, one not for Steward)
        must not let the next one overtake a turn still running ahead of both."""
        previous = self._previous
        if previous is not None and not previous.done():
            if not self._chained:
                self._chained = True
                previous.add_done_callback(lambda _: self.release())
            return
        if not self.done.done():
            self.done.set_result(None)
        self._owner._forget(self._key, self.done)


def chat_of(key: Hashable) -> Hashable:
    """An address's place in line is its chat's, whatever thread it is in: Slack gives each
    message of a direct chat a thread of its own (its ts), and two messages sent one after the
    other ran at once, the second without the first in its history."""
    channel, chat_id = getattr(key, "channel", None), getattr(key, "chat_id", None)
    return (channel, chat_id) if channel is not None and chat_id is not None else key


def _held_here(key: Hashable) -> bool:
    """Whether this very task holds `key`'s place (not a task started while it was held)."""
    holder = _HELD.get({}).get(key)
    return holder is not None and holder is asyncio.current_task()


class ChatSequencer:
    def __init__(self) -> None:
        self._tails: dict[Hashable, asyncio.Future[None]] = {}
        self.taken = 0
        """Places taken so far: whether anything ran since a given moment."""

    def take(self, key: Hashable) -> Ticket:
        """Queue behind whatever this chat is already doing. Call before any `await`."""
        self.taken += 1
        key = chat_of(key)
        ticket = Ticket(self, key, self._tails.get(key))
        self._tails[key] = ticket.done
        return ticket

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable | None) -> AsyncIterator[None]:
        """Hold `key`'s place for work that did not arrive as a message (a scheduled job, a
        resumed turn); no wait when this task already holds it, or when there is no chat."""
        if key is None or _held_here(chat_of(key)):
            yield
            return
        ticket = self.take(key)
        try:
            async with ticket:
                yield
        finally:
            ticket.release()

    def holds_other(self, key: Hashable | None) -> bool:
        """Whether this task holds the place of a chat other than `key`'s. Such a task must
        not wait for `key`'s place: the work ahead there may be waiting for this task's chat
        (R205: `/approve` typed in each of two chats for the other's card left both waiting
        on each other for good)."""
        here = chat_of(key) if key is not None else None
        task = asyncio.current_task()
        return any(k != here and by is task for k, by in _HELD.get({}).items())

    def _forget(self, key: Hashable, done: asyncio.Future[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    def __len__(self) -> int:
        return len(self._tails)

    def in_flight(self) -> int:
        """Chats with a turn running or waiting (memory's background work yields to them)."""
        return len(self._tails)

    async def quiet(self) -> None:
        """Until no chat has a turn running or waiting, those that came in meanwhile included."""
        while self._tails:
            await asyncio.gather(*(asyncio.shield(done) for done in list(self._tails.values())))
