"""The schema: WAL, versioned migrations, upgrades that keep data, and a newer database refused."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from memory.db import Database, Migration, SchemaTooNew, load_migrations

TABLES = {
    "users",
    "identities",
    "chats",
    "messages",
    "turns",
    "goals",
    "schedules",
    "approvals",
    "audit_events",
}


async def test_fresh_database_has_every_table_in_wal_mode(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "s.db")
    try:
        names = {r["name"] for r in await db.fetchall("SELECT name FROM sqlite_master")}
        assert names >= TABLES | {"schema_version"}
        assert await db.scalar("PRAGMA journal_mode") == "wal"
        assert await db.schema_version() == load_migrations()[-1].version
    finally:
        await db.close()


async def test_old_database_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    base = load_migrations()
    db = await Database.open(path, base)
    await db.execute(
        "INSERT INTO users (display_name, is_owner, created_at) VALUES ('Ann', 1, '2026-01-01')"
    )
    await db.close()

    later = Migration(
        len(base) + 1,
        "nicknames",
        "ALTER TABLE users ADD COLUMN nickname TEXT NOT NULL DEFAULT '';",
    )
    db = await Database.open(path, [*base, later])
    try:
        assert await db.schema_version() == later.version
        row = await db.fetchone("SELECT display_name, nickname FROM users")
        assert row is not None and (row["display_name"], row["nickname"]) == ("Ann", "")
    finally:
        await db.close()


async def test_a_failed_migration_leaves_the_old_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    base = load_migrations()
    await (await Database.open(path, base)).close()
    broken = Migration(
        len(base) + 1, "broken", "CREATE TABLE x (a);\nINSERT INTO nowhere VALUES (1);"
    )
    with pytest.raises(sqlite3.OperationalError):
        await Database.open(path, [*base, broken])
    db = await Database.open(path, base)
    try:
        assert await db.schema_version() == len(base)
        assert await db.fetchone("SELECT name FROM sqlite_master WHERE name = 'x'") is None
    finally:
        await db.close()


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    base = load_migrations()
    future = Migration(len(base) + 1, "future", "CREATE TABLE future_thing (a);")
    await (await Database.open(path, [*base, future])).close()
    with pytest.raises(SchemaTooNew, match="upgrade Steward"):
        await Database.open(path, base)


def test_newer_database_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "steward.db") as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name, applied_at)")
        conn.execute("INSERT INTO schema_version VALUES (999, 'future', 'x')")
    env = {**os.environ, "STEWARD_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "schema version 999" in result.stderr
    assert "Traceback" not in result.stderr


async def test_0011_keeps_every_memory_and_leaves_transcript_rows_out_of_the_lookup_indexes(
    tmp_path: Path,
) -> None:
    """A database at schema 10 with a fact and two transcript rows: after 0011 every row is
    there unchanged, the look-ups still find the fact through their (now partial) indexes, and
    transcript rows take no room in those indexes."""
    from contextlib import closing
    from datetime import UTC, datetime

    from memory.clock import FrozenClock
    from memory.longterm import Kind, LongTermMemory

    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        for migration in load_migrations()[:10]:
            conn.executescript(migration.sql)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?, '2025-01-01')",
                (migration.version, migration.name),
            )
        conn.execute("INSERT INTO users (id, display_name, created_at) VALUES (5, 'Ann', 'x')")
        for memory_id, kind, text, subject, importance, message_id in (
            (11, "fact", "Ann drinks her coffee black", "coffee", 0.9, None),
            (12, "message", "Ann drinks her coffee black", "coffee", 0.9, 1),
            (13, "message", "noted", "Steward", 0.3, 2),
        ):
            conn.execute(
                "INSERT INTO memories (id, user_id, kind, text, subject, subject_key, source,"
                " trust, importance, created_at, message_id) VALUES (?, 5, ?, ?, ?, ?,"
                " 'owner_said', 'trusted', ?, '2025-05-14T09:00:00.000000+00:00', ?)",
                (memory_id, kind, text, subject, subject.lower(), importance, message_id),
            )
        conn.commit()
        before = conn.execute("SELECT * FROM memories ORDER BY id").fetchall()
    db = await Database.open(path)
    try:
        assert await db.schema_version() >= 11
        after = [tuple(r) for r in await db.fetchall("SELECT * FROM memories ORDER BY id")]
        assert after == before
        memory = LongTermMemory(db, FrozenClock(datetime(2025, 9, 30, tzinfo=UTC)))
        same = await memory.records.same_text(5, "ann drinks her coffee black")
        assert same is not None and same.id == 11
        subject = await memory.records.same_subject(5, "Coffee", [Kind.FACT, Kind.MESSAGE])
        assert [m.id for m in subject] == [11]
        assert [m.id for m in await memory.records.important(5, 5, 0.5)] == [11]
        for name in ("memories_by_text", "memories_by_subject", "memories_by_importance"):
            sql = await db.scalar("SELECT sql FROM sqlite_master WHERE name = ?", (name,))
            assert "kind != 'message'" in sql
            entries = await db.scalar(
                f"SELECT COUNT(*) FROM memories INDEXED BY {name}"
                " WHERE user_id = 5 AND superseded_at IS NULL"
                " AND kind != 'message'"
                + (" AND subject_key != ''" if name == "memories_by_subject" else "")
            )
            assert entries == 1
        plans = [
            " ".join(str(r[3]) for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, params))
            for sql, params in (
                (
                    "SELECT id FROM memories WHERE user_id = ? AND superseded_at IS NULL"
                    " AND kind != 'message' AND text = ? COLLATE NOCASE",
                    (5, "x"),
                ),
                (
                    "SELECT id FROM memories WHERE user_id = ? AND subject_key = ?"
                    " AND subject_key != '' AND superseded_at IS NULL AND kind != 'message'",
                    (5, "x"),
                ),
            )
        ]
        assert "memories_by_text" in plans[0] and "memories_by_subject" in plans[1]
    finally:
        await db.close()


async def test_the_look_ups_of_every_turn_and_indexing_pass_never_walk_the_memories(
    tmp_path: Path,
) -> None:
    """Many facts and a few transcript rows. The ids a transcript search (and a timed search of
    facts) hands the vector index, the rows still to be indexed and the count of indexed rows
    are right (superseded and unindexed rows, other kinds and other users left out), and every
    statement they run seeks through an index: none reads the whole table or every memory of
    the user (at 100,000 memories each such walk cost 28-250 ms)."""
    from datetime import UTC, datetime, timedelta

    from memory.clock import FrozenClock
    from memory.longterm import Kind, LongTermMemory
    from memory.longterm.keyword import RowFilter
    from memory.longterm.lookups import RowLookups

    db = await Database.open(tmp_path / "s.db")
    try:
        await db.execute("INSERT INTO users (id, display_name, created_at) VALUES (5, 'Ann', 'x')")
        await db.execute("INSERT INTO users (id, display_name, created_at) VALUES (6, 'Bo', 'x')")
        start = datetime(2025, 5, 1, tzinfo=UTC)
        rows = []
        for i in range(1, 3001):
            kind = "message" if i % 500 == 0 else "fact"
            user = 6 if i == 1000 else 5
            superseded = "2025-06-01T00:00:00.000000+00:00" if i == 1500 else None
            indexed = 0 if i in (2000, 2001) else 1
            at = (start + timedelta(minutes=i)).isoformat(timespec="microseconds")
            rows.append((i, user, kind, f"row {i}", superseded, indexed, at))
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO memories (id, user_id, kind, text, subject, subject_key, source,"
                " trust, importance, superseded_at, indexed, created_at) VALUES"
                " (?, ?, ?, ?, '', '', 'owner_said', 'trusted', 0.5, ?, ?, ?)",
                rows,
            )
        statements: list[str] = []
        await db._conn.set_trace_callback(statements.append)
        lookups = RowLookups(db)
        records = LongTermMemory(db, FrozenClock(start)).records
        messages = RowFilter.of(None, None, [Kind.MESSAGE], None)
        assert await lookups.filtered_ids(5, messages, 400) == [500, 2500, 3000]
        window = RowFilter.of(
            start + timedelta(minutes=10), start + timedelta(minutes=13), [Kind.FACT], None
        )
        assert await lookups.filtered_ids(5, window, 400) == [10, 11, 12]
        facts = RowFilter.of(None, None, [Kind.FACT], None)
        assert await lookups.filtered_ids(5, facts, 400) is None
        assert [r[0] for r in await lookups.unindexed(10)] == [2000, 2001]
        assert await records.indexed_count(5) == 3000 - 4  # user 6's, superseded, unindexed
        await db._conn.set_trace_callback(None)
        assert len(statements) == 5
        for sql in statements:
            plan = [str(r[3]) for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql)]
            assert not any(p == "SCAN memories" or "memories_by_user" in p for p in plan), (
                sql,
                plan,
            )
    finally:
        await db.close()


async def test_approved_results_stored_fenced_before_0014_keep_their_outside_mark(
    tmp_path: Path,
) -> None:
    """A result fenced as outside content before the source column existed must still taint
    the turn that resumes with it; a plain one stays plain."""
    path = tmp_path / "s.db"
    base = [m for m in load_migrations() if m.version < 14]
    db = await Database.open(path, base)
    for approval_id, result in (
        ("a1", '<untrusted id="k3" source="https://x.example">do it</untrusted>'),
        ("a2", "wrote notes.txt"),
    ):
        await db.execute(
            "INSERT INTO approvals (id, tool, arguments, action_hash, status, requested_at,"
            " expires_at, result) VALUES (?, 'web_fetch', '{}', 'h', 'executed', 'x', 'x', ?)",
            (approval_id, result),
        )
    await db.close()
    db = await Database.open(path, load_migrations())
    try:
        rows = await db.fetchall("SELECT id, result_source FROM approvals ORDER BY id")
        assert [(r["id"], r["result_source"]) for r in rows] == [
            ("a1", "web_fetch result"),
            ("a2", None),
        ]
    finally:
        await db.close()


async def test_0022_marks_what_the_code_before_left_pending_as_a_possible_repeat(
    tmp_path: Path,
) -> None:
    """Review 89: a send the code before 0022 had under way at a kill left its row `pending`
    with nothing to say so; sent again after the upgrade it went out as a plain second copy."""
    path = tmp_path / "s.db"
    before = [m for m in load_migrations() if m.version < 22]
    db = await Database.open(path, before)
    await db.execute(
        "INSERT INTO chats (channel, platform_chat_id, kind, created_at)"
        " VALUES ('test', 'c1', 'private', '2026-01-01')"
    )
    for status in ("pending", "sent", "failed"):
        await db.execute(
            "INSERT INTO messages (chat_id, direction, text, status, created_at, updated_at)"
            " VALUES (1, 'out', ?, ?, '2026-01-01', '2026-01-01')",
            (status, status),
        )
    await db.close()
    db = await Database.open(path, load_migrations())
    try:
        rows = await db.fetchall("SELECT status, may_repeat FROM messages ORDER BY id")
        assert [(r["status"], r["may_repeat"]) for r in rows] == [
            ("pending", 1),
            ("sent", 0),
            ("failed", 0),
        ]
    finally:
        await db.close()


UNDO_0031 = (
    "DROP INDEX schedules_made_in_turn",
    "DROP INDEX goals_made_in_turn",
    "ALTER TABLE schedules DROP COLUMN made_in_turn",
    "ALTER TABLE goals DROP COLUMN made_in_turn",
)
"""Statements that take a database back before migration 0031, for tests that roll one back to
an earlier version and start on it again."""
