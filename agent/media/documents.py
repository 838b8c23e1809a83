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

__all__ = ["READABLE", "DocumentError", "Extracted", "document_type", "extract_text"]

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


def _decode(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if b"\x00" in raw[:8192]:
        raise DocumentError("it looks like a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _extract(raw: bytes, kind: str) -> Extracted:
    text = _decode(raw)
    if kind == "html":  # what a reader sees, as for pages and mail (hidden text dropped)
        text = html_to_text(text)
    if not text.strip():
        raise DocumentError("it is empty")
    return Extracted(text, kind)


async def extract_text(raw: bytes, kind: str, *, seconds: float = PDF_SECONDS) -> Extracted:
    """The text of a document of `kind` (see `document_type`); raises `DocumentError`. A PDF's
    pages are read for at most `seconds`, in a process of its own (`pdf_child`)."""
    if kind == "pdf":
        from agent.media.pdf_child import read_in_child

        return await read_in_child(raw, seconds)
    return await asyncio.to_thread(_extract, raw, kind)
