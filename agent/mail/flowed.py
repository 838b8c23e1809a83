"""Plain text sent `format=flowed` (RFC 3676) read as its sender wrote it.

Thunderbird, Apple Mail and others wrap each paragraph at ~72 columns and mark the breaks they
made with a trailing space; a reader joins those lines again. Read as they came, a paragraph was
cut into short lines mid-sentence (and a quoted one at every `>` line). The standard library's
`email` package does not decode it, and no maintained package on PyPI does either.
"""

from __future__ import annotations

__all__ = ["unflow"]

_SIGNATURE = "-- "  # the signature separator: never a flowed line


def unflow(text: str, *, delsp: bool = False) -> str:
    """`text` with its soft line breaks joined: a line ending in a space (not the signature
    separator) goes on in the next line of the same quote depth; space-stuffing is undone;
    with `delsp` (DelSp=yes) the marking space itself is dropped. Quote depth is kept as
    `>` marks before each joined line."""
    out: list[str] = []
    depth_of: int | None = None
    pieces: list[str] = []

    def close() -> None:
        if depth_of is not None:
            marks = ">" * depth_of + " " if depth_of else ""
            out.append(marks + "".join(pieces))

    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:].removeprefix(" ")  # space-stuffed (or the space after `>`)
        flowed = body.endswith(" ") and body != _SIGNATURE
        if flowed and delsp:
            body = body[:-1]
        # a paragraph ends at a change of quote depth, and before the signature separator
        if depth_of is not None and (depth != depth_of or body == _SIGNATURE):
            close()
            depth_of, pieces = None, []
        if depth_of is None:
            depth_of, pieces = depth, []
        pieces.append(body)
        if not flowed:
            close()
            depth_of, pieces = None, []
    close()
    return "\n".join(out)
