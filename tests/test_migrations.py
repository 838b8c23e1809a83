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
