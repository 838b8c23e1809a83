"""What Steward keeps about the mailbox: watch rules, how far each folder was read (UIDVALIDITY
and UID), the notices made, and the inbox's place in the briefing. No message text is stored
here beyond a notice's own short line."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memory.clock import Clock, iso
from memory.db import Database

__all__ = ["FolderMark", "MailNotice", "MailPrefs", "MailStore", "WatchRule"]


@dataclass(frozen=True)
class WatchRule:
    id: int
    user_id: int
    kind: str  # 'from', 'subject' or 'unread_older'
    value: str
    chat_id: int | None
    destination: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class FolderMark:
    folder: str
    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class MailNotice:
    id: int
    user_id: int
    folder: str
    uidvalidity: int
    uid: int
    reason: str
    rule_id: int | None
    text: str
    sender: str
    schedule_id: int | None


@dataclass(frozen=True)
class MailPrefs:
    briefing: bool = False
    briefed_until: datetime | None = None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _rule(row: sqlite3.Row) -> WatchRule:
    return WatchRule(
        row["id"],
        row["user_id"],
        row["kind"],
        row["value"],
        row["chat_id"],
        json.loads(row["destination"]) if row["destination"] else None,
        datetime.fromisoformat(row["created_at"]),
    )


def _notice(row: sqlite3.Row) -> MailNotice:
    return MailNotice(
        row["id"],
        row["user_id"],
        row["folder"],
        row["uidvalidity"],
        row["uid"],
        row["reason"],
        row["rule_id"],
        row["text"],
        row["sender"],
        row["schedule_id"],
    )


class MailStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # -- watch rules -------------------------------------------------------------------------

    async def add_rule(
        self,
        user_id: int,
        kind: str,
        value: str,
        *,
        chat_id: int | None,
        destination: dict[str, Any] | None,
    ) -> tuple[WatchRule, bool]:
        """The rule, and False when the user already had the same one."""
        for rule in await self.rules(user_id):
            if rule.kind == kind and rule.value.lower() == value.lower():
                return rule, False
        rule_id = await self._db.execute(
            "INSERT INTO mail_watch_rules (user_id, kind, value, chat_id, destination, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                user_id,
                kind,
                value,
                chat_id,
                json.dumps(destination) if destination is not None else None,
                iso(self._clock.now()),
            ),
        )
        row = await self._db.fetchone("SELECT * FROM mail_watch_rules WHERE id = ?", (rule_id,))
        assert row is not None
        return _rule(row), True

    async def rules(self, user_id: int | None = None) -> list[WatchRule]:
        """Rules in force (of one user, or everyone's), oldest first."""
        if user_id is None:
            rows = await self._db.fetchall(
                "SELECT * FROM mail_watch_rules WHERE removed_at IS NULL ORDER BY id"
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM mail_watch_rules WHERE removed_at IS NULL AND user_id = ?"
                " ORDER BY id",
                (user_id,),
            )
        return [_rule(r) for r in rows]

    async def remove_rule(self, user_id: int, rule_id: int) -> WatchRule | None:
        row = await self._db.fetchone(
            "SELECT * FROM mail_watch_rules WHERE id = ? AND user_id = ? AND removed_at IS NULL",
            (rule_id, user_id),
        )
        if row is None:
            return None
        await self._db.execute(
            "UPDATE mail_watch_rules SET removed_at = ? WHERE id = ?",
            (iso(self._clock.now()), rule_id),
        )
        return _rule(row)

    # -- folders -----------------------------------------------------------------------------

    async def folder(self, folder: str) -> FolderMark | None:
        row = await self._db.fetchone("SELECT * FROM mail_folders WHERE folder = ?", (folder,))
        return FolderMark(row["folder"], row["uidvalidity"], row["last_uid"]) if row else None

    async def set_folder(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        await self._db.execute(
            "INSERT INTO mail_folders (folder, uidvalidity, last_uid, checked_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (folder) DO UPDATE SET"
            " uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid,"
            " checked_at = excluded.checked_at",
            (folder, uidvalidity, last_uid, iso(self._clock.now())),
        )

    # -- notices -----------------------------------------------------------------------------

    async def add_notice(
        self,
        *,
        user_id: int,
        folder: str,
        uidvalidity: int,
        uid: int,
        reason: str,
        rule_id: int | None,
        text: str,
        sender: str,
    ) -> MailNotice | None:
        """Record a notice; None when this message already had one for this reason."""
        async with self._db.transaction() as tx:
            cursor = await tx.execute(
                "INSERT OR IGNORE INTO mail_notices (user_id, folder, uidvalidity, uid, reason,"
                " rule_id, text, sender, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user_id,
                    folder,
                    uidvalidity,
                    uid,
                    reason,
                    rule_id,
                    text,
                    sender,
                    iso(self._clock.now()),
                ),
            )
            inserted = cursor.rowcount
            notice_id = cursor.lastrowid
            await cursor.close()
        if not inserted:
            return None
        row = await self._db.fetchone("SELECT * FROM mail_notices WHERE id = ?", (notice_id,))
        return _notice(row) if row else None

    async def noticed(
        self, folder: str, uidvalidity: int, reason: str, user_ids: list[int]
    ) -> set[int]:
        """The UIDs in `folder` every one of `user_ids` already had a notice of for `reason`."""
        if not user_ids:
            return set()
        marks = ",".join("?" * len(set(user_ids)))
        rows = await self._db.fetchall(
            "SELECT uid FROM mail_notices WHERE folder = ? AND uidvalidity = ? AND reason = ?"
            f" AND user_id IN ({marks}) GROUP BY uid HAVING COUNT(DISTINCT user_id) = ?",
            (folder, uidvalidity, reason, *set(user_ids), len(set(user_ids))),
        )
        return {int(r["uid"]) for r in rows}

    async def set_notice_schedule(self, notice_id: int, schedule_id: int) -> None:
        await self._db.execute(
            "UPDATE mail_notices SET schedule_id = ? WHERE id = ?", (schedule_id, notice_id)
        )

    async def unqueued_notices(self) -> list[MailNotice]:
        rows = await self._db.fetchall(
            "SELECT * FROM mail_notices WHERE schedule_id IS NULL ORDER BY id"
        )
        return [_notice(r) for r in rows]

    async def notices(self, user_id: int, limit: int = 100) -> list[MailNotice]:
        rows = await self._db.fetchall(
            "SELECT * FROM mail_notices WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            (user_id, limit),
        )
        return [_notice(r) for r in rows]

    # -- briefing ----------------------------------------------------------------------------

    async def prefs(self, user_id: int) -> MailPrefs:
        row = await self._db.fetchone("SELECT * FROM mail_prefs WHERE user_id = ?", (user_id,))
        if row is None:
            return MailPrefs()
        return MailPrefs(bool(row["briefing"]), _dt(row["briefed_until"]))

    async def set_briefing(self, user_id: int, on: bool) -> None:
        await self._db.execute(
            "INSERT INTO mail_prefs (user_id, briefing) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET briefing = excluded.briefing",
            (user_id, int(on)),
        )

    async def set_briefed_until(self, user_id: int, until: datetime) -> None:
        await self._db.execute(
            "INSERT INTO mail_prefs (user_id, briefed_until) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET briefed_until = excluded.briefed_until",
            (user_id, iso(until)),
        )
