"""The database's part of a backup: a consistent copy made with SQLite's online backup API.

The copy is taken through a separate connection while `steward run` keeps writing (WAL mode:
the reader sees one committed state and never blocks the writer), so it holds every committed
message, turn, approval, memory and audit event as of one instant, and nothing half-written.
Blocking: callers on an event loop run these in a thread.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from memory.db import load_migrations

__all__ = ["NoDatabase", "latest_schema", "schema_of", "snapshot_database"]


class NoDatabase(FileNotFoundError):
    """The data directory holds no Steward database (and commands must not create one)."""


def latest_schema() -> int:
    """The newest schema version this code knows (its last migration)."""
    migrations = load_migrations()
    return migrations[-1].version if migrations else 0


def _open_existing(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NoDatabase(f"no Steward database at {path}")
    # mode=rw: never creates a file, unlike a plain connect.
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def schema_of(path: Path) -> int:
    """The schema version of the database file at `path` (0 for one never migrated)."""
    with closing(_open_existing(path)) as conn:
        try:
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0] or 0)


def snapshot_database(source: Path, target: Path) -> int:
    """Copy the database at `source` to a new single file `target` (no -wal beside it) and
    check the copy; returns its schema version. Raises NoDatabase when `source` is missing."""
    target.unlink(missing_ok=True)
    with closing(_open_existing(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)  # all pages in one step: one read transaction, one consistent state
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file
        problem = dst.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(f"the copy of {source} does not check: {problem}")
    return schema_of(target)
