"""How much of a message's header block is read: the first HEADER_LIMIT bytes.

A header block has no size limit of its own: 8 MB of short `X-Pad:` lines pass every MTA, and
the parser took 2.5 s and 80 MiB for them, in every listing, watcher pass and briefing that
fetched them. So listings fetch `BODY.PEEK[HEADER]<0.N>` only, and every parse (listing or
whole message) reads the header lines that end before HEADER_LIMIT: the block is cut before
its last field that may go on past the limit, so no field is ever read half (a From cut after
its name, a Subject missing its folded second line). A field after the cut is not read at all:
a message whose From comes after 8 MB of padding is shown with no sender, never another one.
Its top-level Content-Type and Content-Transfer-Encoding are carried over, so its body still
reads as what it is.
"""

from __future__ import annotations

import re

__all__ = ["CUT_NOTE", "HEADER_FETCH", "HEADER_LIMIT", "cap_header_block", "head_end"]

HEADER_LIMIT = 128 * 1024
"""Bytes of a header block read (real mail: a few KB; a long chain of Received and DKIM
lines: tens of KB)."""
HEADER_FETCH = f"BODY.PEEK[HEADER]<0.{HEADER_LIMIT}>"
"""The FETCH item for a listing's headers (not marked read: PEEK)."""
CUT_NOTE = (
    f"its header block is over {HEADER_LIMIT // 1024} KB: only the header lines before that "
    "were read (a sender, recipient or subject written after them is not shown)"
)
_CARRIED_MAX = 8_192
_MIME_FIELD = re.compile(  # in lower case: a literal start is searched many times faster
    rb"\n(content-type|content-transfer-encoding)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*"
)
_CONTENT_FIELD = re.compile(rb"\ncontent-[!-9;-~]*[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*")
_FIELD_START = re.compile(rb"\n(?=[^ \t\r\n])")


def head_end(raw: bytes) -> int:
    """Where the header block ends (the whole of `raw` when no blank line ends it)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


def _last_field_start(head: bytes) -> int:
    """Where the last field of `head` begins (its line may go on, or be folded, past the
    end): `head[:result]` holds only whole fields."""
    last = 0
    for match in _FIELD_START.finditer(head):
        last = match.end()
    return last


def _carried(raw: bytes, kept: bytes, start: int, end: int) -> bytes:
    """The top-level MIME fields between `start` and `end` (the first of each) that `kept`
    lacks, each cut to _CARRIED_MAX bytes, as header lines."""
    have = {m[1] for m in _MIME_FIELD.finditer(b"\n" + kept.lower())}
    found = b""
    lowered = raw[start - 1 : end].lower() if start else b"\n" + raw[:end].lower()
    offset = start - 1 if start else -1  # where `lowered` begins in `raw`
    for match in _MIME_FIELD.finditer(lowered):
        if len(have) == 2:
            break
        if match[1] in have:
            continue
        have.add(match[1])
        field = raw[offset + match.start() + 1 : offset + match.end()]
        found += b"\r\n" + field[:_CARRIED_MAX].rstrip(b"\r\n")
    return found


def _trim_content_fields(raw: bytes, end: int) -> bytes:
    """`raw` with each Content-* field of its header block cut to _CARRIED_MAX bytes, as the
    parse cuts them anyway (`headers.read_capped`): a long Content-Type alone does not make a
    block too long to read."""
    lowered = b"\n" + raw[:end].lower()  # index i here is raw's i - 1
    pieces: list[bytes] = []
    done = 0
    for match in _CONTENT_FIELD.finditer(lowered):
        start, stop = match.start(), match.end() - 1  # the field in `raw`
        if stop - start <= _CARRIED_MAX:
            continue
        ending = b"\r" if raw[stop - 1 : stop] == b"\r" else b""
        pieces += [raw[done:start], raw[start : start + _CARRIED_MAX].rstrip(b"\r\n \t"), ending]
        done = stop
    return b"".join([*pieces, raw[done:]]) if pieces else raw


def cap_header_block(raw: bytes, limit: int = HEADER_LIMIT) -> tuple[bytes, bool]:
    """`raw` (a whole message, a header block, or the first `limit` bytes of one as a listing
    fetches it) with at most `limit` bytes of header lines, and whether any were left out."""
    end = head_end(raw)
    if end < len(raw) and end <= limit:
        return raw, False  # the block ends (a blank line) within the limit
    if end == len(raw) and len(raw) < limit:
        return raw, False  # a header block without its blank line, shorter than the limit
    if end < len(raw):
        raw = _trim_content_fields(raw, end)
        end = head_end(raw)
        if end <= limit:
            return raw, False
    start = _last_field_start(raw[:limit])
    kept = raw[:start].rstrip(b"\r\n")
    if end == len(raw):  # a header block alone (a listing's): its end is all there is
        return kept + b"\r\n\r\n", True
    return kept + _carried(raw, kept, start, end) + raw[end:], True
