"""Reading one PDF in a process of its own, under a memory and a time limit.

pypdf keeps every stream it unpacks for as long as its reader lives: a 245 KB PDF whose page
draws 700 forms of 8 MB each took 5 GB within the time limit, and bounds on each kind of
stream leave the next kind open. In a child process with an address-space limit such a file
costs the child its life, never Steward its memory, and a hard timeout bounds what pypdf does
between two checks of its own. The parent (`documents.extract_text`) writes the file to stdin;
the child answers one JSON object on stdout: the text and page count, or the reason for the
sender.
"""

from __future__ import annotations

import json
import resource
import sys

MEMORY_LIMIT = 1536 * 1024 * 1024
"""Address space for the child: the interpreter and pypdf take ~100 MB of it; a page of
ordinary text a few MB."""


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    seconds = float(sys.argv[1])
    raw = sys.stdin.buffer.read()
    from agent.media.documents import DocumentError, read_pdf

    try:
        extracted = read_pdf(raw, seconds)
        answer = {"text": extracted.text, "pages": extracted.pages}
    except DocumentError as exc:
        answer = {"error": str(exc)}
    except MemoryError:
        answer = {"error": "too much"}
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    main()
