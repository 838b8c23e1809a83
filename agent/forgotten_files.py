"""The files of forgotten messages: the sender's own words (a voice note and its transcript)
deleted from the workspace's `inbox/`, other files named for the owner to judge (R171: a voice
note forgotten left "The alarm code is 7731." in `inbox/`, read back unasked by a later turn
and kept by every backup)."""

from __future__ import annotations

import asyncio
import os
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
    """Delete `path` if it is a regular file inside the workspace's inbox/ (never through a
    link: one made since could point anywhere); whether it is gone now."""
    inbox = (workspace / "inbox").resolve()
    target = workspace / path
    if target.parent.resolve() != inbox and inbox not in target.parent.resolve().parents:
        return False
    try:
        if target.is_symlink() or not target.is_file():
            return not os.path.lexists(target)
        target.unlink()
    except OSError:
        return False
    return True
