"""Vectors written behind: a bulk save (`save_many`, `save_messages`) commits its rows to SQLite
and returns; a background task embeds and writes their vectors a chunk at a time, so a turn
never waits for the embedder. Vectors a caller embedded already are written at once.

Replies first, in batches: while chats have turns in flight (`yield_to`), and until no row has
been owed for QUIET seconds, the writer waits, so rows of many turns are embedded in one call and
upserted together (UPSERT_ROWS at a time), and a query embedding never competes with them for
the CPU; it runs anyway after MAX_WAIT seconds or MAX_OWED rows, so it never falls behind.
Batching matters beyond the embedder: a Chroma upsert costs ~6 ms of CPU whatever its size (1 to
20 vectors) and holds the GIL throughout, so one upsert per turn stalled the loop once a turn. A
text embedded lately (the turn's message, embedded as its recall query) is not embedded again
(`TextVectors`). Keyword search finds a row at once regardless.

Every chunk is written holding the store's vector lock, the lock `forget` and supersession also
take, so no vector of a forgotten row or of an outdated text is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from memory.embedder import Embedder
from memory.longterm.lookups import RowLookups
from memory.longterm.records import MemoryRecords
from memory.longterm.text_vectors import TextVectors
from memory.longterm.types import NewMemory
from memory.longterm.vectors import VectorIndex

__all__ = ["UPSERT_ROWS", "VectorsBehind", "upserts"]

log = logging.getLogger(__name__)

# A burst (200 chats x 3 turns, bench) owes ~1,200 rows: one chunk holds many users' rows,
# embedded in one call and upserted a user's UPSERT_ROWS at a time. Writing them mid-burst (at
# 5 s, 256 rows) took the two cores for ~3.5 s while replies waited; now they wait up to 10 s,
# and keyword search finds them at once.
CHUNK = 512
MAX_WAIT = 10.0  # s the writer waits for turns in flight, at most
MAX_OWED = 2048  # rows owed that make it run anyway
POLL = 0.05  # s between looks at the turns in flight
QUIET = 1.0  # s without a new row owed before the writer runs (a chat between turns is quick)
# Vectors per Chroma upsert. An upsert holds the GIL throughout: ~6 ms plus ~1 ms a vector
# into a 50,000-vector index (600 vectors: 390 ms, a spinning thread got 2 % of its rate).
# Written whole, a chunk written under steady load (MAX_WAIT) froze the loop for that long:
# the bench's turn p95 at 10,000 / 100,000 memories was ~160 ms. In upserts of 16 (median
# 20 ms) the loop runs between them: p95 45 / 41-137 ms, CPU per turn unchanged. What is left
# is Chroma's own: every so often one upsert flushes its index (0.1-0.7 s, measured).
UPSERT_ROWS = 16
# The writer's embeddings run on a thread of their own at this nice value (Linux sets it per
# thread): background work, it takes a core only when the loop, the query thread and SQLite's
# leave one. Its Chroma upserts stay on the default executor at normal priority: an upsert
# holds the GIL, and a thread that holds it must not wait for the CPU.
BACKGROUND_NICE = 10


def _background_priority() -> None:
    """BACKGROUND_NICE below the thread that started it (a Steward already niced keeps the
    difference); on another system, or where it is not allowed, left as it is."""
    with contextlib.suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        here = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, here + BACKGROUND_NICE))


class VectorsBehind:
    def __init__(
        self,
        records: MemoryRecords,
        lookups: RowLookups,
        lock: asyncio.Lock,
        attached: Callable[[], tuple[Embedder, VectorIndex] | None],
        texts: TextVectors,
    ) -> None:
        self._records = records
        self._lookups = lookups
        self._lock = lock
        self._attached = attached
        self._texts = texts
        self._task: asyncio.Task[int] | None = None
        self._busy: Callable[[], int] | None = None
        self._owed = 0  # rows kicked since the writer last ran
        self._kicked = 0.0  # time.monotonic() of the last kick
        self._hurry = asyncio.Event()
        self._pool: ThreadPoolExecutor | None = None  # the writer's embedding thread

    def yield_to(self, busy: Callable[[], int] | None) -> None:
        """`busy()`: how many turns are in flight; the writer waits while it is above 0."""
        self._busy = busy

    def kick(self, rows: int = 1) -> None:
        """Start the background writer unless it runs already (or vectors are not attached:
        attach() embeds what is owed)."""
        self._owed += rows
        self._kicked = time.monotonic()
        if self._attached() is not None and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._behind(), name="memory-vectors-behind")

    async def _behind(self) -> int:
        started = time.monotonic()
        while (
            self._busy is not None
            and (self._busy() > 0 or time.monotonic() - self._kicked < QUIET)
            and self._owed < MAX_OWED
            and time.monotonic() - started < MAX_WAIT
            and not self._hurry.is_set()
        ):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), POLL)
        return await self.pending()

    async def settle(self) -> None:
        """Nothing in flight (a search between turns): let the waiting writer finish first, so
        what was just said is found by meaning too."""
        task = self._task
        if task is None or task.done() or self._busy is None or self._busy() > 0:
            return
        self._hurry.set()
        try:
            await asyncio.gather(asyncio.shield(task), return_exceptions=True)
        finally:
            self._hurry.clear()

    async def flush(self) -> int:
        task = self._task
        if task is not None:
            self._hurry.set()
            try:
                await asyncio.gather(task, return_exceptions=True)
            finally:
                self._hurry.clear()
        return await self.pending()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def _embed(
        self, embedder: Embedder, rows: list[tuple[int, int, str]], known: list[np.ndarray | None]
    ) -> np.ndarray:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                1, thread_name_prefix="memory-behind", initializer=_background_priority
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _embed_rows, embedder, rows, known)

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
                await self._records.mark_indexed(chosen, user_id=user_id)

    async def pending(self) -> int:
        """Embed and write the vectors of rows saved without them; returns how many."""
        written = 0
        while True:
            async with self._lock:
                attached = self._attached()
                if attached is None:
                    return written
                self._owed = 0
                rows = await self._lookups.unindexed(CHUNK)
                if not rows:
                    return written
                try:
                    texts = [text for _, _, text in rows]
                    known = await self._texts.known(texts)
                    vectors = await self._embed(attached[0], rows, known)
                    for text, vector in zip(texts, vectors, strict=True):
                        self._texts.put(text, vector)
                    for user_id, ids, part in upserts(rows, vectors, UPSERT_ROWS):
                        await asyncio.to_thread(attached[1].upsert, user_id, ids, part)
                except Exception:
                    log.warning(
                        "memory: vectors not written behind (retried at start)", exc_info=True
                    )
                    return written
                for user_id in {r[1] for r in rows}:
                    await self._records.mark_indexed(
                        [r[0] for r in rows if r[1] == user_id], user_id=user_id
                    )
                written += len(rows)


def _embed_rows(
    embedder: Embedder, rows: list[tuple[int, int, str]], known: list[np.ndarray | None]
) -> np.ndarray:
    """Every row's vector: those not known embedded in one call (a worker thread)."""
    missing = [p for p, vector in enumerate(known) if vector is None]
    fresh = embedder.embed([rows[p][2] for p in missing]) if missing else None
    vectors = np.empty((len(rows), embedder.dim), dtype=np.float32)
    for position, vector in enumerate(known):
        if vector is not None:
            vectors[position] = vector
    if fresh is not None:
        vectors[missing] = fresh
    return vectors


def upserts(
    rows: Sequence[tuple[int, int, str]], vectors: np.ndarray, size: int
) -> Iterator[tuple[int, list[int], np.ndarray]]:
    """(user id, memory ids, their vectors) for each upsert: a user's rows in order, `size` at
    most in one."""
    by_user: dict[int, list[int]] = {}
    for position, (_, user_id, _) in enumerate(rows):
        by_user.setdefault(user_id, []).append(position)
    for user_id, positions in by_user.items():
        for start in range(0, len(positions), size):
            chunk = positions[start : start + size]
            yield user_id, [rows[p][0] for p in chunk], vectors[chunk]
