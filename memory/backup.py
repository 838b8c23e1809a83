"""The database's part of a backup: a consistent copy made with SQLite's online backup API.

The copy is taken through a separate, read-only connection while `steward run` keeps writing
(WAL mode: the reader sees one committed state and never blocks the writer), so it holds every
committed message, turn, approval, memory and audit event as of one instant, and nothing
half-written; read-only, it also copies data on a read-only mount. Another program holding
the database's lock is waited for LOCK_WAIT seconds, then named in one line (DatabaseLocked).
Blocking: callers on an event loop run these in a thread.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from memory.db import DatabaseLocked, load_migrations, read_only_uri, storage_error

__all__ = [
    "LOCK_WAIT",
    "RESTORED_PENDING",
    "RESTORED_VECTORS",
    "RESTORED_WINDOW",
    "ArchivedDatabase",
    "NoDatabase",
    "UnreadableDatabase",
    "archived_database",
    "archived_state",
    "latest_schema",
    "owe_withdrawal",
    "schema_of",
    "snapshot_database",
]

LOCK_WAIT = 10.0
"""Seconds a snapshot waits for another program's lock on the database. Steward's own writes
never hold one up (WAL: a reader sees the last commit); a `sqlite3` shell in EXCLUSIVE mode
would forever (CPython's Connection.backup retries SQLITE_BUSY without end)."""
_TRY = 0.2  # seconds of each try at the lock (SQLite's busy timeout)


class NoDatabase(FileNotFoundError):
    """The data directory holds no Steward database (and commands must not create one)."""


def latest_schema() -> int:
    """The newest schema version this code knows (its last migration)."""
    migrations = load_migrations()
    return migrations[-1].version if migrations else 0


def _open_existing(path: Path, wait: float = LOCK_WAIT) -> sqlite3.Connection:
    """A connection that only reads the database at `path` (never creates nor writes it, so a
    read-only copy of the data can be backed up); StorageFailed, naming the path and the cause,
    when it cannot be read there (locked by another program past `wait` seconds, the disk
    full, unopenable). A lock is waited for in short tries: a signal (SIGTERM) is handled
    between them, not only once the whole wait is over."""
    if not path.is_file():
        raise NoDatabase(f"no Steward database at {path}")
    deadline = time.monotonic() + wait
    while True:
        try:
            uri = read_only_uri(path, timeout=_TRY)
            break
        except sqlite3.OperationalError as exc:
            failed = storage_error(path, exc, opening=True)
            if isinstance(failed, DatabaseLocked) and time.monotonic() < deadline:
                continue
            if failed is None:
                raise
            raise failed from None
    return sqlite3.connect(uri, uri=True, timeout=_TRY)


def schema_of(path: Path) -> int:
    """The schema version of the database file at `path` (0 for one never migrated)."""
    with closing(_open_existing(path)) as conn:
        try:
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0] or 0)


def snapshot_database(source: Path, target: Path, *, wait: float = LOCK_WAIT) -> int:
    """Copy the database at `source` to a new single file `target` (no -wal beside it) and
    check the copy; returns its schema version. Raises NoDatabase when `source` is missing,
    DatabaseLocked when another program holds its lock for more than `wait` seconds."""
    target.unlink(missing_ok=True)
    deadline = time.monotonic() + wait
    try:
        _snapshot(source, target, deadline, wait)
    except sqlite3.OperationalError as exc:
        if "full" in str(exc):  # SQLITE_FULL: the copy is written where `target` is
            raise OSError(errno.ENOSPC, str(exc)) from None
        raise
    return schema_of(target)


def _snapshot(source: Path, target: Path, deadline: float, wait: float) -> None:
    def give_up_when_late(status: int, remaining: int, pages: int) -> None:
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) and time.monotonic() > deadline:
            raise DatabaseLocked(f"{source}: in use by another program (database is locked)")

    with closing(_open_existing(source, wait)) as src, closing(sqlite3.connect(target)) as dst:
        # all pages in one step: one read transaction, one consistent state; the progress
        # callback runs after each try at the lock, and a lock held past the deadline ends it
        src.backup(dst, pages=-1, progress=give_up_when_late, sleep=_TRY)
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file
        problem = dst.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(f"the copy of {source} does not check: {problem}")


class UnreadableDatabase(Exception):
    """Not an SQLite file, or one with a page SQLite cannot read; the message says why."""


@dataclass(frozen=True)
class ArchivedDatabase:
    """What a database file in a backup holds, read before anything is restored."""

    problem: str  # PRAGMA quick_check's answer: "ok" when it checks
    tables: frozenset[str]
    schema: int


def archived_database(path: Path) -> ArchivedDatabase:
    """Read a staged database file without changing it: immutable, so no -wal or -shm may
    appear beside it (they would be moved into the data directory with it)."""
    uri = f"{path.absolute().as_uri()}?mode=ro&immutable=1"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            problem = str(conn.execute("PRAGMA quick_check").fetchone()[0])
            if problem != "ok":
                return ArchivedDatabase(problem, frozenset(), 0)
            tables = frozenset(n for (n,) in conn.execute("SELECT name FROM sqlite_master"))
            if "schema_version" not in tables:
                return ArchivedDatabase(problem, tables, 0)
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            return ArchivedDatabase(problem, tables, int(row[0] or 0))
    except sqlite3.Error as exc:
        raise UnreadableDatabase(str(exc)) from None


def archived_state(path: Path, key: str) -> str | None:
    """One `state` value of a staged database, read as `archived_database` reads it (never
    changing the file); None when the key, or the table, is not there. For the restore's
    owner check (R207). Raises UnreadableDatabase."""
    uri = f"{path.absolute().as_uri()}?mode=ro&immutable=1"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
            if "state" not in tables:
                return None
            row = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error as exc:
        raise UnreadableDatabase(str(exc)) from None
    return None if row is None or row[0] is None else str(row[0])


RESTORED_PENDING = "restore.withdraw_pending"
"""State key: the restored database's pending approval requests are to be withdrawn at the
next start (`bot/recovery.py`), however many commands open it before then."""


RESTORED_VECTORS = "restore.compare_vectors"
"""State key: every user's vectors are compared id by id with the restored memories at the
next attach (a Chroma server keeps what was written after the backup; counts alone can match
while the ids differ, R155)."""


RESTORED_WINDOW = "restore.window"
"""State key: `<backup made>/<restored>` (ISO times): a reminder that fell due between them may
have gone out from the data the backup was taken of, so it is sent marked (R169: sent twice,
the second plainly)."""


def owe_withdrawal(path: Path, made_at: str = "") -> None:
    """Mark a database just restored: what it holds pending was asked before the backup, and
    may have been approved and run since (R123); and its vectors are to be compared whole
    (`RESTORED_VECTORS`); `made_at`, the backup's time (its manifest's), opens the window of
    jobs that may have run since (`RESTORED_WINDOW`). Flags in the database itself, since any
    command that opens it first would use up a note beside it (R124)."""
    rows = [(RESTORED_PENDING, "1"), (RESTORED_VECTORS, "1")]
    try:
        made = datetime.fromisoformat(made_at).astimezone(UTC)
    except ValueError:  # a manifest without its time: no window, no mark
        made = None
    if made is not None:
        rows.append((RESTORED_WINDOW, f"{made.isoformat()}/{datetime.now(UTC).isoformat()}"))
    with closing(sqlite3.connect(path, timeout=LOCK_WAIT)) as conn, conn:
        conn.executemany(
            "INSERT INTO state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            rows,
        )
