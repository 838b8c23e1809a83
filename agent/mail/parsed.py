"""What a message read from a server becomes (`ParsedMail`, its `Attachment`s), and the small
text helpers that reading mail and writing it share: header and body text as proper Unicode,
HTML reduced to text, sizes for people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from agent.html_text import html_to_text as _html_to_text

GIST_SCAN = 65_536
"""Characters of a mail's text looked through for its gist's line."""
_GREETING = re.compile(r"^(hi|hello|dear|hey)\b.{0,30}$", re.I)

__all__ = [
    "Attachment",
    "ParsedMail",
    "clean_text",
    "clean_text_block",
    "html_to_text",
    "human_size",
]


def html_to_text(markup: str) -> str:
    """HTML as plain text: markup, scripts, styles, images and hidden text dropped, links
    shown as text (agent/html_text.py)."""
    return _html_to_text(markup, links=True)


def clean_text(value: object) -> str:
    """A header or text value as proper Unicode: bytes that were not UTF-8 (an 8-bit subject
    in Latin-1) are read as Windows-1252 rather than left as unencodable surrogates."""
    text = str(value) if value is not None else ""
    if any("\udc80" <= c <= "\udcff" for c in text):
        raw = text.encode("utf-8", "surrogateescape")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", "replace")
    text = text.encode("utf-8", "replace").decode("utf-8")
    # every character Python counts as a line break, and the other controls: a form feed in a
    # subject made every reply to it fail once approved (R167)
    return re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]+[ \t]*", " ", text).strip()


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def clean_text_block(text: str) -> str:
    """Body text as proper Unicode with Unix line ends."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = text.encode("utf-8", "replace").decode("utf-8")  # any other lone surrogate
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int


@dataclass
class ParsedMail:
    """One message as Steward reads it."""

    sender: str = ""
    sender_address: str = ""
    to: str = ""
    cc: str = ""
    reply_to: str = ""
    subject: str = ""
    date: datetime | None = None
    date_text: str = ""
    message_id: str = ""
    references: str = ""
    text: str = ""
    from_html: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def gist(self, limit: int = 120) -> str:
        """One line of what it says: the first line of text that is not a greeting or a quote,
        looked for in the first GIST_SCAN characters (review 36: the whole text of a 2 MB mail
        was split and matched on the event loop, a second a watch notice, and twice for each
        mail of a briefing)."""
        first = ""
        for raw in self.text[:GIST_SCAN].splitlines():
            line = raw.strip()
            if not line:
                continue
            first = first or line
            if not line.startswith(">") and not _GREETING.match(line):
                first = line
                break
        line = re.sub(r"\s+", " ", first[: limit * 4])
        return line if len(line) <= limit else line[: limit - 1] + "…"
