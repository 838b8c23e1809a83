"""A stdio MCP server's stderr, kept on disk within a bound.

The server writes into a pipe, not into the file: a thread copies what comes into
`stderr.log` and, past `cap` bytes, moves it to `stderr.log.1` (the one before goes) and starts
a new one, so a server's log never holds more than twice the cap however much it writes (R143:
a server logging in a loop wrote 6 GB in five seconds into a file opened for appending, beside
the database, and every backup copied it). The thread, not the event loop, reads: a server
that writes without pause costs a core's reads, never the chats' loop.

What is kept has every registered secret (`log_scrub`) as `***`, as a tool result or a log line
has (R183: a server printing the token it was given left it on disk in the clear), and the
server's own secrets from 3 characters, as its results have (R251: a 4-digit SIM_PIN, too short
for the global scrubber, was masked in results and kept in the clear here). A secret cut in two
by a read is still caught: the bytes that may begin one are held back for the next read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from agent.log_scrub import byte_forms, secret_forms

__all__ = ["CAP", "capped_stderr"]

log = logging.getLogger(__name__)

CAP = 1 << 20
"""Bytes in `stderr.log` before it is moved aside to `stderr.log.1`."""
_CHUNK = 1 << 16


@contextlib.contextmanager
def capped_stderr(path: Path, cap: int = CAP, secrets: Iterable[str] = ()) -> Iterator[IO[str]]:
    """A file for a child's stderr whose bytes reach `path` within the bound, `secrets` (the
    server's own) masked as well. The parent's end is closed on exit; the thread ends when the
    child's end closes too (its exit)."""
    own = {form.encode() for value in secrets if len(value) >= 3 for form in secret_forms(value)}
    if _size(path) > cap:  # a log from before the bound, or a cap made smaller
        _rotate(path)
    read_end, write_end = os.pipe()
    threading.Thread(
        target=_copy,
        args=(read_end, path, cap, frozenset(own)),
        name=f"mcp-stderr-{path.parent.name}",
        daemon=True,
    ).start()
    writer = os.fdopen(write_end, "w")
    try:
        yield writer
    finally:
        writer.close()


def _copy(read_end: int, path: Path, cap: int, own: frozenset[bytes] = frozenset()) -> None:
    """Drains the pipe to its end whatever happens to the file: a server whose stderr is
    not read blocks once the pipe is full."""
    sink = _Sink(path, cap)
    held = b""
    try:
        while chunk := os.read(read_end, _CHUNK):
            ready, held = _release(held + chunk, _forms(own))
            sink.write(ready)
        sink.write(_scrub(held, _forms(own)))
    finally:
        os.close(read_end)
        sink.close()


def _forms(own: frozenset[bytes]) -> tuple[bytes, ...]:
    """The registered secrets' forms and the server's own, longest first."""
    return tuple(sorted(own.union(byte_forms()), key=len, reverse=True)) if own else byte_forms()


def _release(data: bytes, forms: tuple[bytes, ...] | None = None) -> tuple[bytes, bytes]:
    """What may be written now, secrets redacted, and the tail held back: only the bytes that
    may begin a secret cut by the read (fewer than the longest), so a line without end holds
    no more memory than that, and a last line that begins none is written at once."""
    forms = byte_forms() if forms is None else forms
    cut = len(data) - max((_begun(data, form) for form in forms), default=0)
    moved = True
    while moved:  # a whole secret across the cut goes out with what is written, redacted
        moved = False
        for form in forms:
            start = data.find(form, max(cut - len(form) + 1, 0), cut + len(form) - 1)
            if start != -1:
                cut, moved = start + len(form), True
    return _scrub(data[:cut], forms), data[cut:]


def _begun(data: bytes, form: bytes) -> int:
    """How many bytes at the end of `data` are the start of `form` (and not all of it)."""
    for size in range(min(len(form) - 1, len(data)), 0, -1):
        if data.endswith(form[:size]):
            return size
    return 0


def _scrub(data: bytes, forms: tuple[bytes, ...]) -> bytes:
    for form in forms:
        if form in data:
            data = data.replace(form, b"***")
    return data


class _Sink:
    """`stderr.log` within its cap, moved aside when full; once it cannot be written, what
    comes is dropped (and the pipe still drained)."""

    def __init__(self, path: Path, cap: int) -> None:
        self.path, self.cap = path, cap
        self.out: IO[bytes] | None = None
        self.written = 0
        with contextlib.suppress(OSError):
            self.out, self.written = path.open("ab"), _size(path)

    def write(self, data: bytes) -> None:
        if self.out is None or not data:
            return
        try:
            if self.written + len(data) > self.cap and self.written > 0:
                self.out.close()
                _rotate(self.path)
                self.out, self.written = self.path.open("ab"), 0
            self.out.write(data[: self.cap])
            self.out.flush()
            self.written += min(len(data), self.cap)
        except OSError:
            log.warning("%s cannot be written; the server's stderr is dropped", self.path)
            self.out = None

    def close(self) -> None:
        if self.out is not None:
            with contextlib.suppress(OSError):
                self.out.close()


def _rotate(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".1"))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
