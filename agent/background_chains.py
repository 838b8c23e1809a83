"""Background work chained per key: one key's jobs run one after another, keys side by side.

Memory upkeep after a turn uses it (one chat's extraction and compaction must not overlap: two
compactions at once would summarise the same messages twice), so the chat's next message never
waits behind them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

__all__ = ["BackgroundChains"]

log = logging.getLogger(__name__)


class BackgroundChains:
    def __init__(self, what: str) -> None:
        self._what = what  # names the tasks and the log lines
        self._running: set[asyncio.Task[None]] = set()
        self._last: dict[Hashable, asyncio.Task[None]] = {}
        """Each key's newest job: the next one of that key starts after it."""

    def add(self, key: Hashable, job: Callable[[], Awaitable[None]]) -> None:
        """Start `job` after the key's previous one, whatever its end; returns at once."""
        previous = self._last.get(key)
        task = asyncio.create_task(self._after(previous, job), name=f"{self._what}:{key}")
        self._last[key] = task
        self._running.add(task)
        task.add_done_callback(lambda done: self._done(key, done))

    @staticmethod
    async def _after(
        previous: asyncio.Task[None] | None, job: Callable[[], Awaitable[None]]
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # cancelling this one spares the one before
        await job()

    def _done(self, key: Hashable, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._last.get(key) is task:
            del self._last[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", self._what, exc_info=task.exception())

    async def settled(self) -> None:
        """Until every job added is done, those added meanwhile included."""
        while self._running:
            await asyncio.wait(list(self._running))

    async def stop(self, grace: float) -> None:
        """Let the jobs under way finish for `grace` seconds, then cancel the rest."""
        if not self._running:
            return
        _, pending = await asyncio.wait(list(self._running), timeout=grace)
        for task in pending:
            log.info("%s cut short by the stop (%s)", self._what, task.get_name())
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
