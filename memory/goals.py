"""Goals that outlive a conversation: title, status, next step and a dated progress log."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from memory.clock import Clock, iso, parse_iso
from memory.db import Database
from memory.labels import TRUSTED, Label

__all__ = ["Goal", "GoalNote", "GoalStatus", "GoalStore", "note_memory_text", "note_words"]


class GoalStatus(StrEnum):
    ACTIVE = "active"
    DONE = "done"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Goal:
    id: int
    user_id: int
    title: str
    status: GoalStatus
    next_step: str
    cadence: str | None
    due_at: str | None
    tainted: bool
    updated_at: str
    created_at: str = ""
    label: Label = TRUSTED


@dataclass(frozen=True)
class GoalNote:
    id: int
    goal_id: int
    note: str
    created_at: datetime
    memory_id: int | None = None
    """The long-term memory it was also saved as (migration 0019): forgetting or correcting
    that memory forgets or corrects this note."""


def note_memory_text(title: str, day: date, note: str) -> str:
    """A progress note as a memory says it: recalled alone, it names its goal and day."""
    return f"Progress on goal “{title}” ({day:%Y-%m-%d}): {note}"


# A correction copied from the memory keeps its goal and day; the log shows the note alone.
_NOTE_MEMORY = re.compile(r"Progress on goal “.*?” \(\d{4}-\d{2}-\d{2}\): ", re.DOTALL)


def note_words(memory_text: str) -> str | None:
    """A progress note's own words, when `memory_text` is a note as its memory says it
    (`note_memory_text`); None for any other memory."""
    found = _NOTE_MEMORY.match(memory_text)
    return memory_text[found.end() :] if found and found.end() < len(memory_text) else None


def _note_text(stored: str) -> str:
    """The note's words: a note corrected through its memory (migration 0019's trigger) took
    the memory's whole text, which may repeat the goal and day."""
    found = _NOTE_MEMORY.match(stored)
    return stored[found.end() :] if found and found.end() < len(stored) else stored


def _goal(row: sqlite3.Row) -> Goal:
    return Goal(
        id=row["id"],
        user_id=row["user_id"],
        title=row["title"],
        status=GoalStatus(row["status"]),
        next_step=row["next_step"],
        cadence=row["cadence"],
        due_at=row["due_at"],
        tainted=bool(row["tainted"]),
        updated_at=row["updated_at"],
        created_at=row["created_at"],
        label=Label.of(bool(row["tainted"]), Label.from_json(row["label"]).sources),
    )


def _note(row: sqlite3.Row) -> GoalNote:
    return GoalNote(
        row["id"],
        row["goal_id"],
        _note_text(row["note"]),
        parse_iso(row["created_at"]),
        row["memory_id"],
    )


class GoalStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def add(
        self,
        user_id: int,
        title: str,
        *,
        tainted: bool = False,
        due_at: datetime | None = None,
        next_step: str = "",
        sources: tuple[str, ...] = (),
        made_in_turn: int | None = None,
    ) -> Goal:
        """`tainted`/`sources`: the label of the turn that made the goal (outside content);
        `made_in_turn`: the turn whose tool call made it."""
        now = iso(self._clock.now())
        label = Label.of(tainted, sources)
        goal_id = await self._db.execute(
            "INSERT INTO goals (user_id, title, next_step, due_at, tainted, created_at,"
            " updated_at, label, made_in_turn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user_id,
                title,
                next_step,
                iso(due_at) if due_at else None,
                int(tainted),
                now,
                now,
                label.to_json(),
                made_in_turn,
            ),
        )
        goal = await self.get(user_id, goal_id)
        assert goal is not None
        return goal

    async def get(self, user_id: int, goal_id: int) -> Goal | None:
        row = await self._db.fetchone(
            "SELECT * FROM goals WHERE id = ? AND user_id = ?", (goal_id, user_id)
        )
        return _goal(row) if row else None

    async def by_id(self, goal_id: int) -> Goal | None:
        row = await self._db.fetchone("SELECT * FROM goals WHERE id = ?", (goal_id,))
        return _goal(row) if row else None

    async def active(self, user_id: int) -> list[Goal]:
        rows = await self._db.fetchall(
            "SELECT * FROM goals WHERE user_id = ? AND status = 'active' ORDER BY id", (user_id,)
        )
        return [_goal(row) for row in rows]

    async def all(self, user_id: int) -> list[Goal]:
        """Every goal of the user, active first."""
        rows = await self._db.fetchall(
            "SELECT * FROM goals WHERE user_id = ?"
            " ORDER BY CASE status WHEN 'active' THEN 0 ELSE 1 END, id",
            (user_id,),
        )
        return [_goal(row) for row in rows]

    async def label_of(self, goal_id: int) -> Label:
        """The label stored with a goal, as written (`Goal.label` also folds in its `tainted`
        flag); trusted when there is no such goal."""
        row = await self._db.fetchone("SELECT label FROM goals WHERE id = ?", (goal_id,))
        return Label.from_json(row["label"]) if row else TRUSTED

    async def count_active(self) -> int:
        return int(await self._db.scalar("SELECT COUNT(*) FROM goals WHERE status = 'active'"))

    async def _set(self, goal_id: int, column: str, value: object) -> None:
        assert column in {"next_step", "status", "cadence", "due_at", "title"}
        await self._db.execute(
            f"UPDATE goals SET {column} = ?, updated_at = ? WHERE id = ?",
            (value, iso(self._clock.now()), goal_id),
        )

    async def taint(self, goal_id: int, label: Label) -> None:
        """A goal changed by a turn that held outside content carries that content's label
        from then on (it is shown on every turn, so it must be fenced and taint them)."""
        if label.trusted:
            return
        row = await self._db.fetchone("SELECT label FROM goals WHERE id = ?", (goal_id,))
        if row is None:
            return
        joined = Label.from_json(row["label"]).join(label)
        await self._db.execute(
            "UPDATE goals SET tainted = 1, label = ? WHERE id = ?", (joined.to_json(), goal_id)
        )

    async def set_next_step(self, goal_id: int, next_step: str) -> None:
        await self._set(goal_id, "next_step", next_step)

    async def set_title(self, goal_id: int, title: str) -> None:
        await self._set(goal_id, "title", title)

    async def set_status(self, goal_id: int, status: GoalStatus) -> None:
        await self._set(goal_id, "status", str(status))

    async def set_cadence(self, goal_id: int, cadence: str | None) -> None:
        await self._set(goal_id, "cadence", cadence)

    async def set_due(self, goal_id: int, due_at: datetime | None) -> None:
        await self._set(goal_id, "due_at", iso(due_at) if due_at else None)

    async def made_in(self, user_id: int, turn_ids: Collection[int]) -> list[Goal]:
        """A person's goals these turns' tool calls started, whatever their status."""
        if not turn_ids:
            return []
        marks = ", ".join("?" * len(turn_ids))
        rows = await self._db.fetchall(
            f"SELECT * FROM goals WHERE user_id = ? AND made_in_turn IN ({marks}) ORDER BY id",
            (user_id, *sorted(turn_ids)),
        )
        return [_goal(row) for row in rows]

    async def forget_made_in(
        self, user_id: int, turn_ids: Collection[int], placeholder: str
    ) -> list[Goal]:
        """The goals a person's forgotten exchanges started (`made_in_turn`): each loses its
        title and next step (their words, in the model's wording), keeping its notes, dates and
        check-ins for a new title (`/goal rename`). Those, as they were."""
        if not turn_ids:
            return []
        marks = ", ".join("?" * len(turn_ids))
        async with self._db.transaction() as tx:
            cursor = await tx.execute(
                f"SELECT * FROM goals WHERE user_id = ? AND made_in_turn IN ({marks}) ORDER BY id",
                (user_id, *sorted(turn_ids)),
            )
            rows = list(await cursor.fetchall())
            for row in rows:
                await tx.execute(
                    "UPDATE goals SET title = ?, next_step = '', updated_at = ? WHERE id = ?",
                    (placeholder, iso(self._clock.now()), row["id"]),
                )
        return [_goal(row) for row in rows]

    async def add_note(self, goal_id: int, note: str) -> GoalNote:
        """Log progress on a goal (dated now)."""
        now = iso(self._clock.now())
        async with self._db.transaction() as tx:
            cursor = await tx.execute(
                "INSERT INTO goal_notes (goal_id, note, created_at) VALUES (?, ?, ?)",
                (goal_id, note, now),
            )
            await tx.execute("UPDATE goals SET updated_at = ? WHERE id = ?", (now, goal_id))
        return GoalNote(int(cursor.lastrowid or 0), goal_id, note, parse_iso(now))

    async def link_note(self, note_id: int, memory_id: int) -> None:
        """The memory the note was also saved as: forgotten or corrected, it takes the note
        with it (migration 0019's triggers)."""
        await self._db.execute(
            "UPDATE goal_notes SET memory_id = ? WHERE id = ?", (memory_id, note_id)
        )

    async def notes(self, goal_id: int, *, limit: int = 20) -> list[GoalNote]:
        """The progress log, oldest first (the latest `limit` entries)."""
        rows = await self._db.fetchall(
            "SELECT * FROM goal_notes WHERE goal_id = ? ORDER BY id DESC LIMIT ?",
            (goal_id, limit),
        )
        return [_note(row) for row in reversed(rows)]

    async def latest_notes(self, goal_ids: Iterable[int]) -> dict[int, GoalNote]:
        """The newest progress note of each goal that has one."""
        ids = list(goal_ids)
        if not ids:
            return {}
        rows = await self._db.fetchall(
            "SELECT * FROM goal_notes WHERE id IN (SELECT MAX(id) FROM goal_notes"
            f" WHERE goal_id IN ({','.join('?' * len(ids))}) GROUP BY goal_id)",
            ids,
        )
        return {row["goal_id"]: _note(row) for row in rows}
