"""Blocking helpers of the long-term store (run in worker threads) and what a reconcile did."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from memory.embedder import Embedder
from memory.longterm.types import Memory
from memory.longterm.vectors import VectorIndex

__all__ = [
    "ReconcileReport",
    "embed_and_query",
    "embed_and_upsert",
    "embed_rows",
    "index_write",
    "same_numbers",
]


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


def embed_rows(embedder: Embedder, index: VectorIndex, rows: list[tuple[int, int, str]]) -> None:
    vectors = embedder.embed([text for _, _, text in rows])
    by_user: dict[int, list[int]] = {}
    for position, (_, user_id, _) in enumerate(rows):
        by_user.setdefault(user_id, []).append(position)
    for user_id, positions in by_user.items():
        index.upsert(user_id, [rows[p][0] for p in positions], vectors[positions])


def embed_and_query(
    embedder: Embedder, index: VectorIndex, user_id: int, text: str, n: int = 5
) -> tuple[np.ndarray, list[tuple[int, float]]]:
    vector = embedder.embed([text])[0]
    return vector, index.query(user_id, vector, n)


def embed_and_upsert(
    embedder: Embedder, index: VectorIndex, user_id: int, ids: list[int], texts: list[str]
) -> None:
    if ids:
        index.upsert(user_id, ids, embedder.embed(texts))


def index_write(
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


def same_numbers(a: str, b: str) -> bool:
    """Near-identical sentences that differ in a number ("on 14 November" / "on 21 November")
    are different facts to keep, not one restated: the embedder barely sees numbers."""
    return sorted(re.findall(r"\d+", a)) == sorted(re.findall(r"\d+", b))
