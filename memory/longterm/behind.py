"""Vectors written behind: a bulk save (`save_many`, `save_messages`) commits its rows to SQLite
and returns; a background task embeds and writes their vectors a chunk at a time, so a turn
never waits for the embedder. Vectors a caller embedded already are written at once.

Every chunk is written holding the store's vector lock, the lock `forget` and supersession also
take, so no vector of a forgotten row or of an outdated text is left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import numpy as np

from memory.embedder import Embedder
from memory.longterm.lookups import RowLookups
from memory.longterm.records import MemoryRecords
from memory.longterm.types import NewMemory
from memory.longterm.vector_ops import embed_rows
from memory.longterm.vectors import VectorIndex

__all__ = ["VectorsBehind"]

log = logging.getLogger(__name__)

CHUNK = 128


class VectorsBehind:
    def __init__(
        self,
        records: MemoryRecords,
        lookups: RowLookups,
        lock: asyncio.Lock,
        attached: Callable[[], tuple[Embedder, VectorIndex] | None],
    ) -> None:
        self._records = records
        self._lookups = lookups
        self._lock = lock
        self._attached = attached
        self._task: asyncio.Task[int] | None = None

    def kick(self) -> None:
        """Start the background writer unless it runs already (or vectors are not attached:
        attach() embeds what is owed)."""
        if self._attached() is not None and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self.pending(), name="memory-vectors-behind")

    async def flush(self) -> int:
        task = self._task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        return await self.pending()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def write_given(
        self, rows: Sequence[NewMemory], ids: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Write vectors the caller embedded (ids 0: rows that were not inserted)."""
        async with self._lock:
            attached = self._attached()
            if attached is None:
                return
            by_user: dict[int, list[int]] = {}
            for position, (row, memory_id) in enumerate(zip(rows, ids, strict=True)):
                if memory_id:
                    by_user.setdefault(row.user_id, []).append(position)
            for user_id, positions in by_user.items():
                chosen = [ids[p] for p in positions]
                await asyncio.to_thread(attached[1].upsert, user_id, chosen, vectors[positions])
                await self._records.mark_indexed(chosen)

    async def pending(self) -> int:
        """Embed and write the vectors of rows saved without them; returns how many."""
        written = 0
        while True:
            async with self._lock:
                attached = self._attached()
                if attached is None:
                    return written
                rows = await self._lookups.unindexed(CHUNK)
                if not rows:
                    return written
                try:
                    await asyncio.to_thread(embed_rows, attached[0], attached[1], rows)
                except Exception:
                    log.warning(
                        "memory: vectors not written behind (retried at start)", exc_info=True
                    )
                    return written
                await self._records.mark_indexed([r[0] for r in rows])
                written += len(rows)
