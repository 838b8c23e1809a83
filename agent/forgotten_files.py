"""The files of forgotten messages: the sender's own words (a voice note and its transcript)
deleted from the workspace's `inbox/`, other files named for the owner to judge (R171: a voice
note forgotten left "The alarm code is 7731." in `inbox/`, read back unasked by a later turn
and kept by every backup)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from memory.message_files import MessageFiles

__all__ = ["FilesForgotten", "forget_files"]


@dataclass(frozen=True)
class FilesForgotten:
    deleted: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    """Files the messages brought that are not their words (a PDF, a photo): still there."""


async def forget_files(
    files: MessageFiles, workspace: Path | None, message_ids: Iterable[int]
) -> FilesForgotten:
    found = await files.of(message_ids)
    if workspace is None or not found:
        return FilesForgotten()
    deleted = [
        f.path for f in found if f.words and await asyncio.to_thread(_delete, workspace, f.path)
    ]
    await files.drop(deleted)
    kept = [f.path for f in found if not f.words and (workspace / f.path).is_file()]
    return FilesForgotten(tuple(deleted), tuple(kept))


def _delete(workspace: Path, path: str) -> bool:
    """Delete `path` if it is a regular file directly in the workspace's inbox/, never through
    a link (R175: inbox/ made a link to another folder had a file of the same name there
    deleted); whether it is gone now."""
    folder, _, name = path.partition("/")
    if folder != "inbox" or not name or "/" in name or name in (".", ".."):
        return False
    try:
        inbox = os.open(workspace / "inbox", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        found = os.stat(name, dir_fd=inbox, follow_symlinks=False)
        if not stat.S_ISREG(found.st_mode):
            return False
        os.unlink(name, dir_fd=inbox)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    finally:
        os.close(inbox)
    return True
