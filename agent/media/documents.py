"""Documents' text: PDF (pypdf), plain text, Markdown, CSV and HTML.

Extraction runs in a thread; a PDF's in a process of its own under a memory and a time limit
(`pdf_child`). What cannot be read raises `DocumentError` with a sentence for the user: an
encrypted PDF, a damaged one, a PDF with no text layer (a scan), a binary file that claims to
be text, a type Steward does not read.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath

from agent.html_text import html_to_text
from agent.media.document_types import DocumentError, Extracted

__all__ = [
    "READABLE",
    "DocumentError",
    "Extracted",
    "decode_text",
    "document_type",
    "extract_text",
]

READABLE = "PDF, plain text, Markdown, CSV and HTML"
_BY_SUFFIX = {
    ".pdf": "pdf",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".csv": "csv",
    ".tsv": "csv",
    ".html": "html",
    ".htm": "html",
}
_BY_MIME = {
    "application/pdf": "pdf",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/csv": "csv",
    "text/tab-separated-values": "csv",
    "text/html": "html",
    "application/xhtml+xml": "html",
}
PDF_SECONDS = 30.0
"""Time for reading one PDF's pages; the pages after it are named as not read."""


def document_type(name: str, mime_type: str) -> str | None:
    """ "pdf", "text", "markdown", "csv" or "html" for a file Steward reads; None otherwise."""
    suffix = PurePosixPath(name.lower()).suffix
    return _BY_SUFFIX.get(suffix) or _BY_MIME.get(mime_type.split(";")[0].strip().lower())


_BINARY = "it looks like a binary file, not text"


def decode_text(raw: bytes) -> str:
    """Bytes as text whatever their Unicode form (see `_decode`); DocumentError when they are
    no text at all."""
    return _decode(raw)


def _decode(raw: bytes) -> str:
    """Text in UTF-32 or UTF-16 by its byte order mark (UTF-32's first: it begins as UTF-16's
    does), in UTF-16 without one when every other byte is NUL, else UTF-8, else Windows-1252.
    A byte that does not decode (a UTF-16 file of an odd length) is replaced, never fatal."""
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return _wide(raw, "utf-32")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _wide(raw, "utf-16")
    if b"\x00" in raw[:8192]:
        codec = _utf16_without_bom(raw[:8192])
        if codec is None:
            raise DocumentError(_BINARY)
        return _wide(raw, codec)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _wide(raw: bytes, codec: str) -> str:
    text = raw.decode(codec, errors="replace")
    if "\x00" in text[:4096]:  # a binary file that happens to begin like a byte order mark
        raise DocumentError(_BINARY)
    return text


def _utf16_without_bom(sample: bytes) -> str | None:
    """ "utf-16-le" or "utf-16-be" when `sample` reads as such: NULs at one parity of byte
    (the high byte of Latin text) and hardly at the other, and printable once decoded."""
    sample = sample[: len(sample) // 2 * 2]
    half = len(sample) // 2
    if half < 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd >= half * 0.3 and even <= half * 0.02:
        codec = "utf-16-le"
    elif even >= half * 0.3 and odd <= half * 0.02:
        codec = "utf-16-be"
    else:
        return None
    text = sample.decode(codec, errors="replace")
    readable = sum(char.isprintable() or char in "\t\n\r\f" for char in text)
    return codec if readable >= len(text) * 0.95 else None


def _extract(raw: bytes, kind: str) -> Extracted:
    text = _decode(raw)
    if kind == "html":  # what a reader sees, as for pages and mail (hidden text dropped)
        text = html_to_text(text)
    if not text.strip():
        raise DocumentError("it is empty")
    return Extracted(text, kind)


async def extract_text(
    raw: bytes, kind: str, *, seconds: float = PDF_SECONDS, guest: int | None = None
) -> Extracted:
    """The text of a document of `kind` (see `document_type`); raises `DocumentError`. A PDF's
    pages are read for at most `seconds`, in a process of its own (`pdf_child`), for `guest`
    (a person other than the owner: one such process each at a time; None: the owner)."""
    if kind == "pdf":
        from agent.media.pdf_child import read_in_child

        return await read_in_child(raw, seconds, guest)
    return await asyncio.to_thread(_extract, raw, kind)
