"""The workspace's `inbox/`, where a message's files are kept so tools can work on them.

Files are only ever created there: never over another file, never through a symbolic link,
and never refused for a name taken (`name-1`… then a unique name: `_write_new`).
What a message's files were saved as is remembered (in memory, the latest `_REMEMBERED`), so a
reply to that message reuses the saved copy instead of downloading and saving it again: each
reply to a guest's file had downloaded it outside their daily quota and written x-1.bin,
x-2.bin… A copy is reused only while it holds the very bytes that were saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import secrets
import stat
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from agent.attachments import FileUnavailable
from agent.inbox_gate import gate_for

__all__ = ["INBOX", "Inbox", "Kept"]

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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Inbox:
    def __init__(self, workspace: Path) -> None:
        self._workspace = workspace
        self._gate = gate_for(workspace)
        self._kept: OrderedDict[Kept, tuple[str, str]] = OrderedDict()

    async def save(self, name: str, data: bytes) -> str:
        """Write `data` to a new file named after `name`; its workspace-relative path. Never
        refused for its name: past the numbered ones, a name of its own (`_write_new`)."""
        async with self._gate.arrival():  # never while a command runs (agent/inbox_gate.py)
            return await asyncio.to_thread(self._write_new, name, data)

    async def remember(self, key: Kept, saved: str, raw: bytes) -> None:
        """Keep where that file was saved, with its digest (worked out in a worker thread:
        20 MB hashed on the event loop held everything else, R108)."""
        digest = await asyncio.to_thread(_sha256, raw)
        self._kept[key] = (saved, digest)
        self._kept.move_to_end(key)
        while len(self._kept) > _REMEMBERED:
            self._kept.popitem(last=False)

    async def recall(self, key: Kept, max_bytes: int) -> tuple[str, bytes] | None:
        """The copy saved of that file and its bytes; None when there is none, or it changed
        since (a tool may have written over it): then the file is downloaded again."""
        entry = self._kept.get(key)
        if entry is None:
            return None
        saved, digest = entry

        def read() -> bytes | None:
            raw = self._read(saved.removeprefix(f"{INBOX}/"), max_bytes)
            return raw if raw is not None and _sha256(raw) == digest else None

        raw = await asyncio.to_thread(read)
        return None if raw is None else (saved, raw)

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

    async def find_same(self, name: str, data: bytes) -> str | None:
        """The file named after `name` (`name`, `name-1`…) that holds exactly `data`; None."""
        return await asyncio.to_thread(self._find_same, name, data)

    async def find_start(self, name: str, data: bytes) -> str | None:
        """The file named after `name` that holds a beginning of `data` (a copy cut short by
        a quota when it was written); None."""
        return await asyncio.to_thread(self._find_same, name, data, True)

    def _find_same(self, name: str, data: bytes, start: bool = False) -> str | None:
        try:
            folder = self._folder()
        except FileUnavailable:
            return None
        try:
            for candidate in _numbered(name):
                found = self._read(candidate, len(data), folder)
                if found == data or (start and found and data.startswith(found)):
                    return f"{INBOX}/{candidate}"
            return None
        finally:
            os.close(folder)

    def _write_new(self, name: str, data: bytes) -> str:
        """In a thread (`save`): `name`, else `name-1`… up to `_NUMBERED`, else a name no one
        can take ahead of it (`_unique`). A guest's 1,000 files named image.png had taken
        every name the owner's image.png could have, and it was refused."""
        folder = self._folder()
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
            candidates = itertools.chain(_numbered(name), (_unique(name) for _ in range(100)))
            for candidate in candidates:
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
