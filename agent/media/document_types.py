"""What reading a document gives: its text, or why not (a sentence for its sender). Shared by
`documents.py` and the PDF reader, which runs in a process of its own (`pdf_child.py`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DocumentError", "Extracted"]


class DocumentError(Exception):
    """Why a document could not be read, as a sentence for its sender."""


@dataclass(frozen=True)
class Extracted:
    text: str
    kind: str
    pages: int | None = None
    pages_read: int | None = None
    """A PDF of more pages than are read: how many were (the sender is told)."""
