"""Everything Steward keeps in SQLite, opened together.

Code outside memory/ reaches the database only through these stores, never `db` itself.
Long-term memory (`memory/longterm/`) is not one of them: it also holds the vector index and
its embedder, whose lifecycle the memory service owns (`LongTermMemory.from_stores`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memory.approvals import ApprovalStore
from memory.audit import AUDIT_KEY_FILE, AuditLog, ensure_key
from memory.clock import Clock
from memory.db import Database
from memory.feeds import FeedStore
from memory.goals import GoalStore
from memory.links import Links
from memory.mail import MailStore
from memory.message_files import MessageFiles
from memory.messages import MessageLog
from memory.people import People
from memory.schedules import ScheduleStore
from memory.state import StateStore
from memory.turns import TurnLog
from memory.web_reads import ConsoleReads, ModelCallLog
from memory.web_sessions import WebSessionStore

__all__ = ["Stores"]


@dataclass(frozen=True)
class Stores:
    db: Database
    people: People
    messages: MessageLog
    message_files: MessageFiles
    turns: TurnLog
    goals: GoalStore
    audit: AuditLog
    state: StateStore
    approvals: ApprovalStore
    schedules: ScheduleStore
    feeds: FeedStore
    links: Links
    mail: MailStore
    web_sessions: WebSessionStore
    console_reads: ConsoleReads
    model_calls: ModelCallLog

    @classmethod
    async def open(
        cls,
        path: Path,
        clock: Clock,
        *,
        audit_key: bool = True,
        upgrade: bool = True,
        read_only: bool = False,
    ) -> Stores:
        """Open (and migrate) the database, and the audit key beside it.

        The key is created at first start; `audit_key=False` (the `steward audit` commands)
        never creates one and leaves the key to `AuditLog.verify()`, which reports its absence.
        `upgrade=False` (every command but a start): a schema behind this code is refused.
        `read_only=True` (commands that only read; with `upgrade=False` also a database that
        cannot be written, see Database.open): nothing is written, not even the audit head.
        """
        db = await Database.open(path, upgrade=upgrade, read_only=read_only)
        key_path = path.parent / AUDIT_KEY_FILE
        # read-only: an existing key is checked as ever, a missing one is not made
        audit_key = audit_key and not (db.read_only and not key_path.exists())
        try:
            key = await ensure_key(db, key_path, clock) if audit_key else None
        except BaseException:
            await db.close()
            raise
        messages = MessageLog(db, clock)
        stores = cls(
            db=db,
            people=People(db, clock),
            messages=messages,
            message_files=MessageFiles(db),
            turns=TurnLog(db, clock),
            goals=GoalStore(db, clock),
            audit=AuditLog(db, clock, key, key_path),
            state=StateStore(db),
            approvals=ApprovalStore(db, clock),
            schedules=ScheduleStore(db, clock),
            feeds=FeedStore(db, clock),
            links=Links(db, clock, chats_changed=messages.forget_chats),
            mail=MailStore(db, clock),
            web_sessions=WebSessionStore(db, clock),
            console_reads=ConsoleReads(db, clock),
            model_calls=ModelCallLog(db, clock),
        )
        if audit_key and not db.read_only:  # it writes the head (and may record a gap)
            try:
                await stores.audit.settle_head()
            except BaseException:
                await db.close()
                raise
        return stores

    async def close(self) -> None:
        await self.db.close()
