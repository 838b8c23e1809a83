"""Long-term memory: records with provenance in SQLite (FTS5), vectors in Chroma, hybrid search."""

from memory.longterm.records import (
    OUTSIDE_SOURCES,
    Compaction,
    Kind,
    Memory,
    MemoryRecords,
    NewMemory,
    Source,
    Trust,
)
from memory.longterm.store import (
    Hit,
    LongTermMemory,
    ReconcileReport,
    Saved,
    SearchMode,
    SearchResult,
    Weights,
)
from memory.longterm.vectors import VectorIndex, VectorIndexError, parse_chroma_url

__all__ = [
    "OUTSIDE_SOURCES",
    "Compaction",
    "Hit",
    "Kind",
    "LongTermMemory",
    "Memory",
    "MemoryRecords",
    "NewMemory",
    "ReconcileReport",
    "Saved",
    "SearchMode",
    "SearchResult",
    "Source",
    "Trust",
    "VectorIndex",
    "VectorIndexError",
    "Weights",
    "parse_chroma_url",
]
