"""Hybrid ranking: the vector and keyword lists fused by reciprocal rank, then scaled by
importance and recency. Pure functions over ids and scores; `store.py` fetches what they rank.

RRF: each list adds weight/(k + rank) for a memory; competition ranks keep ties tied, so
importance and recency decide them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from memory.longterm.types import Kind, Memory

__all__ = ["Fusion", "Hit", "SearchMode", "SearchResult", "Weights", "fuse"]

SearchMode = Literal["hybrid", "vector", "keyword"]


@dataclass(frozen=True)
class Weights:
    """Ranking knobs, tuned on tests/data/retrieval_set.jsonl (see bench/memory_bench.py)."""

    rrf_k: float = 10.0
    keyword_weight: float = 0.5  # the keyword list's share in the fusion (the vector list has 1)
    importance: float = 0.2  # score * (1 + importance*(imp - 0.5) + recency*2^(-age/half_life))
    recency: float = 0.05
    half_life_days: float = 180.0
    candidates: int = 30  # taken from each list before fusing
    duplicate_similarity: float = 0.92


@dataclass(frozen=True)
class Hit:
    memory: Memory
    score: float
    vector_rank: int | None = None
    keyword_rank: int | None = None
    similarity: float | None = None


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    mode: SearchMode

    @property
    def memories(self) -> list[Memory]:
        return [hit.memory for hit in self.hits]


@dataclass
class Fusion:
    """The fused score of each candidate id, and where it ranked in each list."""

    scores: dict[int, float] = field(default_factory=dict)
    vector_rank: dict[int, tuple[int, float]] = field(default_factory=dict)  # (rank, similarity)
    keyword_rank: dict[int, int] = field(default_factory=dict)

    def hits(
        self,
        found: dict[int, Memory],
        now: datetime,
        weights: Weights,
        kinds: Sequence[Kind] | None = None,
    ) -> list[Hit]:
        """The found memories as hits, best first: fused score scaled by importance and
        recency (ids not in `found`, or of other kinds, are left out)."""
        hits: list[Hit] = []
        for memory_id, base in self.scores.items():
            memory = found.get(memory_id)
            if memory is None or (kinds is not None and memory.kind not in kinds):
                continue
            age_days = max(0.0, (now - memory.created_at).total_seconds() / 86400)
            recency = math.pow(2.0, -age_days / weights.half_life_days)
            boost = 1 + weights.importance * (memory.importance - 0.5) + weights.recency * recency
            ranked = self.vector_rank.get(memory_id)
            hits.append(
                Hit(
                    memory=memory,
                    score=base * boost,
                    vector_rank=ranked[0] if ranked else None,
                    keyword_rank=self.keyword_rank.get(memory_id),
                    similarity=ranked[1] if ranked else None,
                )
            )
        hits.sort(key=lambda h: (-h.score, -h.memory.id))
        return hits


def fuse(
    vector: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    weights: Weights,
    *,
    min_similarity: float | None = None,
) -> Fusion:
    """Fuse (id, cosine) best first and (id, bm25) best first; a vector hit below
    `min_similarity` does not count."""
    fusion = Fusion()
    scores = fusion.scores
    for rank, (memory_id, similarity) in zip(_ranks(s for _, s in vector), vector, strict=True):
        if min_similarity is not None and similarity < min_similarity:
            continue
        fusion.vector_rank[memory_id] = (rank, similarity)
        scores[memory_id] = scores.get(memory_id, 0.0) + 1.0 / (weights.rrf_k + rank)
    for rank, (memory_id, _) in zip(_ranks(-b for _, b in keyword), keyword, strict=True):
        fusion.keyword_rank[memory_id] = rank
        scores[memory_id] = scores.get(memory_id, 0.0) + weights.keyword_weight / (
            weights.rrf_k + rank
        )
    return fusion


def _ranks(scores: Iterable[float]) -> list[int]:
    """Competition ranks of scores given best first ("1224"): equal scores share a rank, so a
    tie stays a tie after fusion and importance and recency decide it."""
    ranks: list[int] = []
    previous: float | None = None
    for position, score in enumerate(scores, 1):
        value = round(score, 6)
        ranks.append(ranks[-1] if value == previous else position)
        previous = value
    return ranks
