"""The data directory deleted under a running Steward: it went on answering into a deleted
database, and with the lock file gone a second `steward run` started at once on a fresh, empty
directory beside it (R55). Now it stops, saying why, with a failing exit status; a look that
finds it gone once (moved away and back, a network file system's hiccup) is not enough (R60)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from test_ops_backup import STEWARD, _env

from agent.paths import DataDirLock


@contextmanager
def _running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`steward run` on the console, its stdin held open (only the watch can stop it), once
    it is up (deleted while it still starts, its start fails on a file it was writing)."""
    home = tmp_path / "home"
    home.mkdir()
    running = subprocess.Popen(
        [*STEWARD, "run"],
        cwd=tmp_path,
        env=_env(home) | {"STEWARD_LOG_LEVEL": "WARNING"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while DataDirLock.held(home / "data") is None:
            assert time.monotonic() < deadline and running.poll() is None, "never started"
            time.sleep(0.1)
        time.sleep(5)  # the rest of the start (the audit key, the database) well done
        assert running.poll() is None
        yield running, home / "data"
    finally:
        if running.poll() is None:
            running.kill()
        running.wait(30)


def test_a_data_directory_deleted_while_steward_runs_stops_it(tmp_path: Path) -> None:
    with _running(tmp_path) as (running, data):
        shutil.rmtree(data, ignore_errors=True)  # Steward may write in it meanwhile
        running.wait(timeout=30)
        assert running.stderr is not None
        said = running.stderr.read().decode()
    assert running.returncode == 1
    assert "was deleted or replaced while Steward ran; stopping" in said
    assert "Traceback" not in said


async def test_a_lock_file_gone_for_one_look_is_no_reason_to_stop(tmp_path: Path) -> None:
    """One look that finds it gone (moved away and back, a network file system's hiccup) is
    not enough; two in a row are. The real lock on a directory nothing else writes to."""
    import asyncio

    from bot.lifecycle import watch_data_dir

    lock = DataDirLock(tmp_path / "data").acquire()
    stop = asyncio.Event()
    try:
        watch = asyncio.create_task(watch_data_dir(lock, stop, every=0.2))
        await asyncio.sleep(0.1)
        lock.path.rename(tmp_path / "away")  # gone for 0.15 s: at most one look in it
        await asyncio.sleep(0.15)
        (tmp_path / "away").rename(lock.path)
        await asyncio.sleep(0.6)
        assert not stop.is_set()
        lock.path.unlink()  # gone for good
        assert await asyncio.wait_for(watch, 2) is True and stop.is_set()
    finally:
        lock.release()
