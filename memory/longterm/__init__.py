"""Long-term memory: records with provenance in SQLite (FTS5), vectors in Chroma, hybrid search."""

from memory.longterm.compactions import CompactionLog
from memory.longterm.ranking import Hit, SearchMode, SearchResult, Weights
from memory.longterm.records import MemoryRecords
from memory.longterm.store import LongTermMemory, ReconcileReport
from memory.longterm.types import (
    OUTSIDE_SOURCES,
    Compaction,
    Kind,
    Memory,
    NewMemory,
    Saved,
    Source,
    Trust,
)
from memory.longterm.vectors import VectorIndex, VectorIndexError, parse_chroma_url

__all__ = [
    "OUTSIDE_SOURCES",
    "Compaction",
    "CompactionLog",
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
