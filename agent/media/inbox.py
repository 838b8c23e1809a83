"""The workspace's `inbox/`, where a message's files are kept so tools can work on them.

Files are only ever created there: never over another file, never through a symbolic link,
and never refused for a name taken (`name-1`… then a unique name: `_write_new`). A file that
may get a text copy is saved under a name whose `<name>.txt` is free too (`save(paired=True)`),
and its copy goes there (`save_beside`): "a .txt beside it" always means that one (R197: a
guest's planted `invoice.pdf.txt` had taken its place, and the owner's copy was numbered).
What a message's files were saved as is remembered (in memory, the latest `_REMEMBERED`), so a
reply to that message reuses the saved copy instead of downloading and saving it again: each
reply to a guest's file had downloaded it outside their daily quota and written x-1.bin,
x-2.bin… A copy is reused only while it holds the very bytes that were saved; so is its text
copy (`recall_text`): a reply to a recording is not sent to speech-to-text again (R197).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import secrets
import stat
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.attachments import FileUnavailable
from agent.inbox_gate import gate_for

__all__ = ["INBOX", "Inbox", "Kept", "KeptText"]

INBOX = "inbox"
_REMEMBERED = 2000
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NUMBERED = 100
"""Names tried as `name`, `name-1`… before a unique one (`_unique`)."""
_MAX_UNIQUE = 80
_MAX_UNIQUE_BYTES = 220
"""A unique name's length, in characters and in UTF-8 bytes: room for ".txt" under 255."""

Kept = tuple[str, str, str]
"""A message's file as the platform names it: (channel, message id, file id)."""
_TEXT_MAX = 64_000_000
"""The most of a remembered text copy read back (a transcript of hours is a few MB)."""
_OWN_TEXT = "text.txt"
"""What a text copy is named after when `<name>.txt` was taken meanwhile (`save_beside`)."""


@dataclass
class _Entry:
    """Where a message's file was saved, with its digest; and its text copy, when one was."""

    saved: str
    digest: str
    text: str | None = None
    text_digest: str = ""
    whole: bool = True


