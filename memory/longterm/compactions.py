"""Compaction marks: which of a chat's messages were summarised into an episode memory.

A mark moves the chat's history window past those messages (the messages stay in SQLite); the
latest mark names the episode that recall brings back for the chat.

Every turn asks for its chat's marks (the history window, recall), and marks are rare and only
ever added here: each chat's latest mark is read once and kept until `record` adds one.

A compaction's mark is stored in the transaction that stores its episode (`record_in`, through
`LongTermMemory.save(..., compaction=)`): both or neither. R254: the episode was committed,
then its vector written, then the mark; a stop in between (SIGKILL, or upkeep cut off at a
normal stop) left an episode with no mark, and after the restart the same messages were
summarised again into a second episode in force beside it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import aiosqlite

from memory.clock import Clock, iso, parse_iso
from memory.db import Database
from memory.longterm.types import Compaction

__all__ = ["CompactionLog", "NewCompaction", "compaction_of_row"]

_INSERT = (
    "INSERT INTO memory_compactions (chat_id, first_message_id, last_message_id, episode_id,"
    " facts_saved, turn_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class NewCompaction:
    """A mark to store with its episode: messages `first_message_id`..`last_message_id` of a
    chat summarised (by the model call of `turn_id`), `facts_saved` facts saved from them."""

    chat_id: int
    first_message_id: int
    last_message_id: int
    facts_saved: int
    turn_id: int | None


class CompactionLog:
    """The `memory_compactions` table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._latest: dict[int, Compaction | None] = {}
        self._through: dict[int, int] = {}
        self._generation = 0  # bumped by each mark: a read begun before it is not kept

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
        mark = NewCompaction(chat_id, first_message_id, last_message_id, facts_saved, turn_id)
        return await self.add(mark, episode_id)

    async def add(self, mark: NewCompaction, episode_id: int | None) -> int:
        """Store `mark` for `episode_id` (kept already) on its own; returns the mark's id."""
        try:
            return await self._db.execute(_INSERT, self._values(mark, episode_id))
        finally:
            self.changed(mark.chat_id)

    async def record_in(
        self, tx: aiosqlite.Connection, mark: NewCompaction, episode_id: int
    ) -> None:
        """Store `mark` for `episode_id` inside the caller's transaction (the one storing the
        episode). The caller calls `changed` once that transaction ended, either way."""
        try:
            await tx.execute(_INSERT, self._values(mark, episode_id))
        finally:
            self.changed(mark.chat_id)

    def changed(self, chat_id: int) -> None:
        """A mark of this chat was added, or its transaction ended: read its marks afresh."""
        self._generation += 1
        self._latest.pop(chat_id, None)
        self._through.pop(chat_id, None)

    def _values(self, mark: NewCompaction, episode_id: int | None) -> tuple[Any, ...]:
        return (
            mark.chat_id,
            mark.first_message_id,
            mark.last_message_id,
            episode_id,
            mark.facts_saved,
            mark.turn_id,
            iso(self._clock.now()),
        )

    async def compacted_through(self, chat_id: int) -> int:
        """The id of the last message of this chat already summarised into an episode (0: none)."""
        if chat_id in self._through:
            return self._through[chat_id]
        generation = self._generation
        value = await self._db.scalar(
            "SELECT MAX(last_message_id) FROM memory_compactions WHERE chat_id = ?", (chat_id,)
        )
        through = int(value or 0)
        if generation == self._generation:
            self._through[chat_id] = through
        return through

    async def latest(self, chat_id: int) -> Compaction | None:
        """The newest mark of this chat (None: it was never compacted)."""
        if chat_id in self._latest:
            return self._latest[chat_id]
        generation = self._generation
        row = await self._db.fetchone(
            "SELECT * FROM memory_compactions WHERE chat_id = ? ORDER BY last_message_id DESC,"
            " id DESC LIMIT 1",
            (chat_id,),
        )
        found = None if row is None else compaction_of_row(row)
        if generation == self._generation:
            self._latest[chat_id] = found
        return found


def compaction_of_row(row: sqlite3.Row) -> Compaction:
    return Compaction(
        id=row["id"],
        chat_id=row["chat_id"],
        first_message_id=row["first_message_id"],
        last_message_id=row["last_message_id"],
        episode_id=row["episode_id"],
        facts_saved=row["facts_saved"],
        created_at=parse_iso(row["created_at"]),
    )
