"""Goals that outlive a conversation: title, status, next step and a dated progress log."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from memory.clock import Clock, iso
from memory.db import Database

__all__ = ["Goal", "GoalStatus", "GoalStore"]


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
    )


class GoalStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def add(self, user_id: int, title: str, *, tainted: bool = False) -> Goal:
        now = iso(self._clock.now())
        goal_id = await self._db.execute(
            "INSERT INTO goals (user_id, title, tainted, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (user_id, title, int(tainted), now, now),
        )
        goal = await self.get(user_id, goal_id)
        assert goal is not None
        return goal

    async def get(self, user_id: int, goal_id: int) -> Goal | None:
        row = await self._db.fetchone(
            "SELECT * FROM goals WHERE id = ? AND user_id = ?", (goal_id, user_id)
        )
        return _goal(row) if row else None

    async def active(self, user_id: int) -> list[Goal]:
        rows = await self._db.fetchall(
            "SELECT * FROM goals WHERE user_id = ? AND status = 'active' ORDER BY id", (user_id,)
        )
        return [_goal(row) for row in rows]

    async def count_active(self) -> int:
        return int(await self._db.scalar("SELECT COUNT(*) FROM goals WHERE status = 'active'"))
