"""Hybrid ranking: the vector and keyword lists fused, then weighed by priors. Pure functions
over ids, scores and memories; `retrieval.py` fetches what they rank.

Fusion (issue 13). Reciprocal-rank fusion with a fixed half weight for keywords fitted a
synthetic set and lost to keyword search alone on real conversations. The default is now a
convex combination of normalised scores: each list's scores are scaled to [0, 1] — cosine by
(cos - floor) / (best - floor), BM25 by bm25 / best — and mixed as
`keyword_share * keyword + (1 - keyword_share) * vector`; a memory missing from a list scores 0
there. With `keyword_share` 0 or 1 the mix is one list alone, so a share chosen by
cross-validation (bench/memory_bench.py, held-out folds) can only match or beat its parts on the
data it was chosen on. RRF stays available (`fusion="rrf"`). `keyword_adapt` makes the share
per query: it rises when the keyword list's best hit stands out (a query naming the evidence's
rare words), so the mix can follow whichever part is strong; cross-validation decides whether
it pays (one comparison per query, no extra look-up).

Priors, applied in every mode:
- informativeness: a transcript turn with fewer than `content_words` meaningful words ("Take
  care!", "ok thanks") is scaled down, so content-free turns do not crowd results (memories
  are left alone: "Allergic to penicillin." is short but says everything); Chinese and
  Japanese, written without spaces, count a word per two characters (`content_words`, R211);
- importance and recency, as before;
- neighbours: a transcript turn next to a strong hit gets a share of its score ("Wanna get the
  recipe?" / "coconut milk, vanilla…"), and may join the results through it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from memory.longterm.terms import content_words
from memory.longterm.types import Kind, Memory

__all__ = [
    "Fusion",
    "Hit",
    "SearchMode",
    "SearchResult",
    "Weights",
    "fuse",
    "fusion_key",
    "prior_key",
    "spread",
]

SearchMode = Literal["hybrid", "vector", "keyword"]


@dataclass(frozen=True)
class Weights:
    """Ranking configuration (frozen: pass one at construction). The defaults were chosen by
    5-fold cross-validation on both labelled sets (bench/memory_bench.py --fit)."""

    fusion: Literal["convex", "rrf"] = "convex"
    keyword_share: float = 0.25  # convex: the keyword list's share of the mix
    # convex, per query: the share rises towards 1 by this much times how strongly the keyword
    # list's best hit stands out (its normalised BM25 times its margin over the runner-up), so a
    # query naming the evidence's rare words ("the roof", a name) leans on keywords and a
    # paraphrase leans on vectors. 0: a fixed share.
    keyword_adapt: float = 0.0
    vector_floor: float = 0.1  # convex: a cosine this low counts as no similarity
    # convex: "max" scales each list by its best score (per query); "fixed" by a fixed scale
    # (cosine: (cos - floor) / (1 - floor); BM25: 1 - exp(-bm25 / bm25_scale)), so a list
    # whose best match is weak weighs less in that query.
    normalise: Literal["max", "fixed"] = "fixed"
    bm25_scale: float = 6.0
    rrf_k: float = 10.0  # rrf: each list adds weight / (rrf_k + rank)
    keyword_weight: float = 0.5  # rrf: the keyword list's weight (the vector list has 1)
    informativeness: float = 0.95  # how far a content-free row is scaled down (0: not at all)
    content_words: int = 5  # meaningful words a row needs to escape that scaling
    neighbour: float = 0.25  # share of a hit's score its neighbouring turns get (0: none)
    neighbour_reach: int = 2  # turns on each side
    neighbour_hits: int = 10  # how many of the best hits lend to their neighbours
    # search(time_boost=True): in-range rows come first, their scores times (1 + this) plus
    # the best score found (so their order among themselves still follows relevance).
    period_boost: float = 1.0
    importance: float = 0.2  # score * (1 + importance*(imp - 0.5) + recency*2^(-age/half_life))
    recency: float = 0.05
    half_life_days: float = 180.0
    candidates: int = 40  # taken from each list before fusing
    duplicate_similarity: float = 0.92

    def __post_init__(self) -> None:
        if not 0.0 <= self.keyword_share <= 1.0:
            raise ValueError("keyword_share is between 0 and 1")
        if not 0.0 <= self.keyword_adapt <= 1.0:
            raise ValueError("keyword_adapt is between 0 and 1")
        if not 0.0 <= self.informativeness <= 1.0:
            raise ValueError("informativeness is between 0 and 1")
        if self.candidates < 1 or self.content_words < 1 or self.neighbour < 0:
            raise ValueError("candidates and content_words are at least 1, neighbour >= 0")
        if self.fusion not in ("convex", "rrf") or self.normalise not in ("max", "fixed"):
            raise ValueError("fusion is 'convex' or 'rrf'; normalise is 'max' or 'fixed'")
        if self.bm25_scale <= 0:
            raise ValueError("bm25_scale is positive")

    @classmethod
    def parse(cls, text: str) -> Weights:
        """Weights from a setting such as "keyword_share=0.4, neighbour=0" (the defaults for
        what it leaves out); ValueError naming what is wrong."""
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, raw = part.partition("=")
            name, raw = name.strip(), raw.strip()
            if name not in known or not raw:
                raise ValueError(f"{part!r}: expected name=value, name one of {', '.join(known)}")
            kind = known[name]
            try:
                values[name] = (
                    raw if "Literal" in str(kind) else (int(raw) if kind == "int" else float(raw))
                )
            except ValueError:
                raise ValueError(f"{part!r}: {raw!r} is not a number") from None
        return cls(**values)


@dataclass(frozen=True)
class Hit:
    memory: Memory
    score: float
    vector_rank: int | None = None
    keyword_rank: int | None = None
    similarity: float | None = None  # cosine to the query
    keyword_score: float | None = None  # BM25 (positive: higher is better)
    neighbour_of: int | None = None  # the hit whose neighbouring turn this is

    @property
    def sources(self) -> tuple[str, ...]:
        """Which lists found it: "vector", "keyword", "neighbour"."""
        found = []
        if self.vector_rank is not None:
            found.append("vector")
        if self.keyword_rank is not None:
            found.append("keyword")
        if self.neighbour_of is not None:
            found.append("neighbour")
        return tuple(found)


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    mode: SearchMode  # what ran
    asked: SearchMode = "hybrid"  # what was asked

    @property
    def keyword_only(self) -> bool:
        """True when vectors were asked for but not attached (still loading, or no embedder):
        the hits come from keyword search alone."""
        return self.mode == "keyword" and self.asked != "keyword"

    @property
    def memories(self) -> list[Memory]:
        return [hit.memory for hit in self.hits]


@dataclass
class Fusion:
    """The fused score of each candidate id, and where it ranked in each list."""

    scores: dict[int, float] = field(default_factory=dict)
    vector_rank: dict[int, tuple[int, float]] = field(default_factory=dict)  # (rank, similarity)
    keyword_rank: dict[int, tuple[int, float]] = field(default_factory=dict)  # (rank, bm25)

    def hits(
        self,
        found: dict[int, Memory],
        now: datetime,
        weights: Weights,
        kinds: Sequence[Kind] | None = None,
        *,
        priors: dict[int, float] | None = None,
    ) -> list[Hit]:
        """The found memories as hits, best first: fused score times the priors (ids not in
        `found`, or of other kinds, are left out). `priors`: each memory's prior under these
        weights' `prior_key`, kept across calls by one who ranks the same memories again."""
        hits: list[Hit] = []
        for memory_id, base in self.scores.items():
            memory = found.get(memory_id)
            if memory is None or (kinds is not None and memory.kind not in kinds):
                continue
            ranked = self.vector_rank.get(memory_id)
            keyword = self.keyword_rank.get(memory_id)
            hits.append(
                Hit(
                    memory=memory,
                    score=base * _prior(memory, now, weights, priors),
                    vector_rank=ranked[0] if ranked else None,
                    keyword_rank=keyword[0] if keyword else None,
                    similarity=ranked[1] if ranked else None,
                    keyword_score=keyword[1] if keyword else None,
                )
            )
        hits.sort(key=lambda h: (-h.score, -h.memory.id))
        return hits


