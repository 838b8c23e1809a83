"""A workspace path whose link is swapped or removed while Steward resolves it is a one-line
refusal, never a raw OSError (session 33 left this open: realpath looks at a link, then reads
it; in between it can become a folder or go, and `readlink` fails with EINVAL or ENOENT)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from agent.errors import ToolError
from agent.sandbox import Sandbox


def test_a_link_flipping_under_resolve_is_refused_in_one_line(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    sandbox = Sandbox(workspace)
    root = sandbox.root()
    (root / "target").mkdir()
    flip = root / "flip"
    stop = threading.Event()

    def flipper() -> None:  # link, gone, folder, gone: over and over
        while not stop.is_set():
            try:
                os.symlink("target", flip)
                os.unlink(flip)
                flip.mkdir()
                flip.rmdir()
            except OSError:
                pass

    thread = threading.Thread(target=flipper, daemon=True)
    thread.start()
    refused: list[str] = []
    raw: list[OSError] = []
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and len(refused) < 20:
            try:
                sandbox.resolve("flip/notes.md")
            except ToolError as exc:
                refused.append(str(exc))
            except OSError as exc:  # what this test is about
                raw.append(exc)
                break
    finally:
        stop.set()
        thread.join(5)
    assert raw == []
    assert refused, "the race was never met: nothing was checked"
    assert all("changed while it was being looked at" in text for text in refused), refused[:3]
    assert all("\n" not in text for text in refused)
