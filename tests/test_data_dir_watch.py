"""The data directory deleted under a running Steward: it went on answering into a deleted
database, and with the lock file gone a second `steward run` started at once on a fresh, empty
directory beside it (R55). Now it stops, saying why, with a failing exit status."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from test_ops_backup import STEWARD, _env

from agent.paths import DataDirLock


def test_a_data_directory_deleted_while_steward_runs_stops_it(tmp_path: Path) -> None:
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
        shutil.rmtree(home / "data")
        running.wait(timeout=30)  # stdin stays open: only the watch can stop it
        assert running.stderr is not None
        err = running.stderr.read()
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 1
    said = err.decode()
    assert "was deleted or replaced while Steward ran; stopping" in said
    assert "Traceback" not in said


def test_a_data_directory_away_for_a_moment_is_no_reason_to_stop(tmp_path: Path) -> None:
    """R60: one look that found nothing (moved and put back, a network file system's hiccup)
    stopped Steward; it takes two in a row."""
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
        # away for 4.5 s: one look (every 5 s) likely finds it gone, never two in a row
        (home / "data").rename(home / "elsewhere")
        time.sleep(4.5)
        (home / "elsewhere").rename(home / "data")
        time.sleep(6)
        assert running.poll() is None
    finally:
        assert running.stdin is not None
        running.stdin.close()
        running.wait(30)