def prior(memory: Memory, now: datetime, weights: Weights) -> float:
    """Informativeness (of transcript turns: a memory was written to say something) times
    importance and recency."""
    informative = 1.0
    if memory.kind is Kind.MESSAGE:
        words = content_words(memory.text)
        informative = (1 - weights.informativeness) + weights.informativeness * min(
            1.0, words / weights.content_words
        )
    age_days = max(0.0, (now - memory.created_at).total_seconds() / 86400)
    recency = math.pow(2.0, -age_days / weights.half_life_days)
    boost = 1 + weights.importance * (memory.importance - 0.5) + weights.recency * recency
    return informative * boost


def prior_key(weights: Weights) -> tuple[float, ...]:
    """Every setting `prior` reads: weights alike here give every memory the same prior."""
    return (
        weights.informativeness,
        weights.content_words,
        weights.importance,
        weights.recency,
        weights.half_life_days,
    )


def fusion_key(weights: Weights) -> tuple[object, ...]:
    """Every setting `fuse` reads: weights alike here fuse the same lists the same way."""
    return (
        weights.fusion,
        weights.rrf_k,
        weights.keyword_weight,
        weights.keyword_share,
        weights.normalise,
        weights.keyword_adapt,
        weights.vector_floor,
        weights.bm25_scale,
    )


def _prior(memory: Memory, now: datetime, weights: Weights, kept: dict[int, float] | None) -> float:
    if kept is None:
        return prior(memory, now, weights)
    value = kept.get(memory.id)
    if value is None:
        value = kept[memory.id] = prior(memory, now, weights)
    return value


