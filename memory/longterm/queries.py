"""Read-only look-ups over long-term memory that the agent never makes, for whoever inspects it
(the tests, a diagnostic): every compaction mark, in every chat. `compactions.py` writes the marks
and answers the agent's questions about one chat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memory.db import Database
from memory.longterm.compactions import compaction_of_row
from memory.longterm.types import Compaction

if TYPE_CHECKING:
    from memory.stores import Stores

__all__ = ["CompactionMarks"]


class CompactionMarks:
    """The `memory_compactions` table, read only."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @classmethod
    def from_stores(cls, stores: Stores) -> CompactionMarks:
        """The marks in the database the other stores use."""
        return cls(stores.db)

    async def all(self, chat_id: int | None = None) -> list[Compaction]:
        """Every mark (of one chat), oldest first."""
        if chat_id is None:
            rows = await self._db.fetchall("SELECT * FROM memory_compactions ORDER BY id")
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM memory_compactions WHERE chat_id = ? ORDER BY id", (chat_id,)
            )
        return [compaction_of_row(row) for row in rows]
