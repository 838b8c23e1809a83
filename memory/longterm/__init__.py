"""Long-term memory: records with provenance in SQLite (FTS5), vectors in Chroma, hybrid search."""

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
