"""Shared pieces of the fault suite: `steward run` as a subprocess against the loopback fakes,
and each case's outcome for the per-category tally printed at the end of the run
(tests/conftest.py).

A category's tally: cases tried, cases held (every check passed), data lost (a message neither
answered nor marked interrupted, a reminder lost or sent twice, an approval that vanished or ran
unasked, memory ids that SQLite and Chroma disagree on, an audit chain that does not verify).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import tallies
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack
from fakes.telegram import FakeTelegram

STEWARD = [sys.executable, "-m", "bot.cli", "run"]
OWNER_TG = 1001
OWNER_SLACK = "UOWNER"


def record(category: str, held: bool, lost: int = 0) -> None:
    """One case of a category, for the summary line tests/conftest.py prints."""
    tallies.note("fault case", (category, held, lost))


def kills_wanted(default: int = 3) -> int:
    return max(1, int(os.environ.get("FAULTS_KILLS", default)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def steward_env(
    data: Path,
    model: FakeAnthropic,
    tg: FakeTelegram | None = None,
    sl: FakeSlack | None = None,
    **extra: str,
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "STEWARD_", "TELEGRAM_", "SLACK_", "CHROMA_"))
    }
    owners = [f"telegram:{OWNER_TG}"] + ([f"slack:{OWNER_SLACK}"] if sl else [])
    env |= {
        "STEWARD_DATA_DIR": str(data),
        "STEWARD_LOG_LEVEL": "INFO",
        "STEWARD_OWNER": ",".join(owners),
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": model.base_url,
        "STEWARD_MODEL_RETRIES": "0",
        "STEWARD_HTTP_HOST": "127.0.0.1",
        "STEWARD_HTTP_PORT": str(free_port()),
    }
    if tg is not None:
        env |= {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE": tg.base_url}
    if sl is not None:
        env |= {"SLACK_BOT_TOKEN": sl.bot_token, "SLACK_API_URL": sl.api_url}
    return env | extra


class StewardProcess:
    """One `steward run` subprocess; its stdout+stderr go to `log` (appended across restarts)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts} =====\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *STEWARD, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )

    async def kill(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout: float = 20) -> int:  # noqa: ASYNC109
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return int(self.process.returncode or 0)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def current_log(self) -> str:
        return self.log_text().rsplit(f"===== start {self.starts} =====", 1)[-1]


async def eventually(
    check: Callable[[], Any | Awaitable[Any]],
    timeout: float = 10,  # noqa: ASYNC109
    what: str = "condition",
    every: float = 0.05,
) -> Any:
    """Poll `check` until it returns something truthy; raise AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A short read of Steward's SQLite file from the test (WAL: readers never block it)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def audit_verify(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "audit",
        "verify",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), out.decode(errors="replace")
