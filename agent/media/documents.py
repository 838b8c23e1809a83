"""Documents' text: PDF (pypdf), plain text, Markdown, CSV and HTML.

Extraction runs in a thread; a PDF's in a process of its own under a memory and a time limit
(`pdf_child`). What cannot be read raises `DocumentError` with a sentence for the user: an
encrypted PDF, a damaged one, a PDF with no text layer (a scan), a binary file that claims to
be text, a type Steward does not read.
"""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import PurePosixPath

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


class _HtmlText(HTMLParser):
    """The visible text of an HTML page (scripts, styles and templates left out)."""

    _SKIP = frozenset({"script", "style", "template", "noscript", "head"})
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)

    def text(self) -> str:
        joined = "".join(self.parts)
        joined = re.sub(r"[ \t\r\f\v]+", " ", joined)
        return re.sub(r"\n\s*\n+", "\n\n", joined).strip()


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
    if kind == "html":
        parser = _HtmlText()
        parser.feed(text)
        parser.close()
        text = parser.text()
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
