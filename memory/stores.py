"""Everything Steward keeps in SQLite, opened together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memory.approvals import ApprovalStore
from memory.audit import AuditLog
from memory.clock import Clock
from memory.db import Database
from memory.goals import GoalStore
from memory.messages import MessageLog
from memory.people import People
from memory.state import StateStore
from memory.turns import TurnLog

__all__ = ["Stores"]


@dataclass(frozen=True)
class Stores:
    db: Database
    people: People
    messages: MessageLog
    turns: TurnLog
    goals: GoalStore
    audit: AuditLog
    state: StateStore
    approvals: ApprovalStore

    @classmethod
    async def open(cls, path: Path, clock: Clock) -> Stores:
        db = await Database.open(path)
        return cls(
            db=db,
            people=People(db, clock),
            messages=MessageLog(db, clock),
            turns=TurnLog(db, clock),
            goals=GoalStore(db, clock),
            audit=AuditLog(db, clock),
            state=StateStore(db),
            approvals=ApprovalStore(db, clock),
        )

    async def close(self) -> None:
        await self.db.close()
