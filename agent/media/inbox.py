"""The workspace's `inbox/`, where a message's files are kept so tools can work on them.

Files are only ever created there: never over another file, never through a symbolic link.
What a message's files were saved as is remembered (in memory, the latest `_REMEMBERED`), so a
reply to that message reuses the saved copy instead of downloading and saving it again: each
reply to a guest's file had downloaded it outside their daily quota and written x-1.bin,
x-2.bin… A copy is reused only while it holds the very bytes that were saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections import OrderedDict
from pathlib import Path

from agent.attachments import FileUnavailable

__all__ = ["INBOX", "Inbox", "Kept"]

INBOX = "inbox"
_REMEMBERED = 2000
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

Kept = tuple[str, str, str]
"""A message's file as the platform names it: (channel, message id, file id)."""


class Inbox:
    def __init__(self, workspace: Path) -> None:
        self._workspace = workspace
        self._kept: OrderedDict[Kept, tuple[str, str]] = OrderedDict()

    async def save(self, name: str, data: bytes, *, same_ok: bool = False) -> str:
        """Write `data` to a new file named after `name`; its workspace-relative path.
        `same_ok`: a file of that name already holding exactly `data` is used as it is."""
        return await asyncio.to_thread(self._write_new, name, data, same_ok)

    def remember(self, key: Kept, saved: str, raw: bytes) -> None:
        self._kept[key] = (saved, hashlib.sha256(raw).hexdigest())
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
        raw = await asyncio.to_thread(self._read, saved.removeprefix(f"{INBOX}/"), max_bytes)
        if raw is None or hashlib.sha256(raw).hexdigest() != digest:
            return None
        return saved, raw

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

    def _write_new(self, name: str, data: bytes, same_ok: bool) -> str:
        folder = self._folder()
        try:
            stem, dot, suffix = name.rpartition(".")
            if not dot or not stem:
                stem, suffix = name, ""
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
            for attempt in range(1000):
                candidate = (
                    name if attempt == 0 else f"{stem}-{attempt}{'.' + suffix if suffix else ''}"
                )
                try:
                    fd = os.open(candidate, flags, 0o600, dir_fd=folder)
                except FileExistsError:
                    if same_ok and self._read(candidate, len(data), folder) == data:
                        return f"{INBOX}/{candidate}"
                    continue
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                return f"{INBOX}/{candidate}"
        finally:
            os.close(folder)
        raise FileUnavailable("inbox/ has too many files of that name")
