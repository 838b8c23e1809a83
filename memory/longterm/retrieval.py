"""One search over long-term memory: the keyword and vector candidate lists (filtered by time,
kind and chat in both), fused and weighed (`ranking.py`), then the best hits' neighbouring turns.

Filters in the vector path: when few of the user's rows pass (at most FILTER_IDS rows, e.g. a
month), Chroma is asked about exactly those ids; otherwise it returns OVERFETCH times more
candidates and the ones that fail are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from memory.clock import Clock
from memory.embedder import Embedder
from memory.longterm.keyword import RowFilter
from memory.longterm.lookups import RowLookups
from memory.longterm.ranking import (
    Fusion,
    Hit,
    SearchMode,
    SearchResult,
    Weights,
    fuse,
    fusion_key,
    prior_key,
    spread,
)
from memory.longterm.records import MemoryRecords
from memory.longterm.text_vectors import TextVectors
from memory.longterm.types import Kind, Memory
from memory.longterm.vectors import VectorIndex

__all__ = ["Candidates", "Retriever"]

log = logging.getLogger(__name__)

FILTER_IDS = 3000
OVERFETCH = 4
# A filter found to pass more than FILTER_IDS ids (the owner's memories of every kind but
# messages, at 10,000 memories) is not counted again for this long: counting read 3,001 ids to
# learn that, 5.5 ms of SQLite's thread a turn. Memories come and go slowly, and a filter that
# has dropped under the cap meanwhile is still served, by the overfetch.
OVER_CAP_SECONDS = 60.0
OVER_CAP_KEPT = 256

Vectors = Callable[[], tuple[Embedder, VectorIndex] | None]


@dataclass
class Candidates:
    """One query's candidates, ready to rank under any weights (fitting ranks the same
    candidates many times; a search ranks them once)."""

    vector: list[tuple[int, float]]  # (id, cosine) best first
    keyword: list[tuple[int, float]]  # (id, bm25 as SQLite gives it) best first
    rows: dict[int, Memory]  # the candidates and neighbours that pass the filters
    now: datetime
    mode: SearchMode  # what ran
    asked: SearchMode
    boost: RowFilter | None = None  # time_boost: in-range rows rank higher
    neighbours: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    reach: int = 2
    # rank(reuse=True): fusions and priors kept for the next ranking under other weights
    _fusions: dict[tuple[object, ...], Fusion] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _priors: dict[tuple[object, ...], dict[int, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def rank(
        self,
        weights: Weights,
        *,
        mode: SearchMode | None = None,
        min_similarity: float | None = None,
        spread_neighbours: bool = True,
        reuse: bool = False,
    ) -> list[Hit]:
        """The hits best first. `mode` "vector" or "keyword" ranks one list alone (hybrid
        candidates hold both). `reuse`: keep the fusion and the priors for the next ranking
        (fitting ranks these candidates under some 80 weights, most fusing alike and all
        sharing a few priors; a search ranks once and keeps nothing)."""
        vector = [] if mode == "keyword" else self.vector
        keyword = [] if mode == "vector" else self.keyword
        priors: dict[int, float] | None = None
        if reuse:
            key = (mode, min_similarity, *fusion_key(weights))
            fusion = self._fusions.get(key)
            if fusion is None:
                fusion = fuse(vector, keyword, weights, min_similarity=min_similarity)
                self._fusions[key] = fusion
            priors = self._priors.setdefault((self.now, *prior_key(weights)), {})
        else:
            fusion = fuse(vector, keyword, weights, min_similarity=min_similarity)
        hits = fusion.hits(self.rows, self.now, weights, priors=priors)
        if self.boost is not None:
            # In-range rows first (their scores raised above every other), the rest after.
            boost = self.boost
            top = max((h.score for h in hits), default=0.0)
            hits = sorted(
                (
                    replace(h, score=h.score * (1 + weights.period_boost) + top)
                    if boost.keeps(h.memory.kind, h.memory.chat_id, h.memory.created_at)
                    else h
                    for h in hits
                ),
                key=lambda h: (-h.score, -h.memory.id),
            )
        if spread_neighbours and weights.neighbour > 0:
            hits = spread(hits, self.neighbours, self.rows, self.now, weights, priors)
        return hits


class Retriever:
    def __init__(
        self,
        records: MemoryRecords,
        lookups: RowLookups,
        clock: Clock,
        vectors: Vectors,
        texts: TextVectors,
    ) -> None:
        """`vectors`: the embedder and index once attached (None before: keyword only);
        `texts`: vectors of texts seen lately, shared with the vectors written behind."""
        self._records = records
        self._lookups = lookups
        self._clock = clock
        self._over_cap: OrderedDict[tuple[int, RowFilter], float] = OrderedDict()
        self._vectors = vectors
        self._texts = texts

    async def candidates(
        self,
        user_id: int,
        query: str,
        n: int,
        *,
        mode: SearchMode,
        filter: RowFilter,
        time_boost: bool = False,
        neighbours_of: int | None = None,
        reach: int = 2,
    ) -> Candidates:
        """Everything the ranking needs for one query: both candidate lists (`n` each), the
        rows they name (filtered), and the neighbouring turns of the first `neighbours_of`
        transcript rows (None: of every candidate — what fitting weights needs)."""
        attached = self._vectors()
        semantic = attached is not None and mode in ("hybrid", "vector")
        used: SearchMode = mode if semantic else "keyword"
        boosted = time_boost and filter.timed
        filters = [filter, filter.timeless()] if boosted else [filter]
        lists = await asyncio.gather(
            *(
                self._records.keyword(user_id, query, n, f) if used != "vector" else _nothing()
                for f in filters
            ),
            *(
                self._vector_search(user_id, query, n, f) if semantic else _nothing()
                for f in filters
            ),
        )
        keep = filter.timeless() if boosted else filter
        found = Candidates(
            vector=_union(lists[len(filters) :], lower_is_better=False),
            keyword=_union(lists[: len(filters)], lower_is_better=True),
            rows={},
            now=self._clock.now(),
            mode=used,
            asked=mode,
            boost=filter if boosted else None,
            reach=reach,
        )
        ids = {i for i, _ in found.vector} | {i for i, _ in found.keyword}
        rows = await self._records.get_many(user_id, ids)
        found.rows.update(
            (i, m) for i, m in rows.items() if keep.keeps(m.kind, m.chat_id, m.created_at)
        )
        if neighbours_of is None:
            await self.add_neighbours(user_id, found, list(found.rows), keep)
        return found

    async def add_neighbours(
        self, user_id: int, found: Candidates, ids: Sequence[int], keep: RowFilter
    ) -> None:
        """Fetch the neighbouring turns of these candidate rows (transcript rows only)."""
        turns = [
            (i, found.rows[i].chat_id)
            for i in ids
            if i in found.rows
            and found.rows[i].kind is Kind.MESSAGE
            and found.rows[i].chat_id is not None
            and i not in found.neighbours
        ]
        if not turns:
            return
        reach = max(1, found.reach)
        near, rows = await self._lookups.neighbours(
            user_id, [(i, c) for i, c in turns if c is not None], reach
        )
        rows = {i: m for i, m in rows.items() if i not in found.rows}
        found.neighbours.update(near)
        for turn_id, _ in turns:
            found.neighbours.setdefault(turn_id, [])
        found.rows.update(
            (i, m) for i, m in rows.items() if keep.keeps(m.kind, m.chat_id, m.created_at)
        )

    async def search(
        self,
        user_id: int,
        query: str,
        limit: int,
        *,
        weights: Weights,
        mode: SearchMode,
        filter: RowFilter,
        min_similarity: float | None,
        time_boost: bool = False,
    ) -> SearchResult:
        """`time_boost`: the time range raises what falls in it rather than leaving the rest
        out (both are searched, in range and not)."""
        found = await self.candidates(
            user_id,
            query,
            max(weights.candidates, limit),
            mode=mode,
            filter=filter,
            time_boost=time_boost,
            neighbours_of=weights.neighbour_hits,
            reach=weights.neighbour_reach,
        )
        hits = found.rank(weights, min_similarity=min_similarity, spread_neighbours=False)
        if weights.neighbour > 0:
            keep = filter.timeless() if found.boost is not None else filter
            top = [h.memory.id for h in hits[: weights.neighbour_hits]]
            await self.add_neighbours(user_id, found, top, keep)
            hits = spread(hits, found.neighbours, found.rows, found.now, weights)
        return SearchResult(hits[:limit], found.mode, mode)

    async def _vector_search(
        self, user_id: int, query: str, n: int, filter: RowFilter
    ) -> list[tuple[int, float]]:
        attached = self._vectors()
        if attached is None or not query.strip():
            return []
        embedder, index = attached
        try:
            # the query's vector (on the query thread) and the ids the filter passes (on
            # SQLite's) at once
            vector, ids = await asyncio.gather(
                self.query_vector(embedder, query), self._filtered_ids(user_id, filter)
            )
            if filter.active:
                if ids is not None:
                    if not ids:
                        return []
                    return await asyncio.to_thread(
                        index.query, user_id, vector, min(n, len(ids)), ids
                    )
                n *= OVERFETCH
            return await asyncio.to_thread(index.query, user_id, vector, n)
        except Exception:
            log.warning("memory: vector search failed; keyword results only", exc_info=True)
            return []

    async def _filtered_ids(self, user_id: int, filter: RowFilter) -> list[int] | None:
        """The ids `filter` passes (None: no filter, or more than FILTER_IDS)."""
        if not filter.active:
            return None
        key = (user_id, filter)
        now = time.monotonic()
        seen = self._over_cap.get(key)
        if seen is not None and now - seen < OVER_CAP_SECONDS:
            return None
        ids = await self._lookups.filtered_ids(user_id, filter, FILTER_IDS)
        if ids is None:
            self._over_cap[key] = now
            self._over_cap.move_to_end(key)
            while len(self._over_cap) > OVER_CAP_KEPT:
                self._over_cap.popitem(last=False)
        else:
            self._over_cap.pop(key, None)
        return ids

    async def query_vector(self, embedder: Embedder, query: str) -> np.ndarray:
        """The query's embedding (the same text is looked up twice at once in a turn, then
        indexed as the message's transcript row: see `text_vectors`), on the query thread."""
        return await self._texts.query(embedder, query)


async def _nothing() -> list[tuple[int, float]]:
    return []


def _union(
    lists: Sequence[list[tuple[int, float]]], *, lower_is_better: bool
) -> list[tuple[int, float]]:
    """Candidate lists of the same query over overlapping rows, merged best first (a row's
    score is the same in each)."""
    if len(lists) == 1:
        return lists[0]
    merged: dict[int, float] = {}
    for found in lists:
        merged.update(found)
    return sorted(merged.items(), key=lambda row: row[1] if lower_is_better else -row[1])
