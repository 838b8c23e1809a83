"""The SQLite connection: WAL mode, versioned migrations and serialised writes.

One `aiosqlite` connection serves the whole process. Writes go through `transaction()`,
`atomic()`, `execute()` or `insert_new()`, which hold one asyncio lock, so statements of concurrent
tasks never interleave inside another task's transaction. Each helper but `transaction()` is one
trip to the connection's thread (a turn makes dozens: each costs the event loop a wake-up).

(Some 420 lines: the one connection's helpers, and the WAL's emptying tried again in the
background, which must hold the same write lock.)
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from memory.errors import SchemaBehind, SchemaTooNew, StorageFailed
from memory.storage import DatabaseLocked, disk_full, read_only_uri, storage_error, unwritable

__all__ = [
    "Database",
    "DatabaseLocked",
    "Migration",
    "SchemaTooNew",
    "disk_full",
    "load_migrations",
    "read_only_uri",
    "storage_error",
]  # the storage helpers are memory.storage's, re-exported for the callers of this module

Params = Sequence[Any] | dict[str, Any]
_T = TypeVar("_T")

log = logging.getLogger(__name__)
# aiosqlite logs every statement with its parameters at DEBUG: the words of every message and
# memory, and keys kept in the database (the fence secret: R183). A DEBUG log is for Steward's
# own records; those stay out of it whatever the level.
logging.getLogger("aiosqlite").addFilter(lambda record: record.levelno > logging.DEBUG)

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

WAL_RETRIES = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds before each new try to empty the WAL while a program outside Steward reads the
database (a backup, a sqlite3 shell): some nine minutes in all, then a warning."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def summary(self) -> str:
        """What it changes: the first sentence of its leading comment."""
        lines: list[str] = []
        for line in self.sql.splitlines():
            if not line.startswith("--"):
                break
            lines.append(line.removeprefix("--").strip())
        text = " ".join(lines)
        return text.split(". ")[0].rstrip(".") if text else self.name.replace("_", " ")


def load_migrations() -> list[Migration]:
    """The packaged migrations, in version order (`memory/migrations/NNNN_name.sql`)."""
    found: list[Migration] = []
    for entry in resources.files("memory.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must be 1..n without gaps, found {versions}")
    return found


class Database:
    """An open Steward database. Use `await Database.open(path)` and `await db.close()`."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, *, read_only: bool = False) -> None:
        self._conn = conn
        self.path = path
        self.read_only = read_only
        self._write_lock = asyncio.Lock()
        self._wal_retry: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        path: Path,
        migrations: Iterable[Migration] | None = None,
        *,
        upgrade: bool = True,
        read_only: bool = False,
    ) -> Database:
        """Open the database, creating or upgrading its schema; with `upgrade=False` an
        existing database whose schema is behind is refused (SchemaBehind) instead.

        `read_only=True` (commands that only read) opens an existing database without ever
        writing it (read_only_uri): a schema other than this code's is refused, and a
        write fails with StorageFailed. `upgrade=False` opens read-only too where the
        database cannot be written (a read-only mount of the data, an investigator's copy)."""
        if not upgrade and not read_only:
            read_only = unwritable(path)
        if read_only and upgrade:
            raise ValueError("a database opened read-only cannot be upgraded")
        try:
            if read_only:
                uri = await asyncio.to_thread(read_only_uri, path)
                conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.OperationalError as exc:  # "unable to open database file": say which
            failed = storage_error(path, exc, opening=True)
            raise failed or StorageFailed(f"the database {path} cannot be opened: {exc}") from None
        conn.row_factory = sqlite3.Row
        try:
            if not read_only:
                await conn.execute("PRAGMA journal_mode=WAL")
                await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            if not read_only:
                # what is deleted is overwritten, not left in free pages for a backup to copy
                # (a forgotten memory's words)
                await conn.execute("PRAGMA secure_delete=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            if not read_only:
                # the WAL is checkpointed every 256 pages and cut back to 1 MiB after: left
                # alone it stays at its high-water mark (4 MiB here), disk paid for nothing
                await conn.execute("PRAGMA wal_autocheckpoint=256")
                await conn.execute("PRAGMA journal_size_limit=1048576")
            db = cls(conn, path, read_only=read_only)
            await db._migrate(
                list(migrations) if migrations is not None else load_migrations(), upgrade
            )
        except sqlite3.OperationalError as exc:  # the PRAGMAs and the schema check too
            await conn.close()
            if (failed := storage_error(path, exc, opening=True)) is None:
                raise
            raise failed from exc
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        retry, self._wal_retry = self._wal_retry, None
        if retry is not None and not retry.done():
            retry.cancel()
            await asyncio.wait([retry])
            log.warning(
                "database %s: closed before its WAL could be emptied (another program reads it):"
                " words deleted lately may stay in %s-wal until it is",
                self.path.name,
                self.path.name,
            )
        await self._conn.close()

    async def truncate_wal(self) -> bool:
        """Copy the WAL into the database and empty it: old page images (words deleted since)
        do not stay behind in it. Whether it was emptied now: while a program outside Steward
        holds a read transaction (a backup, a sqlite3 shell) it cannot be, and waiting for it
        here held every chat's writes (R256: the 5 s busy timeout, then nothing); it is tried
        again in the background (WAL_RETRIES), and a warning logged if it never could be."""
        if await self._try_truncate():
            return True
        if self._wal_retry is None or self._wal_retry.done():
            log.info("database %s: WAL in use by another program; emptied later", self.path.name)
            self._wal_retry = asyncio.get_running_loop().create_task(
                self._truncate_later(), name="wal-truncate"
            )
        return False

    async def _try_truncate(self) -> bool:
        """One try without waiting: not inside a transaction of ours (the write lock)."""
        async with self._write_lock:
            return await self._run(_truncate)

    async def _truncate_later(self) -> None:
        for delay in WAL_RETRIES:
            await asyncio.sleep(delay)
            try:
                if await self._try_truncate():
                    return
            except (sqlite3.Error, StorageFailed) as exc:
                log.warning("database %s: emptying the WAL failed: %s", self.path.name, exc)
                return
        log.warning(
            "database %s: its WAL could not be emptied for %.0f s: another program keeps a read"
            " transaction open (a backup, a sqlite3 shell); words deleted lately stay in %s-wal"
            " until the next forget or stop empties it",
            self.path.name,
            sum(WAL_RETRIES),
            self.path.name,
        )

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"] or 0) if row else 0

    async def _migrate(self, migrations: list[Migration], upgrade: bool = True) -> None:
        latest = migrations[-1].version if migrations else 0
        if self.read_only:
            found = await self.fetchone(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            )
            if found is None:
                raise SchemaBehind(
                    f"database {self.path} holds no Steward tables (no schema_version): not a "
                    "Steward database, or one never started; nothing was changed"
                )
        else:
            await self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        current = await self.schema_version()
        if current > latest:
            raise SchemaTooNew(
                f"database {self.path} has schema version {current}, but this Steward knows only "
                f"up to {latest}: upgrade Steward or point STEWARD_DATA_DIR at another directory"
            )
        if self.read_only and current < latest:
            raise SchemaBehind(
                f"database {self.path} has schema version {current} and this Steward upgrades it "
                f"to {latest} when it starts: start it once (`steward run`), then run this again"
            )
        if not upgrade and 0 < current < latest:
            raise SchemaBehind(
                f"database {self.path} has schema version {current} and this Steward upgrades it "
                f"to {latest} when it starts: start it once (`steward run`), then run this again"
            )
        for migration in migrations:
            if migration.version <= current:
                continue
            # An upgrade says what changed (the log of `steward run`).
            log.log(
                logging.WARNING if current else logging.DEBUG,
                "database %s: migration %04d_%s: %s",
                self.path.name,
                migration.version,
                migration.name,
                migration.summary,
            )
            async with self.transaction() as tx:
                for statement in _split_statements(migration.sql):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_version (version, name, applied_at)"
                    " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (migration.version, migration.name),
                )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """An exclusive write transaction; commits on exit, rolls back on error."""
        async with self._write_lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    await self._conn.execute("COMMIT")  # may fail too (the disk full)
                except BaseException:
                    if self._conn.in_transaction:  # not left open for every later write
                        await self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if (failed := self._storage_failed(exc)) is None:
                    raise
                raise failed from exc

    async def atomic(
        self, fn: Callable[..., _T], *args: Any, after: Callable[[_T], None] | None = None
    ) -> _T:
        """`fn(sqlite3_connection, *args)` inside one exclusive write transaction (as
        `transaction()`: commits when it returns, rolls back when it raises), run whole on the
        connection's thread in one trip. `fn` is plain, blocking code: SQL and a little
        arithmetic on its results (the audit chain's next hash), nothing slow. `after(result)`
        runs there too, once committed (the audit log's head file)."""
        async with self._write_lock:
            return await self._run(_atomic, fn, args, after)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement; returns the last row id (for INSERT) or the row count."""
        insert = sql.lstrip()[:6].upper() == "INSERT"
        async with self._write_lock:
            return await self._run(_write, sql, params, insert)

    async def insert_new(self, sql: str, params: Params = ()) -> int | None:
        """Run one `INSERT … ON CONFLICT DO NOTHING`: the new row's id, or None when it
        inserted nothing."""
        async with self._write_lock:
            return await self._run(_insert_new, sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        return await self._run(_fetchone, sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return await self._run(_fetchall, sql, params)

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """`fn(sqlite3_connection, *args)` on the connection's thread, in one trip there.

        Each trip costs the event loop a future and a cross-thread wake-up; aiosqlite's cursor
        API takes one trip to execute, another to fetch and a third to close, so the helpers
        above run the three together (`Connection._execute` is aiosqlite's queue to its thread).
        """
        conn = self._conn
        try:
            return await conn._execute(fn, conn._conn, *args)
        except sqlite3.OperationalError as exc:
            if (failed := self._storage_failed(exc)) is None:
                raise
            raise failed from exc

    def _storage_failed(self, exc: sqlite3.OperationalError) -> StorageFailed | None:
        """StorageFailed for SQLite's words of a database that cannot be written where it is
        (DatabaseLocked: another program holds its lock); None for any other error (a fault
        in a query), raised as it was."""
        return storage_error(self.path, exc)


def _atomic(
    conn: sqlite3.Connection,
    fn: Callable[..., _T],
    args: tuple[Any, ...],
    after: Callable[[_T], None] | None,
) -> _T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")  # may fail too (the disk full): rolled back below, not left open
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if after is not None:
        after(result)
    return result


def _truncate(conn: sqlite3.Connection) -> bool:
    """`wal_checkpoint(TRUNCATE)` with no busy wait; whether the WAL was emptied (the result
    row's first column is 1 when a reader or writer kept it)."""
    kept = _fetchone(conn, "PRAGMA busy_timeout", ())
    timeout = int(kept[0]) if kept is not None else 5000
    conn.execute("PRAGMA busy_timeout=0").close()
    try:
        row = _fetchone(conn, "PRAGMA wal_checkpoint(TRUNCATE)", ())
    finally:
        conn.execute(f"PRAGMA busy_timeout={timeout}").close()
    return row is None or int(row[0]) == 0


def _write(conn: sqlite3.Connection, sql: str, params: Params, insert: bool) -> int:
    cursor = conn.execute(sql, params)
    try:
        return int((cursor.lastrowid if insert else cursor.rowcount) or 0)
    finally:
        cursor.close()


def _insert_new(conn: sqlite3.Connection, sql: str, params: Params) -> int | None:
    cursor = conn.execute(sql, params)
    try:
        return cursor.lastrowid if cursor.rowcount else None
    finally:
        cursor.close()


def _fetchone(conn: sqlite3.Connection, sql: str, params: Params) -> sqlite3.Row | None:
    cursor = conn.execute(sql, params)
    try:
        row: sqlite3.Row | None = cursor.fetchone()
        return row
    finally:
        cursor.close()


def _fetchall(conn: sqlite3.Connection, sql: str, params: Params) -> list[sqlite3.Row]:
    cursor = conn.execute(sql, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _split_statements(script: str) -> list[str]:
    """Split a migration script into statements (sqlite3.complete_statement knows the grammar)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:80]}")
    return statements
