"""IMAP sessions through two libraries made for it, behind one small async interface.

`imaps://` uses aioimaplib (`imap_aio.py`: asyncio, TLS from the first byte). aioimaplib has no
STARTTLS, so `imap://` uses imapclient in a worker thread (`imap_thread.py`), which upgrades
the connection with STARTTLS (required unless the server is on this machine). Messages are
addressed by UID within a folder whose UIDVALIDITY the session reports; nothing is ever marked
read by looking (BODY.PEEK).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

__all__ = [
    "AUTH_FAILED",
    "NO_SAFE_MOVE",
    "TIMEOUT",
    "Folder",
    "FolderState",
    "HeaderItem",
    "ImapSession",
    "SearchQuery",
    "quote",
    "tls_context",
    "uid_set",
]

TIMEOUT = 30.0
NO_SAFE_MOVE = (
    "this mail server can move mail only by purging the folder (no MOVE or UIDPLUS), which "
    "would also delete for good any message already marked deleted there; not moved"
)


@dataclass(frozen=True)
class Folder:
    """A mailbox as LIST names it, with its attributes (RFC 6154's `\\Sent`, `\\Archive` …)."""

    name: str
    flags: frozenset[str] = frozenset()

    @property
    def sent(self) -> bool:
        """The server says this is where the owner's sent mail is kept (SPECIAL-USE)."""
        return "\\sent" in {f.lower() for f in self.flags}


@dataclass(frozen=True)
class FolderState:
    name: str
    uidvalidity: int
    uidnext: int
    exists: int


@dataclass(frozen=True)
class HeaderItem:
    """One message as a listing needs it: its UID, flags, size, arrival and raw headers."""

    uid: int
    flags: frozenset[str]
    size: int
    internaldate: datetime | None
    header: bytes

    @property
    def seen(self) -> bool:
        return "\\seen" in {f.lower() for f in self.flags}


@dataclass(frozen=True)
class SearchQuery:
    """What `mail_search` asks for; every field optional."""

    sender: str = ""
    to: str = ""
    subject: str = ""
    words: str = ""
    since: date | None = None
    before: date | None = None
    unread: bool = False
    uid_above: int = 0
    extra: tuple[str, ...] = field(default=())

    def criteria(self) -> list[Any]:
        """imapclient's criteria list (it quotes and sends literals itself)."""
        found: list[Any] = []
        if self.unread:
            found.append("UNSEEN")
        for key, value in (("FROM", self.sender), ("TO", self.to)):
            if _clean(value):
                found += [key, _clean(value)]
        for word in _clean(self.subject).split():  # words in the subject, any order (R113)
            found += ["SUBJECT", word]
        for word in _clean(self.words).split():
            found += ["TEXT", word]
        if self.since:
            found += ["SINCE", self.since]
        if self.before:
            found += ["BEFORE", self.before]
        if self.uid_above:
            found += ["UID", f"{self.uid_above + 1}:*"]
        return found or ["ALL"]

    def text(self) -> list[str]:
        """The same criteria as IMAP text (aioimaplib sends what it is given)."""
        words: list[str] = []
        for item in self.criteria():
            if isinstance(item, date):
                words.append(item.strftime("%d-%b-%Y"))
            elif item in ("UNSEEN", "ALL", "FROM", "TO", "SUBJECT", "TEXT", "SINCE", "BEFORE"):
                words.append(item)
            elif item == "UID" or re.fullmatch(r"\d+:\*", str(item)):
                words.append(str(item))
            else:
                words.append(quote(str(item)))
        return words

    def unsearchable(self) -> list[str]:
        """The fields given that hold nothing to search for once IMAP's syntax is out: left
        out, the search would match every message (R151: `words="*"` listed the folder)."""
        given = {"sender": self.sender, "to": self.to, "subject": self.subject}
        given["words"] = self.words
        return [name for name, value in given.items() if value.strip() and not _clean(value)]


def _clean(value: str) -> str:
    """No line breaks or NULs reach the server: a search term is one line of text, and none
    of IMAP's own syntax, which imapclient sends unquoted in a word without a space (R150: a
    word `{5}` opened a literal the server waited 30 s for; `a)` was a syntax error)."""
    return re.sub(r'[\x00-\x1f\x7f(){}%*"\\\]]+', " ", value).strip()


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapSession(Protocol):
    """One logged-in IMAP connection."""

    capabilities: frozenset[str]

    async def select(self, folder: str, *, readonly: bool = True) -> FolderState: ...

    async def search(self, query: SearchQuery) -> list[int]: ...

    async def headers(self, uids: Sequence[int], *, header: bool = True) -> list[HeaderItem]:
        """Flags, size, arrival and (unless not `header`: empty) the header block of each."""
        ...

    async def message(self, uid: int) -> bytes | None: ...

    async def move(self, uids: Sequence[int], folder: str) -> None: ...

    async def set_flags(self, uids: Sequence[int], flags: Sequence[str], *, add: bool) -> None: ...

    async def folders(self) -> list[Folder]: ...

    async def idle(self, seconds: float) -> bool:
        """Wait for the server to announce a change (IDLE); True when it did."""
        ...

    def interrupt(self) -> None:
        """End a wait in `idle` soon, from the event loop (the watcher is stopping)."""
        ...

    async def logout(self) -> None: ...


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def uid_set(uids: Sequence[int]) -> str:
    return ",".join(str(int(u)) for u in uids)


AUTH_FAILED = re.compile(
    r"AUTHENTICATIONFAILED|authentication failed|invalid credentials|"
    r"LOGIN failed|\[AUTH",
    re.IGNORECASE,
)