def fuse(
    vector: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    weights: Weights,
    *,
    min_similarity: float | None = None,
) -> Fusion:
    """Fuse (id, cosine) best first and (id, bm25 as SQLite gives it: lower is better) best
    first; a vector hit below `min_similarity` does not count."""
    fusion = Fusion()
    scores = fusion.scores
    vector = [(i, s) for i, s in vector if min_similarity is None or s >= min_similarity]
    positive = [(i, -b) for i, b in keyword]
    for rank, (memory_id, similarity) in zip(_ranks(s for _, s in vector), vector, strict=True):
        fusion.vector_rank[memory_id] = (rank, similarity)
    for rank, (memory_id, bm25) in zip(_ranks(b for _, b in positive), positive, strict=True):
        fusion.keyword_rank[memory_id] = (rank, bm25)
    if weights.fusion == "rrf":
        for memory_id, (rank, _) in fusion.vector_rank.items():
            scores[memory_id] = scores.get(memory_id, 0.0) + 1.0 / (weights.rrf_k + rank)
        for memory_id, (rank, _) in fusion.keyword_rank.items():
            scores[memory_id] = scores.get(memory_id, 0.0) + weights.keyword_weight / (
                weights.rrf_k + rank
            )
        return fusion
    share = weights.keyword_share if vector and positive else (1.0 if positive else 0.0)
    fixed = weights.normalise == "fixed"
    if vector and positive and weights.keyword_adapt > 0:
        share += (1 - share) * weights.keyword_adapt * _keyword_confidence(positive, weights)
    if vector:
        best = 1.0 if fixed else max(s for _, s in vector)
        span = max(best - weights.vector_floor, 1e-6)
        for memory_id, similarity in vector:
            part = max(0.0, similarity - weights.vector_floor) / span
            scores[memory_id] = scores.get(memory_id, 0.0) + (1 - share) * part
    if positive:
        best = max(max(b for _, b in positive), 1e-9)
        for memory_id, bm25 in positive:
            part = (
                1 - math.exp(-max(0.0, bm25) / weights.bm25_scale)
                if fixed
                else max(0.0, bm25) / best
            )
            scores[memory_id] = scores.get(memory_id, 0.0) + share * part
    # A candidate both lists found but scoring 0 (at the floor) keeps a sliver, so it ranks.
    for memory_id in list(scores):
        scores[memory_id] = max(scores[memory_id], 1e-6)
    return fusion


def _keyword_confidence(positive: Sequence[tuple[int, float]], weights: Weights) -> float:
    """How strongly the keyword list's best hit stands out, in [0, 1]: its BM25 on the fixed
    scale times its margin over the runner-up (relative to the best)."""
    best = max(0.0, positive[0][1])
    if best <= 0:
        return 0.0
    runner = max(0.0, positive[1][1]) if len(positive) > 1 else 0.0
    strength = 1 - math.exp(-best / weights.bm25_scale)
    return strength * (best - runner) / best


def spread(
    hits: list[Hit],
    neighbours: dict[int, list[tuple[int, int]]],
    found: dict[int, Memory],
    now: datetime,
    weights: Weights,
    priors: dict[int, float] | None = None,
) -> list[Hit]:
    """Lend each of the best hits' neighbouring turns a share of its score (halved per step
    away, scaled by the neighbour's own priors); a neighbour not yet among the hits joins them.
    Returns the hits best first. `priors` as in `Fusion.hits`."""
    if weights.neighbour <= 0 or not neighbours:
        return hits
    by_id = {hit.memory.id: hit for hit in hits}
    bonus: dict[int, tuple[float, int]] = {}
    for hit in hits[: weights.neighbour_hits]:
        for neighbour_id, distance in neighbours.get(hit.memory.id, []):
            memory = found.get(neighbour_id)
            if memory is None:
                continue
            lent = weights.neighbour * hit.score / (2 ** (distance - 1))
            lent *= _prior(memory, now, weights, priors)
            if lent > bonus.get(neighbour_id, (0.0, 0))[0]:
                bonus[neighbour_id] = (lent, hit.memory.id)
    for neighbour_id, (lent, source) in bonus.items():
        current = by_id.get(neighbour_id)
        if current is None:
            by_id[neighbour_id] = Hit(found[neighbour_id], lent, neighbour_of=source)
        else:
            by_id[neighbour_id] = Hit(
                current.memory,
                current.score + lent,
                current.vector_rank,
                current.keyword_rank,
                current.similarity,
                current.keyword_score,
                neighbour_of=source,
            )
    return sorted(by_id.values(), key=lambda h: (-h.score, -h.memory.id))


def _ranks(scores: Iterable[float]) -> list[int]:
    """Competition ranks of scores given best first ("1224"): equal scores share a rank, so a
    tie stays a tie after fusion and the priors decide it."""
    ranks: list[int] = []
    previous: float | None = None
    for position, score in enumerate(scores, 1):
        value = round(score, 6)
        ranks.append(ranks[-1] if value == previous else position)
        previous = value
    return ranks
