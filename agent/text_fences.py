"""Whether a Markdown text ends inside a code fence it never closed.

A reply the length limit cut off often stops in the middle of a code block; a note appended
after it would be shown as a line of the code. The check follows CommonMark's fences in short:
an opening line of three or more backticks or tildes (a backtick fence's info string holds no
backtick); the closing line uses the same character, at least as many, and nothing else.
Fences are found at any indentation, so one inside a list item counts too.
"""

from __future__ import annotations

import re

__all__ = ["close_open_fence", "open_fence"]

_FENCE_LINE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")


def open_fence(text: str) -> tuple[str, str] | None:
    """The indentation and fence (e.g. `("", "```")`) of a code block `text` ends inside, or
    None when every code fence it opens is closed."""
    opened: tuple[str, str] | None = None
    for line in text.split("\n"):
        match = _FENCE_LINE.match(line)
        if match is None:
            continue
        indent, run, rest = match[1], match[2], match[3]
        if opened is None:
            if not (run[0] == "`" and "`" in rest):
                opened = (indent, run)
        elif run[0] == opened[1][0] and len(run) >= len(opened[1]) and not rest.strip():
            opened = None
    return opened


def close_open_fence(text: str) -> str:
    """`text` with a closing fence added when it ends inside an open code block (indented as
    its opener, so a fence in a list item closes inside the item)."""
    opened = open_fence(text)
    if opened is None:
        return text
    indent, run = opened
    return f"{text.rstrip()}\n{indent}{run}"
