"""Reading one PDF in a process of its own, under a memory and a time limit.

pypdf keeps every stream it unpacks for as long as its reader lives: a 245 KB PDF whose page
draws 700 forms of 8 MB each took 5 GB within the time limit, and bounds on each kind of
stream leave the next kind open. In a child process with an address-space limit such a file
costs the child its life, never Steward its memory, and a hard timeout bounds what pypdf does
between two checks of its own. The parent (`documents.extract_text`) writes the file to stdin;
the child answers one line of JSON on stdout, the page count or the reason for the sender,
and after it the text as UTF-8 (at most `pdf_text.MAX_PDF_TEXT` characters): decoding it takes
milliseconds, where parsing megabytes of text as JSON held the event loop for 278 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

from agent.media.document_types import DocumentError, Extracted
from agent.media.pdf_text import read_pdf

__all__ = ["MEMORY_LIMIT", "read_in_child"]

MEMORY_LIMIT = 1536 * 1024 * 1024
"""Address space for the child: the interpreter and pypdf take ~100 MB of it; a page of
ordinary text a few MB."""


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    try:  # if memory runs out all the same, the kernel takes this process, never Steward
        with open("/proc/self/oom_score_adj", "w") as adjust:
            adjust.write("1000")
    except OSError:
        pass
    seconds = float(sys.argv[1])
    raw = sys.stdin.buffer.read()
    text = ""
    try:
        extracted = read_pdf(raw, seconds)
        answer: dict[str, object] = {"pages": extracted.pages, "read": extracted.pages_read}
        text = extracted.text
    except DocumentError as exc:
        answer = {"error": str(exc)}
    except MemoryError:
        answer = {"error": "too much"}
    sys.stdout.buffer.write(json.dumps(answer).encode() + b"\n")
    sys.stdout.buffer.write(text.encode("utf-8", errors="replace"))
    sys.stdout.buffer.flush()


TOO_MUCH = (
    "its pages hold far too much to read (megabytes of drawing instructions or of fonts each)"
)


_ROOT = str(Path(__file__).resolve().parents[2])
"""Where the `agent` package is: the child imports it from there."""


_CHILDREN = 2
"""PDFs read at once: each child may take its whole memory limit (several chats sending PDFs
together held 6 GB), and the rest wait their turn. One of them is kept for the owner's PDFs."""


class _Gate:
    """Who may start a PDF child: at most `_CHILDREN` at once, the owner's PDF whenever one is
    free, another person's only while one stays free for the owner, and one at a time for each
    person (their next waits for it). A guest's 9 KB PDF of shared forms holds a child for its
    whole deadline (30 s) and costs them nothing (no text, no turn): two of them, in a DM and a
    group, had taken both children and the owner's one-page PDF waited 33 s behind them."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._busy = 0  # children running
        self._others = 0  # of them for people other than the owner
        self._waiting: list[asyncio.Future[None]] = []
        self._people: dict[int, tuple[asyncio.Lock, list[int]]] = {}
        """A person's lock, and how many of their PDFs hold or await it (dropped at none)."""

    @contextlib.asynccontextmanager
    async def slot(self, guest: int | None) -> AsyncIterator[None]:
        if guest is None:
            async with self._child(owner=True):
                yield
            return
        own, users = self._people.setdefault(guest, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with own, self._child(owner=False):
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._people[guest]

    @contextlib.asynccontextmanager
    async def _child(self, *, owner: bool) -> AsyncIterator[None]:
        while not (self._busy < self._size and (owner or self._others < self._size - 1)):
            woken = asyncio.get_running_loop().create_future()
            self._waiting.append(woken)
            try:
                await woken
            finally:
                self._waiting.remove(woken)
        self._busy += 1  # no await between the check and the count: no one passes between
        self._others += not owner
        try:
            yield
        finally:  # no await here either: a cancelled reader always gives its child back
            self._busy -= 1
            self._others -= not owner
            for woken in self._waiting:  # each checks again, in the order they came
                if not woken.done():
                    woken.set_result(None)


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Gate] = weakref.WeakKeyDictionary()


async def read_in_child(raw: bytes, seconds: float, guest: int | None = None) -> Extracted:
    """`guest`: the person other than the owner for whom the PDF is read (None: the owner)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:  # one per event loop
        gate = _gates[loop] = _Gate(_CHILDREN)
    async with gate.slot(guest):
        return await _one_child(raw, seconds)


async def _one_child(raw: bytes, seconds: float) -> Extracted:
    root = _ROOT
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent.media.pdf_child",
        str(seconds),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=root,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": root,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
    )
    try:
        out, _ = await asyncio.wait_for(child.communicate(raw), seconds + 15)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise DocumentError(TOO_MUCH) from None
    except BaseException:
        if child.returncode is None:
            child.kill()
            await child.wait()
        raise
    head, newline, text = out.partition(b"\n")
    try:
        answer = json.loads(head)
        if not newline or not isinstance(answer, dict):
            raise ValueError
    except ValueError:  # killed at its memory limit, or worse
        raise DocumentError(TOO_MUCH) from None
    if "error" in answer:
        raise DocumentError(TOO_MUCH if answer["error"] == "too much" else answer["error"])
    read = answer.get("read")
    return Extracted(
        text.decode("utf-8", errors="replace"),
        "pdf",
        answer["pages"],
        read if isinstance(read, int) else None,
    )


if __name__ == "__main__":
    main()
