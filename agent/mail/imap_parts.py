"""What a reply needs of a large message, fetched by IMAP section: its header block, its text
parts and the MIME headers of every part, never an attachment's body (R264: answering a mail
with a 15 MB video fetched it whole five times, 103 MB, 6 s before the card showed).

`plan` reads the message's BODYSTRUCTURE into the sections to fetch; `assemble` puts what came
back together as a message of the same parts, each attachment's body left empty. A reply quotes
the text only, and `parse_message` names an attachment without opening it, so the text, sender
and threading read from it are the whole message's. Anything unforeseen (a message this small,
a part the server reads otherwise than Python does, no boundary, more parts than are ever read,
a header block past the cap, a section not returned): None, and the whole message is fetched,
as before.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent.mail.header_cap import HEADER_FETCH, HEADER_LIMIT

__all__ = [
    "OUTLINE_ITEMS",
    "WHOLE_BELOW",
    "Outline",
    "Plan",
    "assemble",
    "outline_of",
    "plan",
    "sections_of",
]

WHOLE_BELOW = 256 * 1024
"""A message this size or smaller is fetched whole: one round trip, little to save."""
_MAX_SECTIONS = 200
"""Sections one reply fetches at most (a part's MIME header and its text count one each)."""
_DEEPEST = 20
_LONGEST_HEAD = 8192
"""A part's MIME header longer than this is not read here (a folded Content-Type of 54 KB took
the parser 4.7 s): the whole message is fetched, and `parse_message` judges it as before."""
_CONTENT_FIELD = re.compile(rb"(?:^|\n)content-[!-9;-~]*[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*")


@dataclass(frozen=True)
class Outline:
    """One message as the choice of what to fetch needs it: its size, flags, header block (at
    most HEADER_LIMIT bytes) and BODYSTRUCTURE (as imapclient's parser reads it: nested
    tuples, a multipart's parts in a list)."""

    uid: int
    size: int
    flags: frozenset[str]
    header: bytes
    structure: Any

    @property
    def seen(self) -> bool:
        return "\\seen" in {f.lower() for f in self.flags}


OUTLINE_ITEMS = ("FLAGS", "RFC822.SIZE", "BODYSTRUCTURE", HEADER_FETCH)
"""The FETCH items of an outline."""


def outline_of(uid: int, values: dict[bytes, Any]) -> Outline:
    """An outline from a FETCH answer as imapclient's parser hands it back."""
    header = next(
        (v for k, v in values.items() if k.startswith(b"BODY[HEADER]") and isinstance(v, bytes)),
        b"",
    )
    flags = values.get(b"FLAGS") or ()
    return Outline(
        uid,
        int(values.get(b"RFC822.SIZE") or 0),
        frozenset(f.decode() if isinstance(f, bytes) else str(f) for f in flags),
        header,
        values.get(b"BODYSTRUCTURE"),
    )


def sections_of(values: dict[bytes, Any], names: Sequence[str]) -> dict[str, bytes]:
    """The sections a FETCH answer holds (`BODY[1.MIME]` for `1.MIME`), by name."""
    found = {}
    for name in names:
        value = values.get(f"BODY[{name}]".encode())
        if isinstance(value, bytes):
            found[name] = value
    return found


@dataclass(frozen=True)
class _Part:
    section: str  # "" for the message itself, "2", "2.1" …
    kind: Literal["multipart", "message", "leaf"]
    boundary: bytes = b""
    keep: bool = False
    children: tuple[_Part, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The message's parts, and the sections (`BODY.PEEK[…]` names) to fetch for them."""

    root: _Part
    sections: tuple[str, ...]


class _Whole(Exception):
    """Not read by parts: the whole message is fetched instead."""


def plan(outline: Outline) -> Plan | None:
    """The sections to fetch in place of the whole message, or None to fetch it whole."""
    if outline.size <= WHOLE_BELOW or not _complete(outline.header):
        return None
    try:
        root = _part(outline.structure, "", 0, [0])
    except _Whole:
        return None
    if root.kind != "multipart":
        return None
    sections = tuple(_wanted(root, None))
    return Plan(root, sections) if len(sections) <= _MAX_SECTIONS else None


def assemble(found: Plan, header: bytes, fetched: dict[str, bytes]) -> bytes | None:
    """The message put back together from its fetched sections, attachments' bodies empty;
    None when a section is missing or a part reads otherwise here than on the server.
    Blocking (headers are parsed): off the event loop."""
    try:
        return header + _body(found.root, header, fetched)
    except _Whole:
        return None


def _complete(header: bytes) -> bool:
    """A whole header block within the cap (the fetch is cut at HEADER_LIMIT)."""
    return len(header) < HEADER_LIMIT and (header.endswith((b"\r\n\r\n", b"\n\n")))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").lower()
    return str(value).lower() if isinstance(value, str) else ""


def _params(value: Any) -> dict[str, Any]:
    if not isinstance(value, tuple) or len(value) % 2:
        return {}
    return {_text(value[i]): value[i + 1] for i in range(0, len(value), 2)}


def _sub(section: str, number: int) -> str:
    return f"{section}.{number}" if section else str(number)


def _part(body: Any, section: str, depth: int, count: list[int]) -> _Part:
    """One BODYSTRUCTURE node (RFC 3501 7.4.2) and what is under it."""
    count[0] += 1
    if depth > _DEEPEST or count[0] > _MAX_SECTIONS or not isinstance(body, tuple) or not body:
        raise _Whole
    if isinstance(body[0], list | tuple):  # (parts, subtype, params, …)
        parts, rest = _multipart(body)
        boundary = _params(rest[1]).get("boundary") if len(rest) > 1 else None
        if not isinstance(boundary, bytes) or not boundary or not parts:
            raise _Whole
        children = tuple(
            _part(child, _sub(section, n), depth + 1, count) for n, child in enumerate(parts, 1)
        )
        return _Part(section, "multipart", boundary=boundary, children=children)
    if len(body) < 7:
        raise _Whole
    maintype, subtype = _text(body[0]), _text(body[1])
    if (maintype, subtype) == ("message", "rfc822"):  # … envelope, body, lines, …
        inner = body[8] if len(body) > 8 else None
        if not isinstance(inner, tuple) or not inner:
            raise _Whole
        if isinstance(inner[0], list | tuple):  # its parts are this part's 1, 2 …
            return _Part(section, "message", children=(_part(inner, section, depth + 1, count),))
        if _text(inner[0]) == "message":
            raise _Whole  # a message that is only another message: read whole
        leaf = _part(inner, _sub(section, 1), depth + 1, count)  # its body is this part's 1
        return _Part(section, "message", children=(leaf,))
    # a text part has its line count before the extension data, others not
    at = 9 if maintype == "text" else 8
    disposition = body[at] if len(body) > at else None
    attached = isinstance(disposition, tuple) and bool(disposition)
    attached = attached and _text(disposition[0]) == "attachment"
    # what parse_message never reads for text: any part but text and message/*, and a text
    # part sent as an attachment (message/* is read: a bounce's report is text to it)
    skipped = maintype not in ("text", "message") or (maintype == "text" and attached)
    return _Part(section, "leaf", keep=not skipped)


def _multipart(body: tuple[Any, ...]) -> tuple[list[Any], tuple[Any, ...]]:
    """A multipart's parts, and what follows them (subtype, params …): imapclient gives the
    message's own parts as a list, those of a message inside it one after the other."""
    if isinstance(body[0], list):
        return body[0], body[1:]
    count = next((n for n, item in enumerate(body) if not isinstance(item, tuple)), len(body))
    return list(body[:count]), body[count:]


def _wanted(part: _Part, head: str | None) -> list[str]:
    """The sections `part` needs: its header (`head`, unless already had), what it holds."""
    found = [head] if head else []
    if part.kind == "multipart":
        for child in part.children:
            found += _wanted(child, f"{child.section}.MIME")
    elif part.kind == "message":
        found += _wanted(part.children[0], f"{part.section}.HEADER")
    elif part.keep:
        found.append(part.section)
    return found


def _body(part: _Part, head: bytes, fetched: dict[str, bytes]) -> bytes:
    """`part`'s body (whose header is `head`) as it is put back together."""
    if part.kind == "multipart":
        if _read(head).get_boundary() != part.boundary.decode("utf-8", "surrogateescape"):
            raise _Whole  # split otherwise than the server split it
        pieces = []
        for child in part.children:
            own = _head(fetched, f"{child.section}.MIME")
            pieces.append(b"--" + part.boundary + b"\r\n" + own + _body(child, own, fetched))
            pieces.append(b"\r\n")
        return b"".join(pieces) + b"--" + part.boundary + b"--\r\n"
    if part.kind == "message":
        if head and _read(head).get_content_type() != "message/rfc822":
            raise _Whole
        own = _head(fetched, f"{part.section}.HEADER")
        return own + _body(part.children[0], own, fetched)
    if part.keep:
        if part.section not in fetched:
            raise _Whole
        return fetched[part.section]
    if not _skipped_here(head):
        raise _Whole  # the server calls it an attachment, Python might read it as text
    return b""


def _head(fetched: dict[str, bytes], section: str) -> bytes:
    own = fetched.get(section)
    if own is None or not own.endswith(b"\n") or len(own) > _LONGEST_HEAD:
        raise _Whole
    return own


def _read(head: bytes) -> Any:
    """A header block as Python's mail parser reads it (with a Content-* field too long to
    read quickly: not read here)."""
    if any(len(m[0]) > _LONGEST_HEAD // 2 for m in _CONTENT_FIELD.finditer(head.lower())):
        raise _Whole
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    return parser.parsebytes(head)


def _skipped_here(head: bytes) -> bool:
    """The part `head` begins is one parse_message does not read for its text."""
    message = _read(head)
    maintype = message.get_content_maintype()
    if maintype not in ("text", "message", "multipart"):
        return True
    if maintype != "text":
        return False
    try:
        return (message.get_content_disposition() or "").lower() == "attachment"
    except Exception:  # a broken RFC 2231 value: read whole, as parse_message reads it
        return False
