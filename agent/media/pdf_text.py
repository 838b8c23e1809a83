"""A PDF's text with pypdf, within limits of size and time; run in `pdf_child.py`'s process.

Streams are unpacked at most 8 MB each; a page with megabytes of drawing instructions or of
fonts is named as not read, and reading stops at a deadline checked before every drawing
operation (a form drawn thousands of times included).
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from agent.media.document_types import DocumentError, Extracted

__all__ = ["MAX_PAGE_CONTENT", "MAX_PAGE_FONTS", "MAX_PDF_PAGES", "MAX_PDF_TEXT", "read_pdf"]

MAX_PDF_PAGES = 300
"""Pages read of one PDF; the sender is told of the rest (`Extracted.pages_read`)."""
MAX_PDF_TEXT = 4_000_000
"""Characters of text read from one PDF; the pages after it are named as not read. A book of
300 pages has about 1 MB (the model is given 60,000 characters of it); 48 KB of PDF whose
pages all draw one compressed stream of 1 MB of text made 300 MB."""
MAX_PAGE_CONTENT = 1_000_000
MAX_PAGE_FONTS = 4_000_000
"""Bytes of font maps a page may make pypdf parse (a page of many fonts: a few hundred KB)."""
"""Bytes of drawing instructions a page may have for its text to be read. A page of text has
tens of kilobytes; a few kilobytes of FlateDecode can unpack to megabytes of instructions that
take pypdf seconds per megabyte, so a small file could hold a CPU core for hours."""

logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged files are reported to the user


_STREAM_LIMIT = 8_000_000
"""No stream of a document is unpacked past this (pypdf's own limits are 75 MB a stream): a
few hundred bytes of FlateDecode, twice over, unpack to 70 MB, and a page naming forty such
fonts held 2.7 GB."""
_LIMITS = {
    name: _STREAM_LIMIT
    for name in (
        "maximum_declared_stream_length",
        "array_based_stream_maximum_output_length",
        "jbig2_maximum_output_length",
        "lzw_maximum_output_length",
        "run_length_maximum_output_length",
        "zlib_maximum_output_length",
        "brotli_maximum_output_length",
    )
}


class _TooBig(Exception):
    """A stream unpacks past `_STREAM_LIMIT`."""


def _font_bytes(page: Any, deadline: float) -> int:
    """What reading the page's fonts costs: the size of each font's ToUnicode map and embedded
    font program, counted for every font that names them (pypdf parses a shared map once per
    font, and a Type 1 program's encoding into each, all before the first drawing operation,
    so no deadline check runs meanwhile). Every form the page names, however deep, is
    included; an entry that cannot be read is skipped, as pypdf skips it, never the rest."""
    sizes: dict[Any, int] = {}
    seen: set[Any] = set()
    pending = [page.get("/Resources")]
    total = 0
    while pending:
        resources = _quietly(_resolved, pending.pop())
        key = getattr(resources, "indirect_reference", None) or id(resources)
        if not hasattr(resources, "get") or key in seen:
            continue
        seen.add(key)
        for font in _entries(resources, "/Font"):
            total += _quietly(_font_cost, font, sizes) or 0
            if total > MAX_PAGE_FONTS or time.monotonic() > deadline:
                return total  # enough to refuse the page: the rest is not unpacked
        for form in _entries(resources, "/XObject"):
            form = _quietly(_resolved, form)
            if hasattr(form, "get") and _quietly(form.get, "/Subtype") == "/Form":
                pending.append(_quietly(form.get, "/Resources"))
    return total


def _entries(resources: Any, kind: str) -> list[Any]:
    found = _quietly(lambda: list(_resolved(resources.get(kind) or {}).values()))
    return found or []


def _font_cost(font: Any, sizes: dict[Any, int]) -> int:
    font = _resolved(font)
    cost = 0
    parts = [font.get("/ToUnicode")]
    for descendant in _resolved(font.get("/DescendantFonts") or []):
        descendant = _resolved(descendant)
        parts.append(descendant.get("/ToUnicode"))
        parts.append(_resolved(descendant.get("/FontDescriptor") or {}))
    parts.append(_resolved(font.get("/FontDescriptor") or {}))
    for part in parts:
        if hasattr(part, "get") and not hasattr(part, "get_data"):  # a font descriptor
            for name in ("/FontFile", "/FontFile2", "/FontFile3"):
                cost += _stream_size(part.get(name), sizes)
        else:
            cost += _stream_size(part, sizes)
    return cost


def _stream_size(stream: Any, sizes: dict[Any, int]) -> int:
    """A stream's decoded size, read once however many fonts name it (0: none, or no stream)."""
    if stream is None:
        return 0
    key = getattr(stream, "idnum", None) or id(stream)
    if key not in sizes:
        try:
            data = _quietly(lambda: _unpacked(stream))
        except _TooBig:
            data = None
            sizes[key] = _STREAM_LIMIT + 1
        else:
            sizes[key] = len(data) if isinstance(data, bytes) else 0
    return sizes[key]


def _unpacked(stream: Any) -> bytes:
    """A stream's data, unpacked within `_STREAM_LIMIT`, or _TooBig."""
    from pypdf.errors import LimitReachedError

    try:
        data = _resolved(stream).get_data()
    except LimitReachedError:
        raise _TooBig from None
    return data if isinstance(data, bytes) else b""


def _quietly(call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)`, or None where the PDF makes it fail (a malformed entry); a stream too
    big to unpack is not a malformed entry, and goes on up."""
    try:
        return call(*args)
    except _TooBig:
        raise
    except Exception:  # whatever a malformed PDF makes pypdf raise
        return None


def _resolved(value: Any) -> Any:
    return value.get_object() if hasattr(value, "get_object") else value


class _OutOfTime(Exception):
    pass


def _stop_at(deadline: float) -> Callable[..., None]:
    """Called before each drawing operation, those of forms a page draws too: a page's own
    content can be small and still draw one form thousands of times (a few hundred bytes that
    took hours), so the deadline is checked inside a page, not only between pages."""

    def check(*_: Any) -> None:
        if time.monotonic() > deadline:
            raise _OutOfTime

    return check


def _pdf(raw: bytes, seconds: float) -> Extracted:
    from pypdf import apply_configuration

    with apply_configuration(**_LIMITS):
        return _pdf_within_limits(raw, seconds)


def _pdf_within_limits(raw: bytes, seconds: float) -> Extracted:
    from pypdf import PdfReader  # imported on the first PDF, not at start-up
    from pypdf.errors import LimitReachedError, PdfReadError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many "protected" PDFs open with no password
            except (PyPdfError, NotImplementedError, ValueError):
                opened = 0
            if not opened:
                raise DocumentError(
                    "it is encrypted with a password; send a copy without the password"
                )
        count = len(reader.pages)
        texts = []
        total = 0  # characters of text read
        deadline = time.monotonic() + seconds
        capped = False  # stopped at MAX_PDF_PAGES (not by time or size)
        for index, page in enumerate(reader.pages):
            if index >= MAX_PDF_PAGES:
                capped = True
                texts.append(
                    f"[… pages {index + 1} to {count} not read: at most {MAX_PDF_PAGES} pages of "
                    "a PDF are read]"
                )
                break
            if time.monotonic() > deadline:
                texts.append(f"[… pages {index + 1} to {count} not read: too much to read]")
                break
            try:  # get_contents unpacks the page's streams already
                contents = page.get_contents()
                size = len(_unpacked(contents)) if contents is not None else 0
            except (_TooBig, LimitReachedError):
                size = _STREAM_LIMIT + 1
            if size > MAX_PAGE_CONTENT:
                texts.append(f"[page {index + 1} not read: too much to read, {size:,} bytes]")
                continue
            fonts = _font_bytes(page, deadline)
            if fonts > MAX_PAGE_FONTS:
                texts.append(
                    f"[page {index + 1} not read: too much to read, fonts of {fonts:,} bytes]"
                )
                continue
            try:
                text = page.extract_text(visitor_operand_before=_stop_at(deadline)) or ""
            except _OutOfTime:
                texts.append(f"[… pages {index + 1} to {count} not read: too much to read]")
                break
            text = text.strip()
            if total + len(text) > MAX_PDF_TEXT:
                rest = f", and pages {index + 2} to {count} not read" if index + 1 < count else ""
                texts.append(f"[page {index + 1}]\n{text[: MAX_PDF_TEXT - total]}")
                texts.append(f"[… page {index + 1} cut short{rest}: too much text]")
                break
            total += len(text)
            texts.append(f"[page {index + 1}]\n{text}")
    except (DocumentError, MemoryError):  # MemoryError: the child's limit, said as such
        raise
    except (PdfReadError, PyPdfError, RecursionError, Exception):  # whatever a damaged PDF
        # makes pypdf raise (a /Contents that is a dictionary: AttributeError)
        raise DocumentError("it is damaged or not really a PDF, and I could not read it") from None
    text = "\n\n".join(texts)
    notes = r"\[page \d+\]|\[page \d+ not read: [^\]]*\]|\[… pages \d+ to \d+ not read: [^\]]*\]"
    if not re.sub(notes, "", text).strip():
        if "not read: too much to read" in text:
            raise DocumentError(
                "its pages hold far too much to read (megabytes of drawing instructions or of "
                "fonts each)"
            )
        raise DocumentError(
            "it has no text I can extract (a scanned PDF?); send the pages as photos instead"
        )
    return Extracted(text, "pdf", count, MAX_PDF_PAGES if capped else None)


def read_pdf(raw: bytes, seconds: float) -> Extracted:
    """A PDF's text, read here (the child process calls this)."""
    return _pdf(raw, seconds)
