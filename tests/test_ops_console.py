"""The interactive console in a real pseudo-terminal: Ctrl-C stops it at once, logs stay out
of the chat (they go to the data directory's steward.log), the prompt comes back after a reply,
and a line longer than the terminal's 4,095-character limit arrives whole."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import echo_reply

from memory.clock import SystemClock
from memory.stores import Stores

STEWARD = [sys.executable, "-m", "bot.cli", "run"]
PROMPT = b"you>"  # prompt_toolkit draws the space after it as a cursor move


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    return env | {
        "STEWARD_HOME": str(home),
        "STEWARD_EMBEDDER": "none",
        "STEWARD_LOG_LEVEL": "INFO",
        "TERM": "xterm",
        "COLUMNS": "200",
        "LINES": "50",
        **extra,
    }


class Terminal:
    """A process on the slave side of a pty; we read and type on the master side."""

    def __init__(self, process: subprocess.Popen[bytes], master: int) -> None:
        self.process = process
        self.master = master
        self.seen = b""

    def read_until(self, needle: bytes, timeout: float = 30.0, *, after: int = 0) -> bytes:
        """Read until `needle` shows up past offset `after`; returns everything seen."""
        deadline = time.monotonic() + timeout
        while needle not in self.seen[after:]:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {needle!r}; the screen so far: {self.seen[-2000:]!r}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    break
                self.seen += chunk
        return self.seen

    def type(self, data: bytes) -> None:
        for start in range(0, len(data), 512):  # as a terminal delivers a paste: in pieces
            os.write(self.master, data[start : start + 512])
            time.sleep(0.005)

    def quit(self, timeout: float = 20.0) -> int | None:
        """Ctrl-D, again every 2 s until the process ends: a key pressed while a reply is being
        printed above the prompt may land between two reads."""
        deadline = time.monotonic() + timeout
        code = None
        while code is None and time.monotonic() < deadline:
            self.type(b"\x04")
            code = self.exit_code(timeout=min(2.0, deadline - time.monotonic()))
        return code

    def exit_code(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                return code
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                with suppress(OSError):
                    self.seen += os.read(self.master, 65536)
        return self.process.poll()


@contextmanager
def terminal(home: Path, **env: str) -> Iterator[Terminal]:
    master, slave = pty.openpty()
    process = subprocess.Popen(
        STEWARD,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(home, **env),
        cwd=home,
        start_new_session=True,  # the pty becomes its controlling terminal, as in a shell
        close_fds=True,
    )
    os.close(slave)
    try:
        yield Terminal(process, master)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        os.close(master)


def test_ctrl_c_stops_the_interactive_console_at_once(tmp_path: Path) -> None:
    with terminal(tmp_path) as term:
        term.read_until(PROMPT)
        term.type(b"/status")  # half a line typed, not sent: Ctrl-C must not wait for Enter
        time.sleep(0.3)
        started = time.monotonic()
        term.type(b"\x03")
        code = term.exit_code(timeout=8)
        took = time.monotonic() - started
    assert code is not None, f"still running 8 s after Ctrl-C; screen: {term.seen[-800:]!r}"
    assert took < 5, took
    assert code == 0, term.seen[-800:]  # a clean stop, not a KeyboardInterrupt
    assert b"Traceback" not in term.seen


async def test_ctrl_d_quits_and_logs_go_to_the_file_not_the_chat(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    model = {
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": fake_model.base_url,
        "STEWARD_MODEL_RETRIES": "0",
    }
    # The fake model answers on this event loop; the terminal is driven from a thread.
    await asyncio.to_thread(_chat_and_quit, tmp_path, model)


def _chat_and_quit(tmp_path: Path, model: dict[str, str]) -> None:
    with terminal(tmp_path, **model) as term:
        term.read_until(PROMPT)
        term.type(b"hello there\r")
        reply = term.read_until(b"re: hello there").index(b"re: hello there")
        # The prompt is drawn again below the reply, which was printed above it.
        term.read_until(PROMPT, timeout=10, after=reply)
        code = term.quit()
    assert code == 0, term.seen[-800:]
    screen = term.seen.decode("utf-8", "replace")
    chat = screen.split("Steward is listening", 1)[1]
    assert "HTTP Request" not in screen
    assert " INFO " not in chat, chat  # once the prompt is up, INFO goes to the file
    log = (tmp_path / "data" / "steward.log").read_text()
    assert "Steward is up" in log or "INFO" in log
    assert "HTTP Request" not in log  # per-request lines (their URLs may hold a token) are off


def test_a_line_past_the_terminal_limit_arrives_whole(tmp_path: Path) -> None:
    words = " ".join(f"w{i:04d}" for i in range(1100))  # 6,599 characters, past 4,095
    assert len(words) > 4095
    with terminal(tmp_path) as term:
        term.read_until(PROMPT)
        term.type(f"{words} end\r".encode())
        term.read_until(b"ANTHROPIC_API_KEY", timeout=30)  # answered: no model key here
        assert term.quit() == 0
    received = asyncio.run(_incoming(tmp_path / "data" / "steward.db"))
    assert received == [f"{words} end"]  # whole: not cut at the terminal's 4,095


async def _incoming(db: Path) -> list[str]:
    stores = await Stores.open(db, SystemClock())
    try:
        return [m.text for m in await stores.messages.all(direction="in")]
    finally:
        await stores.close()


def test_sigint_stops_a_console_reading_from_a_pipe_that_stays_open(tmp_path: Path) -> None:
    """The reading thread must not hold up the exit (it used to, until Enter was pressed)."""
    process = subprocess.Popen(
        STEWARD,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(b"/start\n")
        process.stdin.flush()
        deadline = time.monotonic() + 60
        seen = b""
        while b"I'm Steward" not in seen:
            assert time.monotonic() < deadline, seen
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                seen += os.read(process.stdout.fileno(), 65536)
        process.send_signal(signal.SIGINT)  # stdin still open: the reader is blocked in read()
        started = time.monotonic()
        code = process.wait(timeout=10)
        assert time.monotonic() - started < 5
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.stdin.close()


async def test_ctrl_c_stops_at_once_while_a_turn_waits_for_the_model(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.latency = 60  # the model would answer in a minute
    fake_model.reply_text("too late")
    model = {
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": fake_model.base_url,
        "STEWARD_MODEL_RETRIES": "0",
    }

    def drive() -> tuple[int | None, float, bytes]:
        with terminal(tmp_path, **model) as term:
            term.read_until(PROMPT)
            term.type(b"plan my week\r")
            deadline = time.monotonic() + 30
            while not fake_model.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fake_model.requests, "the turn never reached the model"
            started = time.monotonic()
            term.type(b"\x03")
            code = term.exit_code(timeout=10)
            return code, time.monotonic() - started, term.seen

    code, took, seen = await asyncio.to_thread(drive)
    assert code is not None, f"still running 10 s after Ctrl-C: {seen[-800:]!r}"
    assert took < 5, took
    assert code == 0, seen[-800:]
    assert b"Traceback" not in seen, seen.decode("utf-8", "replace")[-3000:]
    # the message was cut short, not answered: the next start says so
    fake_model.latency = 0

    def restart() -> bytes:
        with terminal(tmp_path, **model) as term:
            seen = term.read_until(b"Please send it again", timeout=30)
            assert term.quit() == 0
            return seen

    again = await asyncio.to_thread(restart)
    assert "“plan my week”" in again.decode("utf-8", "replace")
