"""Which files in the workspace's `inbox/` each incoming message brought (migration 0026), so
that forgetting a message can take its files with it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from memory.db import Database

__all__ = ["MessageFile", "MessageFiles"]


@dataclass(frozen=True)
class MessageFile:
    path: str
    """Relative to the workspace (`inbox/voice-1.ogg`)."""
    words: bool
    """The sender's own words (their voice note, its transcript): forgotten with the message."""


class MessageFiles:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, message_id: int, files: Iterable[MessageFile]) -> None:
        rows = [(message_id, f.path, int(f.words)) for f in files]
        if not rows:
            return
        async with self._db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO message_files (message_id, path, words) VALUES (?, ?, ?)"
                " ON CONFLICT (message_id, path) DO UPDATE SET words = max(words, excluded.words)",
                rows,
            )

    async def of(self, message_ids: Iterable[int]) -> list[MessageFile]:
        ids = sorted(set(message_ids))
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = await self._db.fetchall(
            f"SELECT DISTINCT path, max(words) AS words FROM message_files"
            f" WHERE message_id IN ({marks}) GROUP BY path ORDER BY path",
            ids,
        )
        return [MessageFile(row["path"], bool(row["words"])) for row in rows]

    async def drop(self, paths: Iterable[str]) -> None:
        """Forget that these files exist (deleted): no later forget names them again."""
        for path in sorted(set(paths)):
            await self._db.execute("DELETE FROM message_files WHERE path = ?", (path,))
