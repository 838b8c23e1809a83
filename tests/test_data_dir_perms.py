"""What Steward writes is its owner's alone (review 63): under a shell's usual umask 022 the
database was created 0644 in a 0755 directory, readable by every local user (memories,
transcripts, mail quotes). Steward sets umask 077, and closes a data directory an earlier run
(or a hand-made one) left open."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    return env | {"STEWARD_DATA_DIR": str(data_dir), "STEWARD_LOG_LEVEL": "WARNING"}


async def _run_with_umask_022(data: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=_env(data),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.umask(0o022),  # as a login shell has it
    )
    _, err = await asyncio.wait_for(process.communicate(b"/help\n"), 60)
    assert process.returncode == 0, err.decode()
    return err.decode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_data_directory_and_database_are_the_owners_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await _run_with_umask_022(data)
    assert _mode(data) == 0o700
    made = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name == "steward.db" for p in made)
    open_to_others = [f"{p.name} {_mode(p):o}" for p in made if _mode(p) & 0o077]
    assert open_to_others == []


async def test_a_data_directory_left_open_is_closed_and_said(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    err = await _run_with_umask_022(data)
    assert _mode(data) == 0o700
    assert "was open to other users (mode 755)" in err
