"""The message log: every incoming and outgoing message, stored before anyone acts on it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from memory.clock import Clock, iso
from memory.db import Database
from memory.labels import TRUSTED, Label

__all__ = ["InStatus", "MessageLog", "OutStatus", "StoredMessage"]


class InStatus(StrEnum):
    RECEIVED = "received"
    HANDLED = "handled"
    INTERRUPTED = "interrupted"


class OutStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class StoredMessage:
    id: int
    chat_id: int
    user_id: int | None
    direction: str
    thread_id: str | None
    text: str
    status: str
    created_at: str
    label: Label = TRUSTED
    turn_id: int | None = None
    in_history: bool = True  # False: a command or its answer, left out of the conversation


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        chat_id=row["chat_id"],
        user_id=row["user_id"],
        direction=row["direction"],
        thread_id=row["thread_id"],
        text=row["text"],
        status=row["status"],
        created_at=row["created_at"],
        label=Label.from_json(row["label"]),
        turn_id=row["turn_id"],
        in_history=bool(row["in_history"]),
    )


class MessageLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record_incoming(
        self,
        *,
        chat_id: int,
        user_id: int,
        text: str,
        platform_message_id: str | None,
        thread_id: str | None = None,
        in_history: bool = True,
        label: Label = TRUSTED,
    ) -> int | None:
        """Commit an incoming message; None when this platform message was stored before.
        `label`: another person's words are outside content, and stay so in later turns."""
        now = iso(self._clock.now())
        async with self._db.transaction() as tx:
            cursor = await tx.execute(
                "INSERT INTO messages (chat_id, user_id, direction, thread_id, platform_message_id,"
                " text, status, in_history, created_at, updated_at, label)"
                " VALUES (?, ?, 'in', ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    chat_id,
                    user_id,
                    thread_id,
                    platform_message_id,
                    text,
                    InStatus.RECEIVED,
                    int(in_history),
                    now,
                    now,
                    label.to_json(),
                ),
            )
            return cursor.lastrowid if cursor.rowcount else None

    async def record_outgoing(
        self,
        *,
        chat_id: int,
        text: str,
        thread_id: str | None = None,
        turn_id: int | None = None,
        in_history: bool = True,
        label: Label = TRUSTED,
    ) -> int:
        """Store a message Steward sends; `label` is that of the turn (or job) that wrote it, so
        a reply shaped by outside content stays outside content in the history."""
        now = iso(self._clock.now())
        return await self._db.execute(
            "INSERT INTO messages (chat_id, direction, thread_id, text, status, turn_id,"
            " in_history, created_at, updated_at, label) VALUES (?, 'out', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                thread_id,
                text,
                OutStatus.PENDING,
                turn_id,
                int(in_history),
                now,
                now,
                label.to_json(),
            ),
        )

    async def set_status(
        self,
        message_id: int,
        status: InStatus | OutStatus,
        *,
        platform_message_id: str | None = None,
        error: str | None = None,
        turn_id: int | None = None,
    ) -> None:
        await self._db.execute(
            "UPDATE messages SET status = ?, updated_at = ?,"
            " platform_message_id = COALESCE(?, platform_message_id),"
            " turn_id = COALESCE(?, turn_id), last_error = ?,"
            " attempts = attempts + (CASE WHEN direction = 'out' THEN 1 ELSE 0 END)"
            " WHERE id = ?",
            (status, iso(self._clock.now()), platform_message_id, turn_id, error, message_id),
        )

    async def get(self, message_id: int) -> StoredMessage | None:
        row = await self._db.fetchone("SELECT * FROM messages WHERE id = ?", (message_id,))
        return _message(row) if row else None

    async def recent(
        self, chat_id: int, *, before_id: int | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        """The conversation in a chat, oldest first: what was said before incoming message
        `before_id` (messages queued after it are not), and every answer sent so far. Commands and
        their answers are left out: they are not part of what the agent was told."""
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE chat_id = ? AND in_history = 1"
            " AND (direction = 'out' OR id < ?)"
            " AND status IN ('handled', 'sent', 'pending', 'received')"
            " ORDER BY id DESC LIMIT ?",
            (chat_id, before_id if before_id is not None else 2**62, limit),
        )
        return [_message(row) for row in reversed(rows)]

    async def history_after(self, chat_id: int, after_id: int) -> list[StoredMessage]:
        """The chat's conversation after message `after_id`, oldest first and without a limit:
        what compaction weighs and summarises (commands and their answers left out)."""
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE chat_id = ? AND id > ? AND in_history = 1"
            " AND status IN ('handled', 'sent', 'pending', 'received') ORDER BY id",
            (chat_id, after_id),
        )
        return [_message(row) for row in rows]

    async def unanswered(self) -> list[StoredMessage]:
        """Incoming messages received but never handled: a crash came between."""
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE direction = 'in' AND status = ? ORDER BY id",
            (InStatus.RECEIVED,),
        )
        return [_message(row) for row in rows]

    async def undelivered(self) -> list[StoredMessage]:
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE direction = 'out' AND status IN (?, ?) ORDER BY id",
            (OutStatus.PENDING, OutStatus.FAILED),
        )
        return [_message(row) for row in rows]

    async def count(self, direction: str | None = None) -> int:
        if direction is None:
            return int(await self._db.scalar("SELECT COUNT(*) FROM messages"))
        return int(
            await self._db.scalar("SELECT COUNT(*) FROM messages WHERE direction = ?", (direction,))
        )

    async def all(self, *, direction: str | None = None) -> list[StoredMessage]:
        """Every stored message (of one `direction`), commands and their answers too, oldest
        first."""
        if direction is None:
            rows = await self._db.fetchall("SELECT * FROM messages ORDER BY id")
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM messages WHERE direction = ? ORDER BY id", (direction,)
            )
        return [_message(row) for row in rows]

    async def find_text(
        self, fragment: str, *, direction: str | None = None, at_start: bool = False
    ) -> list[StoredMessage]:
        """The messages (of one `direction`) whose text contains `fragment` (begins with it,
        if `at_start`), case-sensitive, oldest first."""
        found = "instr(text, ?) = 1" if at_start else "instr(text, ?) > 0"
        if direction is None:
            rows = await self._db.fetchall(
                f"SELECT * FROM messages WHERE {found} ORDER BY id", (fragment,)
            )
        else:
            rows = await self._db.fetchall(
                f"SELECT * FROM messages WHERE direction = ? AND {found} ORDER BY id",
                (direction, fragment),
            )
        return [_message(row) for row in rows]
