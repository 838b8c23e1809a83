"""Files changed under a tool while it works: a command (or anything with the workspace) swaps
a folder for a link, or grows a file past a cap after it was checked (R128). Each test races a
thread doing that against the real tool for a bounded time; a tool that checks a path and then
uses it again loses such a race within a few hundred tries."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from test_sandbox_edges import _box

from agent.tools.mail import MAX_ATTACHMENT_BYTES, _read_attachment
from agent.tools.registry import ToolError

RACE_SECONDS = 3.0


def _racing(step: Callable[[], None]) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            step()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop, thread


_SWAP = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
while True:
    libc.renameat2(-100, a, -100, b, 2)  # AT_FDCWD, RENAME_EXCHANGE
"""


async def test_listing_a_folder_swapped_for_a_link_never_lists_outside(tmp_path: Path) -> None:
    """Another process trades the folder `a` and a link `b -> ..` without pause; `list_files a`
    listed the data folder (audit key, policy, database) 3 times in 84 before."""
    async for box in _box(tmp_path):
        (box.workspace / "a").mkdir()
        (box.workspace / "a" / "mine.txt").write_text("x")
        (box.workspace / "b").symlink_to("..")
        a, b = str(box.workspace / "a"), str(box.workspace / "b")
        swapper = await asyncio.create_subprocess_exec(sys.executable, "-c", _SWAP, a, b)
        listed = refused = 0
        try:
            deadline = time.monotonic() + RACE_SECONDS
            while time.monotonic() < deadline:
                try:
                    out = (await box.run("list_files", path="a")).content
                except ToolError:
                    refused += 1
                    continue
                listed += 1
                assert "policy.toml" not in out and "steward.db" not in out, out
        finally:
            swapper.kill()
            await swapper.wait()
        assert listed + refused > 100


async def test_an_attachment_grown_after_its_check_is_not_read_past_the_cap(
    tmp_path: Path,
) -> None:
    """The size was checked, then the file read to its end: flipped to 300 MiB in between, it
    was read whole (170-230 MB a read)."""
    async for box in _box(tmp_path):
        report = box.workspace / "report.pdf"
        report.write_bytes(b"%")
        fd = os.open(report, os.O_WRONLY)
        big = 300 * 2**20

        def flip(fd: int = fd, big: int = big) -> None:
            os.ftruncate(fd, 1)
            time.sleep(0.002)
            os.ftruncate(fd, big)
            time.sleep(0.02)

        stop, thread = _racing(flip)
        largest = reads = 0
        try:
            deadline = time.monotonic() + RACE_SECONDS
            while time.monotonic() < deadline:
                try:
                    largest = max(largest, len(_read_attachment(box.ctx, "report.pdf").data))
                    reads += 1
                except ToolError:
                    pass
        finally:
            stop.set()
            thread.join()
            os.close(fd)
        assert reads > 0
        assert largest <= MAX_ATTACHMENT_BYTES