@dataclass(frozen=True)
class KeptText:
    """A remembered text copy as it still is: its path, its text, whether it is all of it."""

    path: str
    data: bytes
    whole: bool


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Inbox:
    def __init__(self, workspace: Path) -> None:
        self._workspace = workspace
        self._gate = gate_for(workspace)
        self._kept: OrderedDict[Kept, _Entry] = OrderedDict()

    async def save(self, name: str, data: bytes, *, paired: bool = False) -> str:
        """Write `data` to a new file named after `name`; its workspace-relative path. Never
        refused for its name: past the numbered ones, a name of its own (`_write_new`).
        `paired`: only under a name whose `<name>.txt` is free as well, for its text copy."""
        names = itertools.chain(_numbered(name), (_unique(name) for _ in range(100)))
        async with self._gate.arrival():  # never while a command runs (agent/inbox_gate.py)
            return await asyncio.to_thread(self._write_new, names, data, paired)

    async def save_beside(self, saved: str, data: bytes) -> str:
        """A text copy of the file `saved`: `<saved>.txt`, kept free when it was saved; taken
        meanwhile (a file that came at the same time), a name of Steward's own, never one
        numbered after the file's (which another person's file may hold):
        `text-20250101-120000-3fa9c2e1.txt`, for the note to name (R197)."""
        beside = f"{saved.removeprefix(f'{INBOX}/')}.txt"
        names = itertools.chain((beside,), (_unique(_OWN_TEXT) for _ in range(100)))
        async with self._gate.arrival():
            return await asyncio.to_thread(self._write_new, names, data, False)

    async def remember(self, key: Kept, saved: str, raw: bytes) -> None:
        """Keep where that file was saved, with its digest (worked out in a worker thread:
        20 MB hashed on the event loop held everything else, R108)."""
        digest = await asyncio.to_thread(_sha256, raw)
        self._kept[key] = _Entry(saved, digest)
        self._kept.move_to_end(key)
        while len(self._kept) > _REMEMBERED:
            self._kept.popitem(last=False)

    async def recall(self, key: Kept, max_bytes: int) -> tuple[str, bytes] | None:
        """The copy saved of that file and its bytes; None when there is none, or it changed
        since (a tool may have written over it): then the file is downloaded again."""
        entry = self._kept.get(key)
        if entry is None:
            return None
        raw = await asyncio.to_thread(self._unchanged, entry.saved, entry.digest, max_bytes)
        return None if raw is None else (entry.saved, raw)

    async def remember_text(self, key: Kept, path: str, data: bytes, *, whole: bool) -> None:
        """Keep where the text copy of that file was written, and a digest of what it holds."""
        digest = await asyncio.to_thread(_sha256, data)
        entry = self._kept.get(key)
        if entry is not None:
            entry.text, entry.text_digest, entry.whole = path, digest, whole

    async def recall_text(self, key: Kept) -> KeptText | None:
        """The text copy written for that file, while it holds what was written; None when
        none was (not saved, a quota), or it changed since."""
        entry = self._kept.get(key)
        if entry is None or entry.text is None:
            return None
        data = await asyncio.to_thread(self._unchanged, entry.text, entry.text_digest, _TEXT_MAX)
        return None if data is None else KeptText(entry.text, data, entry.whole)

    def _unchanged(self, path: str, digest: str, max_bytes: int) -> bytes | None:
        """In a thread: the file `path` of inbox/, if it still holds what has that digest."""
        raw = self._read(path.removeprefix(f"{INBOX}/"), max_bytes)
        return raw if raw is not None and _sha256(raw) == digest else None

    def _folder(self) -> int:
        """inbox/ opened without following a link: a tool that swaps it for a symbolic link
        after this cannot redirect a write (files are opened relative to this descriptor)."""
        inbox = self._workspace / INBOX
        inbox.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(inbox, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW)
        except OSError:
            raise FileUnavailable("the workspace's inbox/ is not a plain folder") from None

    def _read(self, name: str, max_bytes: int, folder: int | None = None) -> bytes | None:
        """A plain file of inbox/ (one link, not a link), at most `max_bytes`; else None."""
        own = folder is None
        try:
            folder = self._folder() if folder is None else folder
        except (FileUnavailable, OSError):
            return None
        try:
            fd = os.open(name, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        except OSError:
            return None
        finally:
            if own:
                os.close(folder)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size > max_bytes:
                return None
            try:
                return handle.read(max_bytes + 1)
            except OSError:
                return None

    def _write_new(self, candidates: Iterable[str], data: bytes, paired: bool) -> str:
        """In a thread (`save`): the first of `candidates` free (`name`, else `name-1`… up to
        `_NUMBERED`, else a name no one can take ahead of it, `_unique`); `paired`: whose
        `.txt` is free too. A guest's 1,000 files named image.png had taken every name the
        owner's image.png could have, and it was refused."""
        folder = self._folder()
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
            for candidate in candidates:
                if paired and _taken(f"{candidate}.txt", folder):
                    continue
                try:
                    fd = os.open(candidate, flags, 0o600, dir_fd=folder)
                except FileExistsError:
                    continue
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                return f"{INBOX}/{candidate}"
        finally:
            os.close(folder)
        raise FileUnavailable("inbox/ took no new file name")  # 100 random names all taken


def _taken(name: str, folder: int) -> bool:
    """Whether inbox/ holds anything by that name (a link too, followed or not)."""
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def _split(name: str) -> tuple[str, str]:
    """ "report", ".pdf" (a name with no suffix: itself and "")."""
    stem, dot, suffix = name.rpartition(".")
    return (stem, f".{suffix}") if dot and stem else (name, "")


def _numbered(name: str) -> Iterator[str]:
    """`name`, `name-1`, … `name-{_NUMBERED - 1}` (the suffix kept last)."""
    stem, suffix = _split(name)
    yield name
    for number in range(1, _NUMBERED):
        yield f"{stem}-{number}{suffix}"


def _unique(name: str) -> str:
    """`name` with a time and a random part ("image-20250101-120000-3fa9c2e1.png"), its stem
    cut so it keeps to `_MAX_UNIQUE` characters (and bytes)."""
    stem, suffix = _split(name)
    mark = f"-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}{suffix}"
    stem = stem[: max(1, _MAX_UNIQUE - len(mark))]
    while len((stem + mark).encode()) > _MAX_UNIQUE_BYTES and len(stem) > 1:
        stem = stem[:-1]
    return stem + mark
