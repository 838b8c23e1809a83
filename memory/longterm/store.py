"""Long-term memory: SQLite records (the truth) + Chroma vectors, searched together.

Retrieval is hybrid: the user's nearest vectors in Chroma and their best FTS5 keyword matches are
fused by reciprocal rank, then scaled by importance and recency (`ranking.py`). Until vectors
are attached (the embedder and Chroma load in the background at start-up) and whenever no
embedder can load, search is keyword-only and says so in its `mode`.

Consistency: a memory is committed to SQLite first, then its vector is written; forgetting
deletes from SQLite first, then from Chroma. A crash in between leaves Chroma missing a vector or
holding a stale one; `reconcile()` (run when vectors are attached) re-embeds the missing and
deletes the stale, so the two agree again. Chroma holds vectors of memories in force only.

Supersession: a newer memory retires older ones (kept in SQLite, left out of retrieval) when the
model names them (`replaces`), when a fact or preference has the same `subject` key, or when it
restates one almost word for word (cosine >= `duplicate_similarity` and the same numbers).
Outside (untrusted) content never retires what the owner said (trusted).

Chroma and the embedder are blocking: every call to them runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from memory.clock import Clock
from memory.db import Database
from memory.embedder import Embedder
from memory.longterm.compactions import CompactionLog
from memory.longterm.ranking import SearchMode, SearchResult, Weights, fuse
from memory.longterm.records import MemoryRecords
from memory.longterm.types import Kind, Memory, NewMemory, Saved, Trust
from memory.longterm.vectors import VectorIndex

if TYPE_CHECKING:
    from memory.stores import Stores

__all__ = ["LongTermMemory", "ReconcileReport"]

log = logging.getLogger(__name__)

QUERY_CACHE = 256  # query embeddings kept
# More unindexed memories than this for one user (a database from before the vector journal, a
# bulk import): compare every id with Chroma rather than embed them all again.
FULL_CHECK_AFTER = 1000

_SLOTTED = (Kind.FACT, Kind.PREFERENCE)  # kinds where one subject holds one current value
_NO_AUTO = (Kind.EPISODE, Kind.GOAL_NOTE, Kind.BRIEFING)  # retired only when named


@dataclass
class ReconcileReport:
    added: int = 0
    removed: int = 0
    users: int = 0
    dropped_collections: list[int] = field(default_factory=list)
    compared: list[int] = field(default_factory=list)  # users whose every id was listed

    def __iadd__(self, other: ReconcileReport) -> ReconcileReport:
        self.added += other.added
        self.removed += other.removed
        self.users = max(self.users, other.users)
        self.dropped_collections += other.dropped_collections
        self.compared += other.compared
        return self


class LongTermMemory:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        weights: Weights | None = None,
        query_cache: int = QUERY_CACHE,
        full_check_after: int = FULL_CHECK_AFTER,
    ) -> None:
        """`query_cache`: how many query embeddings to keep (0: none, as the benchmark wants);
        `full_check_after`: see FULL_CHECK_AFTER."""
        self.records = MemoryRecords(db, clock)
        self.compactions = CompactionLog(db, clock)
        self.weights = weights or Weights()
        self._clock = clock
        self._embedder: Embedder | None = None
        self._index: VectorIndex | None = None
        self._ready = False
        self._vector_lock = asyncio.Lock()
        # The same text is often looked up twice in a turn (the context, then memory_search or
        # extraction): its embedding is kept for a while.
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache = query_cache
        self._full_check_after = full_check_after

    @classmethod
    def from_stores(
        cls, stores: Stores, clock: Clock, *, full_check_after: int = FULL_CHECK_AFTER
    ) -> LongTermMemory:
        """Long-term memory in the database the other stores use."""
        return cls(stores.db, clock, full_check_after=full_check_after)

    # -- vectors ------------------------------------------------------------------------------

    @property
    def semantic(self) -> bool:
        """True once vectors are attached and reconciled: searches are hybrid from then on."""
        return self._ready

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder if self._ready else None

    @property
    def index(self) -> VectorIndex | None:
        return self._index if self._ready else None

    async def attach(self, embedder: Embedder, index: VectorIndex) -> ReconcileReport:
        """Start using vectors: bring Chroma in line with SQLite, then switch to hybrid search.

        Saves made while this runs are caught by a second, short pass that runs with writes
        held, so nothing saved or forgotten meanwhile is missed."""
        self._embedder, self._index = embedder, index
        self._query_vectors.clear()
        report = await self.reconcile()
        async with self._vector_lock:
            self._ready = True
            report += await self.reconcile()
        return report

    async def close(self) -> None:
        async with self._vector_lock:
            self._ready = False
            index, self._index = self._index, None
        if index is not None:
            await asyncio.to_thread(index.close)

    async def reconcile(self) -> ReconcileReport:
        """Make Chroma hold exactly the vectors of the memories in force in SQLite.

        The journal (migration 0006) says what changed since Chroma was last in step: pending
        removals are applied and unindexed memories embedded. Then each user's count in Chroma
        is compared with SQLite's, and only a user whose counts differ (a Chroma directory from
        elsewhere, another embedder, a crash between the two writes) has every id compared."""
        index, embedder = self._index, self._embedder
        report = ReconcileReport()
        if index is None or embedder is None:
            return report
        for user_id, ids in (await self.records.pending_removals()).items():
            await asyncio.to_thread(index.delete, user_id, ids)
            await self.records.clear_removals(ids)
            report.removed += len(ids)
        in_sqlite = set(await self.records.users())
        in_chroma = set(await asyncio.to_thread(index.users))
        report.users = len(in_sqlite)
        for user_id in sorted(in_sqlite | in_chroma):
            missing = await self.records.unindexed_ids(user_id)
            if len(missing) <= self._full_check_after:
                report.added += await self._add_vectors(user_id, missing)
                held = await asyncio.to_thread(index.count, user_id)
                if held == await self.records.indexed_count(user_id):
                    continue
            report += await self._compare_all(user_id)
        if report.added or report.removed:
            log.info(
                "memory vectors reconciled: %d added, %d removed", report.added, report.removed
            )
        return report

    async def _compare_all(self, user_id: int) -> ReconcileReport:
        """List every id Chroma holds for the user and repair both ways (the slow path)."""
        index = self._index
        assert index is not None
        report = ReconcileReport(compared=[user_id])
        want = await self.records.active_ids(user_id)
        have = await asyncio.to_thread(index.ids, user_id)
        if not want and have:
            await asyncio.to_thread(index.drop, user_id)
            report.removed += len(have)
            report.dropped_collections.append(user_id)
            return report
        stale = sorted(have - want)
        if stale:
            await asyncio.to_thread(index.delete, user_id, stale)
            report.removed += len(stale)
        report.added += await self._add_vectors(user_id, sorted(want - have))
        await self.records.mark_indexed(sorted(want & have))
        return report

    async def _add_vectors(self, user_id: int, ids: Sequence[int]) -> int:
        """Embed and write these memories' vectors, marking each chunk indexed once written."""
        index, embedder = self._index, self._embedder
        assert index is not None and embedder is not None
        added = 0
        for start in range(0, len(ids), 256):
            texts = await self.records.texts(ids[start : start + 256])
            chunk = [i for i in ids[start : start + 256] if i in texts]
            await asyncio.to_thread(
                _embed_and_upsert, embedder, index, user_id, chunk, [texts[i] for i in chunk]
            )
            await self.records.mark_indexed(chunk)
            added += len(chunk)
        return added

    async def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        embedder = self.embedder
        if embedder is None:
            return None
        return await asyncio.to_thread(embedder.embed, list(texts))

    # -- writing ------------------------------------------------------------------------------

    async def save(self, new: NewMemory, *, vector: np.ndarray | None = None) -> Saved:
        """Save a memory (see the module docstring for supersession). `vector`: its embedding,
        when the caller has it already (a batch embedded at once)."""
        trust = new.resolved_trust
        same = await self.records.same_text(new.user_id, new.text)
        if same is not None and (same.trust is Trust.TRUSTED or trust is Trust.UNTRUSTED):
            return Saved(same, duplicate=True)
        vector, similar = await self._similar(new, vector)
        targets: set[int] = set(new.replaces)
        if same is not None:
            targets.add(same.id)  # the owner now says what outside content said: theirs wins
        if new.kind in _SLOTTED and new.subject.strip():
            targets.update(
                m.id for m in await self.records.same_subject(new.user_id, new.subject, _SLOTTED)
            )
        close = [i for i, sim in similar if sim >= self.weights.duplicate_similarity]
        found = await self.records.get_many(new.user_id, [*targets, *close])
        if new.kind not in _NO_AUTO:  # a restatement: same words nearly, and the same numbers
            targets.update(
                i for i in close if i in found and _same_numbers(found[i].text, new.text)
            )
        allowed: list[Memory] = []
        refused: list[int] = []
        for memory_id in sorted(targets):
            old = found.get(memory_id)
            if old is None or (trust is Trust.UNTRUSTED and old.trust is Trust.TRUSTED):
                refused.append(memory_id)
            elif old.kind in _NO_AUTO and memory_id not in new.replaces:
                continue
            else:
                allowed.append(old)
        refused = [i for i in refused if i in new.replaces]
        memory = await self.records.insert(new, supersede=[m.id for m in allowed])
        retired = await self.records.get_many(
            new.user_id, [m.id for m in allowed], active_only=False
        )
        superseded = tuple(
            retired[m.id] for m in allowed if retired.get(m.id, m).superseded_by == memory.id
        )
        await self._write_vectors(memory, vector, [m.id for m in superseded])
        return Saved(memory, superseded, refused=tuple(refused))

    async def _similar(
        self, new: NewMemory, vector: np.ndarray | None
    ) -> tuple[np.ndarray | None, list[tuple[int, float]]]:
        embedder, index = self.embedder, self.index
        if embedder is None or index is None:
            return None, []
        try:
            if vector is not None:
                found = await asyncio.to_thread(index.query, new.user_id, vector, 5)
                return vector, found
            return await asyncio.to_thread(_embed_and_query, embedder, index, new.user_id, new.text)
        except Exception:
            log.warning("memory: similarity check failed; saving without it", exc_info=True)
            return None, []

    async def _write_vectors(
        self, memory: Memory, vector: np.ndarray | None, retired: list[int]
    ) -> None:
        async with self._vector_lock:
            if not self._ready or self._index is None or self._embedder is None:
                return  # attach() will pick this memory up
            try:
                await asyncio.to_thread(
                    _index_write, self._embedder, self._index, memory, vector, retired
                )
                await self.records.mark_indexed([memory.id])
                await self.records.clear_removals(retired)
            except Exception:
                log.warning(
                    "memory #%d: vector not written (kept in SQLite; restored at the next start)",
                    memory.id,
                    exc_info=True,
                )

    async def forget(self, user_id: int, memory_id: int) -> Memory | None:
        """Delete a memory from SQLite and Chroma both; None when the user has no such memory."""
        memory = await self.records.delete(user_id, memory_id)
        if memory is None:
            return None
        async with self._vector_lock:
            if self._ready and self._index is not None:
                try:
                    await asyncio.to_thread(self._index.delete, user_id, [memory_id])
                    await self.records.clear_removals([memory_id])
                except Exception:
                    log.warning("memory #%d: vector not deleted yet", memory_id, exc_info=True)
        return memory

    # -- reading ------------------------------------------------------------------------------

    async def search(
        self,
        user_id: int,
        query: str,
        k: int = 5,
        *,
        mode: SearchMode = "hybrid",
        min_similarity: float | None = None,
        kinds: Sequence[Kind] | None = None,
    ) -> SearchResult:
        """The user's `k` best memories in force for `query`. `mode` is what was asked; the
        result's `mode` is what ran (keyword-only while vectors are not ready)."""
        weights = self.weights
        n = max(weights.candidates, k)
        semantic = self._ready and mode in ("hybrid", "vector")
        used: SearchMode = mode if semantic else "keyword"
        keyword, vector = await asyncio.gather(
            self.records.keyword(user_id, query, n) if used != "vector" else _nothing(),
            self._vector_search(user_id, query, n) if semantic else _nothing(),
        )
        fusion = fuse(vector, keyword, weights, min_similarity=min_similarity)
        found = await self.records.get_many(user_id, fusion.scores)
        hits = fusion.hits(found, self._clock.now(), weights, kinds)
        return SearchResult(hits[:k], used)

    async def _vector_search(self, user_id: int, query: str, n: int) -> list[tuple[int, float]]:
        embedder, index = self.embedder, self.index
        if embedder is None or index is None or not query.strip():
            return []
        try:
            vector = self._query_vectors.get(query)
            if vector is None:
                vector = (await asyncio.to_thread(embedder.embed, [query]))[0]
                self._query_vectors[query] = vector
                while len(self._query_vectors) > self._query_cache:
                    self._query_vectors.popitem(last=False)
            else:
                self._query_vectors.move_to_end(query)
            found = await asyncio.to_thread(index.query, user_id, vector, n)
        except Exception:
            log.warning("memory: vector search failed; keyword results only", exc_info=True)
            return []
        return found

    async def recent(self, user_id: int, limit: int = 10) -> list[Memory]:
        return await self.records.recent(user_id, limit)

    async def get(self, user_id: int, memory_id: int) -> Memory | None:
        return await self.records.get(user_id, memory_id)


def _embed_and_query(
    embedder: Embedder, index: VectorIndex, user_id: int, text: str, n: int = 5
) -> tuple[np.ndarray, list[tuple[int, float]]]:
    vector = embedder.embed([text])[0]
    return vector, index.query(user_id, vector, n)


def _embed_and_upsert(
    embedder: Embedder, index: VectorIndex, user_id: int, ids: list[int], texts: list[str]
) -> None:
    if ids:
        index.upsert(user_id, ids, embedder.embed(texts))


def _index_write(
    embedder: Embedder,
    index: VectorIndex,
    memory: Memory,
    vector: np.ndarray | None,
    retired: list[int],
) -> None:
    if vector is None:
        vector = embedder.embed([memory.text])[0]
    index.upsert(memory.user_id, [memory.id], vector.reshape(1, -1))
    index.delete(memory.user_id, retired)


async def _nothing() -> list[tuple[int, float]]:
    return []


def _same_numbers(a: str, b: str) -> bool:
    """Near-identical sentences that differ in a number ("on 14 November" / "on 21 November")
    are different facts to keep, not one restated: the embedder barely sees numbers."""
    return sorted(re.findall(r"\d+", a)) == sorted(re.findall(r"\d+", b))
