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
import json
import os
import resource
import sys
import weakref
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
together held 6 GB), and the rest wait their turn."""
_children: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def read_in_child(raw: bytes, seconds: float) -> Extracted:
    loop = asyncio.get_running_loop()
    gate = _children.setdefault(loop, asyncio.Semaphore(_CHILDREN))  # one per event loop
    async with gate:
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
