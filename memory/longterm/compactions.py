"""Compaction marks: which of a chat's messages were summarised into an episode memory.

A mark moves the chat's history window past those messages (the messages stay in SQLite); the
latest mark names the episode that recall brings back for the chat.
"""

from __future__ import annotations

from memory.clock import Clock, iso, parse_iso
from memory.db import Database
from memory.longterm.types import Compaction

__all__ = ["CompactionLog"]


class CompactionLog:
    """The `memory_compactions` table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        *,
        chat_id: int,
        first_message_id: int,
        last_message_id: int,
        episode_id: int | None,
        facts_saved: int,
        turn_id: int | None,
    ) -> int:
        """Mark messages `first_message_id`..`last_message_id` of a chat as summarised into
        `episode_id` (by the model call of `turn_id`); returns the mark's id."""
        return await self._db.execute(
            "INSERT INTO memory_compactions (chat_id, first_message_id, last_message_id,"
            " episode_id, facts_saved, turn_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                first_message_id,
                last_message_id,
                episode_id,
                facts_saved,
                turn_id,
                iso(self._clock.now()),
            ),
        )

    async def compacted_through(self, chat_id: int) -> int:
        """The id of the last message of this chat already summarised into an episode (0: none)."""
        value = await self._db.scalar(
            "SELECT MAX(last_message_id) FROM memory_compactions WHERE chat_id = ?", (chat_id,)
        )
        return int(value or 0)

    async def latest(self, chat_id: int) -> Compaction | None:
        """The newest mark of this chat (None: it was never compacted)."""
        row = await self._db.fetchone(
            "SELECT * FROM memory_compactions WHERE chat_id = ? ORDER BY last_message_id DESC,"
            " id DESC LIMIT 1",
            (chat_id,),
        )
        if row is None:
            return None
        return Compaction(
            id=row["id"],
            chat_id=row["chat_id"],
            first_message_id=row["first_message_id"],
            last_message_id=row["last_message_id"],
            episode_id=row["episode_id"],
            facts_saved=row["facts_saved"],
            created_at=parse_iso(row["created_at"]),
        )
