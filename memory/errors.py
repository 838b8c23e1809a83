"""Every exception `memory/` raises on purpose, in one place.

RuntimeError
├── SchemaTooNew          the database was written by a newer Steward
├── SchemaBehind          a command that does not upgrade met a database an upgrade is owed
├── AuditKeyError         the audit key is missing, unreadable or not this database's
├── EmbedderUnavailable   no embedder can be built (disabled, model files missing)
├── VectorIndexError      Chroma could not be opened or reached
└── StorageFailed         the database could not be written (the disk full, read-only, failing)
"""

from __future__ import annotations

__all__ = [
    "AuditKeyError",
    "EmbedderUnavailable",
    "SchemaBehind",
    "SchemaTooNew",
    "StorageFailed",
    "VectorIndexError",
]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer Steward than this one."""


class SchemaBehind(RuntimeError):
    """The database's schema is older than this Steward's, and the command does not upgrade
    it (only a start does: an admin command of a newer checkout must not migrate the database
    under a Steward still running the old code, nor cut off the way back)."""


class AuditKeyError(RuntimeError):
    """The audit key file is missing, unreadable or does not belong to this database."""


class EmbedderUnavailable(RuntimeError):
    """No embedder can be built (disabled, or its model files are missing)."""


class VectorIndexError(RuntimeError):
    """Chroma could not be opened or reached."""


class StorageFailed(RuntimeError):
    """The database could not be written or read: the disk is full, the file or its folder
    became read-only, or the disk fails. What was being stored is not; the caller says so."""
