"""Measure retrieval on a labelled set (tests/data/retrieval_set.jsonl): recall@k and MRR.

The set holds each user's memories (saved oldest first through `LongTermMemory.save`, so changed
facts supersede the old ones exactly as in use) and the questions they might ask, each with the
memories that should come back and, for changed facts, the ones that must not.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from memory.longterm.ranking import SearchMode
from memory.longterm.store import LongTermMemory
from memory.longterm.types import Kind, NewMemory, Source

__all__ = ["CaseResult", "Evaluation", "LabelledSet", "evaluate", "load_labelled_set", "populate"]


@dataclass(frozen=True)
class LabelledSet:
    users: list[str]
    memories: list[dict[str, Any]]
    cases: list[dict[str, Any]]


@dataclass(frozen=True)
class CaseResult:
    case: dict[str, Any]
    ranked: list[str]  # keys of the top k, best first
    recall: float
    reciprocal_rank: float
    forbidden: list[str]  # `not_expected` keys that came back


@dataclass
class Evaluation:
    mode: SearchMode
    k: int
    results: list[CaseResult] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return sum(r.recall for r in self.results) / max(1, len(self.results))

    @property
    def mrr(self) -> float:
        return sum(r.reciprocal_rank for r in self.results) / max(1, len(self.results))

    @property
    def forbidden_hits(self) -> int:
        return sum(len(r.forbidden) for r in self.results)

    def by_category(self) -> dict[str, tuple[int, float, float]]:
        """category → (cases, recall@k, MRR)."""
        groups: dict[str, list[CaseResult]] = defaultdict(list)
        for result in self.results:
            groups[result.case["category"]].append(result)
        return {
            name: (
                len(items),
                sum(r.recall for r in items) / len(items),
                sum(r.reciprocal_rank for r in items) / len(items),
            )
            for name, items in sorted(groups.items())
        }

    def misses(self) -> list[CaseResult]:
        return [r for r in self.results if r.recall < 1.0 or r.forbidden]


def load_labelled_set(path: Path) -> LabelledSet:
    users: list[str] = []
    memories: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record["type"] == "about":
            users = list(record["users"])
        elif record["type"] == "memory":
            memories.append(record)
        elif record["type"] == "case":
            cases.append(record)
    return LabelledSet(users, memories, cases)


async def populate(
    store: LongTermMemory, labelled: LabelledSet, user_ids: dict[str, int], now: datetime
) -> dict[str, int]:
    """Save every memory of the set, oldest first; returns memory key → id."""
    ordered = sorted(labelled.memories, key=lambda m: -float(m.get("days_ago", 0)))
    vectors = await store.embed([record["text"] for record in ordered])  # one batch
    ids: dict[str, int] = {}
    for number, record in enumerate(ordered):
        saved = await store.save(
            NewMemory(
                user_id=user_ids[record["user"]],
                text=record["text"],
                kind=Kind(record.get("kind", "fact")),
                subject=record.get("subject", ""),
                source=Source(record.get("source", "owner_said")),
                importance=float(record.get("importance", 0.5)),
                created_at=now - timedelta(days=float(record.get("days_ago", 0))),
            ),
            vector=vectors[number] if vectors is not None else None,
        )
        ids[record["key"]] = saved.memory.id
    return ids


async def evaluate(
    store: LongTermMemory,
    labelled: LabelledSet,
    user_ids: dict[str, int],
    key_ids: dict[str, int],
    *,
    mode: SearchMode,
    k: int = 5,
) -> Evaluation:
    keys = {memory_id: key for key, memory_id in key_ids.items()}
    evaluation = Evaluation(mode, k)
    for case in labelled.cases:
        result = await store.search(user_ids[case["user"]], case["query"], k, mode=mode)
        ranked = [keys.get(hit.memory.id, f"#{hit.memory.id}") for hit in result.hits]
        expected = list(case["expected"])
        found = [key for key in expected if key in ranked]
        first = next((i for i, key in enumerate(ranked, 1) if key in expected), None)
        evaluation.results.append(
            CaseResult(
                case=case,
                ranked=ranked,
                recall=len(found) / len(expected),
                reciprocal_rank=1.0 / first if first else 0.0,
                forbidden=[key for key in case.get("not_expected", []) if key in ranked],
            )
        )
    return evaluation
