"""`steward run` as a user runs it: a subprocess on the console channel, fed by a pipe."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import echo_reply

STEWARD = [sys.executable, "-m", "bot.cli", "run"]


def _env(data_dir: Path, model_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    env["STEWARD_DATA_DIR"] = str(data_dir)
    env["STEWARD_LOG_LEVEL"] = "WARNING"
    if model_url:
        env |= {
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "ANTHROPIC_BASE_URL": model_url,
            "STEWARD_MODEL_RETRIES": "0",
        }
    return env


async def _run(stdin: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *STEWARD,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_piped_help_prints_and_exits_zero(tmp_path: Path) -> None:
    code, out, err = await _run("/help\n", _env(tmp_path / "data"))
    assert code == 0, err
    assert "Commands:" in out and "/status" in out
    assert (tmp_path / "data" / "steward.db").exists()


async def test_every_piped_message_is_answered_before_exit(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.latency = 0.1
    fake_model.on_request(echo_reply)
    code, out, err = await _run(
        "first\nsecond\n/status\n", _env(tmp_path / "data", fake_model.base_url)
    )
    assert code == 0, err
    replies = [line for line in out.splitlines() if line.startswith("steward> ")]
    assert replies[:2] == ["steward> re: first", "steward> re: second"]
    assert "Model: claude-sonnet-5-5" in out


async def test_a_crash_between_storing_and_answering_is_reported_after_restart(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    data = tmp_path / "data"
    fake_model.latency = 30  # the turn will still be waiting for the model when we kill it
    process = await asyncio.create_subprocess_exec(
        *STEWARD,
        env=_env(data, fake_model.base_url),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(b"what is the plan for today?\n")
    await process.stdin.drain()
    for _ in range(600):  # start-up takes seconds on a loaded 2-core machine
        if fake_model.requests:
            break
        await asyncio.sleep(0.05)
    assert fake_model.requests, "the turn never reached the model"
    process.send_signal(signal.SIGKILL)
    await process.wait()

    with sqlite3.connect(data / "steward.db") as conn:
        assert conn.execute("SELECT status FROM messages WHERE direction='in'").fetchall() == [
            ("received",)
        ]
        assert conn.execute("SELECT status FROM turns").fetchall() == [("running",)]

    fake_model.latency = 0
    code, out, err = await _run("/status\n", _env(data, fake_model.base_url))
    assert code == 0, err
    assert "I was restarted before I could finish answering “what is the plan for today?”" in out
    assert "Please send it again" in out  # its turn asked for no tool: nothing was done
    with sqlite3.connect(data / "steward.db") as conn:
        assert conn.execute("SELECT status FROM turns").fetchall() == [("interrupted",)]
        statuses = conn.execute(
            "SELECT status FROM messages WHERE direction='in' ORDER BY id"
        ).fetchall()
        assert statuses == [("interrupted",), ("handled",)]
