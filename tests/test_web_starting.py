"""R239: /web sent while Steward starts answered from the last run's record: the console starts
only after the warm-up (up to 15 s), so a link could point at a port another program held this
run, or the answer named the last run's port after the owner had changed it."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from harness import free_port

STEWARD = [sys.executable, "-m", "bot.cli", "run"]


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    return env | {
        "STEWARD_DATA_DIR": str(data_dir),
        "STEWARD_LOG_LEVEL": "WARNING",
        "STEWARD_EMBEDDER": "none",
        "STEWARD_HTTP_HOST": "127.0.0.1",
        "STEWARD_HTTP_PORT": str(port),
    }


async def _run(stdin: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *STEWARD, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_web_at_start_with_the_port_held_hands_out_no_link(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        out = await _run("/web\n", _env(tmp_path / "data", port))
    assert "/login?token=" not in out, out
    assert "still starting" in out or f"cannot listen on 127.0.0.1:{port}" in out, out


async def test_web_at_start_does_not_answer_with_the_last_runs_failure(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await _run("", _env(data, free_port()))  # a database to hold the last run's record
    with closing(sqlite3.connect(data / "steward.db")) as db, db:
        db.execute("UPDATE state SET value = '' WHERE key = 'web.base_url'")
        db.execute(
            "INSERT OR REPLACE INTO state (key, value) VALUES ('web.down', ?)",
            ("cannot listen on 127.0.0.1:1 (the port is in use)",),
        )
    new = free_port()
    out = await _run("/web\n", _env(data, new))
    assert "127.0.0.1:1 " not in out and "STEWARD_HTTP_PORT" not in out, out
    assert "still starting" in out or f"127.0.0.1:{new}/login?token=" in out, out
