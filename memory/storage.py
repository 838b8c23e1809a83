"""What a database that cannot be used is called, and how one is opened only to read.

SQLite's errors for storage (a full disk, a read-only mount, another program's lock) become one
line naming the database and the cause (`storage_error`), and read-only commands (`audit verify`,
`export`, `backup`) open the file with `read_only_uri`, so they work on a read-only copy of the
data. Split from `memory.db`, whose connection uses both.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from memory.errors import StorageFailed

__all__ = ["DatabaseLocked", "disk_full", "read_only_uri", "storage_error", "unwritable"]

_STORAGE = ("disk is full", "readonly database", "disk i/o error", "unable to open database")
"""SQLite's words for a database that cannot be written where it is (not a fault in a query)."""
_LOCKED = "database is locked"  # SQLITE_BUSY: another connection holds the lock past the timeout
_FULL_BELOW = 1 << 20  # bytes free under which SQLite's "disk I/O error" is the disk being full


class DatabaseLocked(StorageFailed):
    """Another program holds the database's lock (a `sqlite3` shell inside a transaction, a
    connection in EXCLUSIVE locking mode) for longer than Steward waits."""


def disk_full(directory: Path) -> bool:
    """The file system holding `directory` is full (or out of inodes): less than 1 MiB free,
    counting the blocks only root may use when we are root."""
    try:
        fs = os.statvfs(directory)
    except OSError:
        return False
    free = (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize  # root's reserve
    return free < _FULL_BELOW or (fs.f_files > 0 and fs.f_ffree == 0)


def _read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _why(directory: Path) -> str:
    """What about `directory` keeps SQLite from using a database in it, as far as it shows."""
    if _read_only_fs(directory):
        return f"{directory} is on a read-only file system"
    if disk_full(directory):
        return f"no space left on device in {directory}"
    if not os.access(directory, os.W_OK):
        return f"no permission to write in {directory}"
    return ""


def storage_error(path: Path, exc: sqlite3.Error, *, opening: bool = False) -> StorageFailed | None:
    """The one-line StorageFailed for SQLite's error `exc` on the database at `path` when it is
    about where the database is (locked by another program, the disk full or read-only, the
    file unopenable), naming the path and the cause; None for any other error (a fault in a
    query, a damaged file), to be raised as it was."""
    text = str(exc).lower()
    if _LOCKED in text:
        return DatabaseLocked(f"{path}: in use by another program (database is locked)")
    if ("disk is full" in text or "disk i/o error" in text) and disk_full(path.parent):
        return StorageFailed(f"{path}: no space left on device ({exc})")
    if not any(words in text for words in _STORAGE):
        return None
    why = _why(path.parent)
    cause = f"{exc}: {why}" if why else str(exc)
    if opening or "unable to open" in text:
        return StorageFailed(f"the database {path} cannot be opened: {cause}")
    return StorageFailed(f"the database {path} cannot be written: {cause}")


def unwritable(path: Path) -> bool:
    """The database at `path` exists and cannot be written where it is."""
    if not path.is_file():
        return False
    return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _immutable_is_safe(path: Path) -> bool:
    """Reading `path` as `immutable=1` (no locks, no -wal/-shm) reads what it holds: nothing can
    change it (its file system is read-only) and no write-ahead log holds part of it."""
    if not _read_only_fs(path.parent):
        return False
    try:
        return path.with_name(path.name + "-wal").stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def read_only_uri(path: Path, *, timeout: float = 5.0) -> str:
    """The URI to read the existing database at `path` with, never writing it: `mode=ro`, or
    `immutable=1` on a read-only file system where SQLite cannot make the -shm file a WAL
    database is read through, if no write-ahead log is there to honour (immutable would not
    read it: stale data). Blocking (it opens the file once to find out); raises
    sqlite3.OperationalError (see storage_error()) or StorageFailed when neither can read it."""
    base = path.absolute().as_uri()
    uri = f"{base}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=timeout)) as probe:
            probe.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return uri
    except sqlite3.OperationalError as exc:
        if "unable to open" not in str(exc).lower():
            raise
        if _immutable_is_safe(path):
            return f"{base}?mode=ro&immutable=1"
        wal = path.with_name(path.name + "-wal")
        if _read_only_fs(path.parent) and wal.exists():
            raise StorageFailed(
                f"the database {path} cannot be read: {wal.name} beside it holds changes not "
                f"yet in it, which SQLite reads only through {path.name}-shm, and "
                f"{path.parent} is on a read-only file system where it cannot make that file "
                f"({exc}); copy the data directory somewhere writable and read the copy"
            ) from None
        raise
