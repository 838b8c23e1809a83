"""A `steward backup` killed outright (SIGKILL skips its clean-up) left its hidden staging folder,
with a whole copy of the database, beside the target for good. The next backup to that name
removes such folders and says so on stderr; a folder a live backup holds is left alone."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from harness import make_settings

from bot.backup import restore_backup
from memory.clock import SystemClock
from memory.stores import Stores

STEWARD = [sys.executable, "-m", "bot.cli"]


async def _database(data: Path) -> None:
    stores = await Stores.open(make_settings(data, None).database_path, SystemClock())
    await stores.audit.record("test.first", actor="test")
    await stores.close()


def _home(tmp_path: Path, filler_mb: int = 0) -> tuple[dict[str, str], Path]:
    """A data directory with a database (`filler_mb` of random bytes in it: a backup that
    takes a moment), and the environment of the `steward` commands on it."""
    data = tmp_path / "data"
    asyncio.run(_database(data))
    if filler_mb:
        with sqlite3.connect(data / "steward.db") as conn:
            conn.execute("CREATE TABLE zz_filler (x BLOB)")
            conn.executemany(
                "INSERT INTO zz_filler VALUES (?)", [(os.urandom(1 << 20),)] * filler_mb
            )
        conn.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    env |= {"STEWARD_HOME": str(tmp_path), "STEWARD_DATA_DIR": str(data)}
    return env | {"STEWARD_EMBEDDER": "none"}, data


def _backup(env: dict[str, str], target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STEWARD, "backup", str(target)], env=env, capture_output=True, text=True, timeout=120
    )


def _staging(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.name.startswith(".b.tar.gz-"))


def test_a_backup_killed_mid_way_leaves_a_folder_the_next_backup_removes(tmp_path: Path) -> None:
    env, _ = _home(tmp_path, filler_mb=40)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "b.tar.gz"
    killed = subprocess.Popen(
        [*STEWARD, "backup", str(target)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not any((folder / "b.tar.gz").exists() for folder in _staging(out)):
        assert killed.poll() is None, "the backup ended before it could be killed"
        assert time.monotonic() < deadline, "no partial archive appeared"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    [left] = _staging(out)
    assert (left / "steward.db").is_file()  # what the reviewer found: a copy of the database

    done = _backup(env, target)
    assert done.returncode == 0, done.stderr
    assert _staging(out) == [], "the left-over folder is still there"
    [line] = [s for s in done.stderr.splitlines() if s.startswith("removed ")]
    assert left.name in line
    restored = make_settings(tmp_path / "restored", None)
    assert restore_backup(restored, target).schema > 0  # and the backup itself is whole


def test_a_live_backups_folder_and_a_just_made_one_are_left_alone(tmp_path: Path) -> None:
    env, _ = _home(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    stale, live, fresh = (out / f".b.tar.gz-{n}" for n in ("old00001", "live0001", "new00001"))
    other = out / ".other.tar.gz-abcd1234"  # another target's: not this backup's business
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "steward.db").write_bytes(b"a snapshot" * 1000)
    fresh.mkdir()  # a backup between making its folder and locking it
    held = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the running backup that owns it does
        done = _backup(env, out / "b.tar.gz")
    finally:
        os.close(held)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    assert live.is_dir() and (live / "steward.db").is_file()
    assert fresh.is_dir() and other.is_dir()
    [line] = [s for s in done.stderr.splitlines() if s.startswith("removed ")]
    assert stale.name in line and live.name not in line and fresh.name not in line
    assert _staging(out) == [live, fresh]


def test_a_restores_left_over_staging_folder_is_removed_by_the_next_restore(
    tmp_path: Path,
) -> None:
    """Review 84: a restore killed outright left `.restore-*` (the unpacked backup) inside the
    data directory for good; the data directory's lock says no other restore runs."""
    env, _ = _home(tmp_path)
    archive = tmp_path / "b.tar.gz"
    assert _backup(env, archive).returncode == 0
    target = make_settings(tmp_path / "restored", None)
    target.data_dir.mkdir(parents=True)
    left = target.data_dir / ".restore-dead0001"
    (left / "data").mkdir(parents=True)
    (left / "data" / "steward.db").write_bytes(b"an unpacked copy" * 1000)
    assert restore_backup(target, archive).schema > 0
    assert not left.exists()
    assert not [p for p in target.data_dir.iterdir() if p.name.startswith(".restore-")]
