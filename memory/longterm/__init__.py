"""Long-term memory: records with provenance in SQLite (FTS5), vectors in Chroma, hybrid search.

The names below are loaded when first asked for (PEP 562): `agent.config` needs only
`ranking.Weights`, and importing a submodule runs this file first, so eager imports here made
every `steward` command load retrieval, numpy and the stores (~0.2 s of a 0.7 s start) before
it parsed its arguments.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memory.longterm.compactions import CompactionLog
    from memory.longterm.ranking import Hit, SearchMode, SearchResult, Weights
    from memory.longterm.records import MemoryRecords
    from memory.longterm.retrieval import Candidates
    from memory.longterm.store import LongTermMemory
    from memory.longterm.types import (
        MEMORY_KINDS,
        OUTSIDE_SOURCES,
        Compaction,
        Kind,
        Memory,
        NewMemory,
        NewMessage,
        Saved,
        Scope,
        Source,
        Trust,
    )
    from memory.longterm.vector_ops import ReconcileReport
    from memory.longterm.vectors import VectorIndex, VectorIndexError, parse_chroma_url

_WHERE = {
    "CompactionLog": "compactions",
    "Hit": "ranking",
    "SearchMode": "ranking",
    "SearchResult": "ranking",
    "Weights": "ranking",
    "MemoryRecords": "records",
    "Candidates": "retrieval",
    "LongTermMemory": "store",
    "MEMORY_KINDS": "types",
    "OUTSIDE_SOURCES": "types",
    "Compaction": "types",
    "Kind": "types",
    "Memory": "types",
    "NewMemory": "types",
    "NewMessage": "types",
    "Saved": "types",
    "Scope": "types",
    "Source": "types",
    "Trust": "types",
    "ReconcileReport": "vector_ops",
    "VectorIndex": "vectors",
    "VectorIndexError": "vectors",
    "parse_chroma_url": "vectors",
}

__all__ = [
    "MEMORY_KINDS",
    "OUTSIDE_SOURCES",
    "Candidates",
    "Compaction",
    "CompactionLog",
    "Hit",
    "Kind",
    "LongTermMemory",
    "Memory",
    "MemoryRecords",
    "NewMemory",
    "NewMessage",
    "ReconcileReport",
    "Saved",
    "Scope",
    "SearchMode",
    "SearchResult",
    "Source",
    "Trust",
    "VectorIndex",
    "VectorIndexError",
    "Weights",
    "parse_chroma_url",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
