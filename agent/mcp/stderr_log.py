"""A stdio MCP server's stderr, kept on disk within a bound.

The server writes into a pipe, not into the file: a thread copies what comes into
`stderr.log` and, past `cap` bytes, moves it to `stderr.log.1` (the one before goes) and starts
a new one, so a server's log never holds more than twice the cap however much it writes (R143:
a server logging in a loop wrote 6 GB in five seconds into a file opened for appending, beside
the database, and every backup copied it). The thread, not the event loop, reads: a server
that writes without pause costs a core's reads, never the chats' loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["CAP", "capped_stderr"]

log = logging.getLogger(__name__)

CAP = 1 << 20
"""Bytes in `stderr.log` before it is moved aside to `stderr.log.1`."""
_CHUNK = 1 << 16


@contextlib.contextmanager
def capped_stderr(path: Path, cap: int = CAP) -> Iterator[IO[str]]:
    """A file for a child's stderr whose bytes reach `path` within the bound. The parent's
    end is closed on exit; the thread ends when the child's end closes too (its exit)."""
    if _size(path) > cap:  # a log from before the bound, or a cap made smaller
        _rotate(path)
    read_end, write_end = os.pipe()
    threading.Thread(
        target=_copy, args=(read_end, path, cap), name=f"mcp-stderr-{path.parent.name}", daemon=True
    ).start()
    writer = os.fdopen(write_end, "w")
    try:
        yield writer
    finally:
        writer.close()


def _copy(read_end: int, path: Path, cap: int) -> None:
    """Drains the pipe to its end whatever happens to the file: a server whose stderr is
    not read blocks once the pipe is full."""
    out: IO[bytes] | None = None
    written = 0
    with contextlib.suppress(OSError):
        out, written = path.open("ab"), _size(path)
    try:
        while chunk := os.read(read_end, _CHUNK):
            if out is None:
                continue
            try:
                if written + len(chunk) > cap and written > 0:
                    out.close()
                    _rotate(path)
                    out, written = path.open("ab"), 0
                out.write(chunk[:cap])
                out.flush()
                written += min(len(chunk), cap)
            except OSError:
                log.warning("%s cannot be written; the server's stderr is dropped", path)
                out = None
    finally:
        os.close(read_end)
        if out is not None:
            with contextlib.suppress(OSError):
                out.close()


def _rotate(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".1"))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
