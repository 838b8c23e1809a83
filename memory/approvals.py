"""Approvals: deferred tool calls waiting for the owner, stored so a restart changes nothing.

Life of an approval: pending → approved → executing → executed | failed, or pending → denied |
expired. `executing` is committed before the tool runs, so a crash in between can never run the
action twice: at start-up an approval found `executing` becomes `failed`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from memory.clock import Clock, iso, parse_iso
from memory.db import Database

__all__ = ["Approval", "ApprovalStatus", "ApprovalStore", "NewApproval"]


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    EXECUTED = "executed"
    FAILED = "failed"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True)
class NewApproval:
    """A deferred tool call, as the trust layer asks for it."""

    id: str
    turn_id: int
    user_id: int
    chat_id: int | None
    tool: str
    tool_use_id: str
    arguments: dict[str, Any]
    action_hash: str
    fingerprint: str
    risk: str
    reason: str
    preview: str
    tainted: bool
    channel: str | None
    platform_chat_id: str | None
    thread_id: str | None
    expires_at: datetime


@dataclass(frozen=True)
class Approval(NewApproval):
    """A stored approval: the request plus where its decision and execution stand."""

    status: ApprovalStatus
    requested_at: datetime
    decided_by: str | None
    prompt_message_id: str | None
    result: str | None
    result_is_error: bool
    result_source: str | None = None
    """Where the result came from when it is outside content (None: Steward's own words)."""

    @property
    def decided(self) -> bool:
        return self.status not in (
            ApprovalStatus.PENDING,
            ApprovalStatus.APPROVED,
            ApprovalStatus.EXECUTING,
        )


def _approval(row: sqlite3.Row) -> Approval:
    return Approval(
        id=row["id"],
        turn_id=row["turn_id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        tool=row["tool"],
        tool_use_id=row["tool_use_id"],
        arguments=json.loads(row["arguments"]),
        action_hash=row["action_hash"],
        fingerprint=row["fingerprint"],
        risk=row["risk"],
        reason=row["reason"],
        preview=row["preview"],
        tainted=bool(row["tainted"]),
        status=ApprovalStatus(row["status"]),
        requested_at=parse_iso(row["requested_at"]),
        expires_at=parse_iso(row["expires_at"]),
        decided_by=row["decided_by"],
        channel=row["channel"],
        platform_chat_id=row["platform_chat_id"],
        thread_id=row["thread_id"],
        prompt_message_id=row["prompt_message_id"],
        result=row["result"],
        result_is_error=bool(row["result_is_error"]),
        result_source=row["result_source"],
    )


def _named(memory_id: int) -> str:
    """How a `memory_save` card names a memory it retires (agent/tools/memory.py)."""
    return f"replacing #{memory_id}: "


class ApprovalStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def forget_memory(self, user_id: int, memory_id: int, placeholder: str) -> int:
        """Take a forgotten memory's words out of the person's decided `memory_save` requests:
        the one that saved it (its text argument and card) and any whose card named it as
        retired. `/approve show` quoted it whole (R95). Nothing else of the record changes: a
        person forgetting cannot rewrite what was approved (R98). How many changed."""
        rows = await self._db.fetchall(
            "SELECT id, arguments, preview, result FROM approvals WHERE user_id = ?"
            " AND tool = 'memory_save' AND status != ?"
            " AND (COALESCE(result, '') LIKE ? OR instr(preview, ?) > 0)",
            (user_id, ApprovalStatus.PENDING, f"Saved memory #{memory_id}%", _named(memory_id)),
        )
        changed = 0
        for row in rows:
            arguments, preview = row["arguments"], row["preview"]
            if re.match(rf"Saved memory #{memory_id}\b", row["result"] or ""):
                values = json.loads(arguments)
                values["text"] = placeholder
                arguments = json.dumps(values, sort_keys=True)
                preview = f"Remember: {placeholder}"
            else:
                preview = re.sub(
                    rf"(?m)^{re.escape(_named(memory_id))}.*$",
                    _named(memory_id) + placeholder,
                    preview,
                )
            if (arguments, preview) != (row["arguments"], row["preview"]):
                changed += await self._db.execute(
                    "UPDATE approvals SET arguments = ?, preview = ? WHERE id = ?",
                    (arguments, preview, row["id"]),
                )
        return changed

    async def add(self, new: NewApproval) -> Approval:
        await self._db.execute(
            "INSERT INTO approvals (id, turn_id, user_id, chat_id, tool, tool_use_id, arguments,"
            " action_hash, fingerprint, risk, reason, preview, tainted, channel, platform_chat_id,"
            " thread_id, status, requested_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (
                new.id,
                new.turn_id,
                new.user_id,
                new.chat_id,
                new.tool,
                new.tool_use_id,
                json.dumps(new.arguments, sort_keys=True),
                new.action_hash,
                new.fingerprint,
                new.risk,
                new.reason,
                new.preview,
                int(new.tainted),
                new.channel,
                new.platform_chat_id,
                new.thread_id,
                iso(self._clock.now()),
                iso(new.expires_at),
            ),
        )
        approval = await self.get(new.id)
        assert approval is not None
        return approval

    async def exists(self, approval_id: str) -> bool:
        return await self._db.scalar("SELECT 1 FROM approvals WHERE id = ?", (approval_id,)) == 1

    async def get(self, approval_id: str) -> Approval | None:
        row = await self._db.fetchone("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        return _approval(row) if row else None

    async def for_turn(self, turn_id: int) -> list[Approval]:
        rows = await self._db.fetchall(
            "SELECT * FROM approvals WHERE turn_id = ? ORDER BY requested_at, id", (turn_id,)
        )
        return [_approval(r) for r in rows]

    async def pending(self, user_id: int | None = None) -> list[Approval]:
        if user_id is None:
            rows = await self._db.fetchall(
                "SELECT * FROM approvals WHERE status = 'pending' ORDER BY requested_at"
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM approvals WHERE status = 'pending' AND user_id = ?"
                " ORDER BY requested_at",
                (user_id,),
            )
        return [_approval(r) for r in rows]

    async def all(self, *, tool: str | None = None) -> list[Approval]:
        """Every approval ever asked for (of one `tool`), whatever became of it, oldest first."""
        if tool is None:
            rows = await self._db.fetchall("SELECT * FROM approvals ORDER BY rowid")
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM approvals WHERE tool = ? ORDER BY rowid", (tool,)
            )
        return [_approval(r) for r in rows]

    async def count_pending(self) -> int:
        return int(await self._db.scalar("SELECT COUNT(*) FROM approvals WHERE status = 'pending'"))

    async def pending_with_hash(self, user_id: int, action_hash: str) -> Approval | None:
        row = await self._db.fetchone(
            "SELECT * FROM approvals WHERE user_id = ? AND action_hash = ? AND status = 'pending'"
            " ORDER BY requested_at DESC LIMIT 1",
            (user_id, action_hash),
        )
        return _approval(row) if row else None

    async def requested_since(self, user_id: int, since: datetime, *, until: datetime) -> int:
        """Requests made from `since` to `until`. R224: bounded above, so after the clock is
        set back those stamped "later" do not count as this minute's."""
        return int(
            await self._db.scalar(
                "SELECT COUNT(*) FROM approvals WHERE user_id = ?"
                " AND requested_at >= ? AND requested_at <= ?",
                (user_id, iso(since), iso(until)),
            )
        )

    async def transition(
        self,
        approval_id: str,
        expected: ApprovalStatus,
        new: ApprovalStatus,
        *,
        decided_by: str | None = None,
        result: str | None = None,
        result_is_error: bool = False,
        result_source: str | None = None,
    ) -> bool:
        """Move one approval from `expected` to `new`; False if someone else moved it first.

        This compare-and-set is what makes an approval single-use."""
        changed = await self._db.execute(
            "UPDATE approvals SET status = ?, decided_by = COALESCE(?, decided_by),"
            " decided_at = CASE WHEN ? IS NULL THEN decided_at ELSE ? END,"
            " result = COALESCE(?, result), result_is_error = ?,"
            " result_source = COALESCE(?, result_source)"
            " WHERE id = ? AND status = ?",
            (
                new,
                decided_by,
                decided_by,
                iso(self._clock.now()),
                result,
                int(result_is_error),
                result_source,
                approval_id,
                expected,
            ),
        )
        return changed == 1

    async def withdraw_for_user(self, user_id: int, *, decided_by: str) -> list[Approval]:
        """Deny every pending request of one person (they were revoked): none of it may run."""
        return await self._withdraw(
            await self.pending(user_id),
            decided_by,
            "withdrawn: the person who asked can no longer talk to Steward; nothing ran",
        )

    async def withdraw_in_chats(
        self, chat_ids: Sequence[int], *, decided_by: str
    ) -> list[Approval]:
        """Deny every pending request asked in these chats (they left their user: an unlinked
        account's chat): none of it runs, and no turn resumes to answer there."""
        return await self._withdraw(
            [a for a in await self.pending() if a.chat_id in chat_ids],
            decided_by,
            "withdrawn: the chat it was asked in is no longer its person's; nothing ran",
        )

    async def withdraw_restored(self) -> list[Approval]:
        """Deny every request a restored backup held pending: asked before the backup, it may
        have been approved and run since (R123: approved a second time, it ran again)."""
        return await self._withdraw(
            await self.pending(),
            "steward",
            "withdrawn: Steward was restored from a backup taken while it waited; nothing ran",
        )

    async def withdraw_upgraded(self) -> list[Approval]:
        """Deny every request asked under an older Steward, which bound it to its action in
        another way: approved now, it could only be refused as changed (R207)."""
        return await self._withdraw(
            await self.pending(),
            "steward",
            "withdrawn: Steward was upgraded while it waited, and checks actions differently now;"
            " nothing ran",
        )

    async def withdraw_unshown(self, turn_id: int) -> list[Approval]:
        """Deny what a turn cut short by a stop asked for before its card was shown (R147: no
        card, never re-sent, and the same request asked again was merged into the unseen one
        until it expired)."""
        unshown = [
            a
            for a in await self.for_turn(turn_id)
            if a.status is ApprovalStatus.PENDING and a.prompt_message_id is None
        ]
        return await self._withdraw(
            unshown, "steward", "withdrawn: Steward stopped before its card was shown; nothing ran"
        )

    async def _withdraw(self, pending: list[Approval], decided_by: str, why: str) -> list[Approval]:
        withdrawn = []
        for approval in pending:
            if await self.transition(
                approval.id,
                ApprovalStatus.PENDING,
                ApprovalStatus.DENIED,
                decided_by=decided_by,
                result=why,
                result_is_error=True,
            ):
                withdrawn.append(approval)
        return withdrawn

    async def set_prompt_message(self, approval_id: str, platform_message_id: str | None) -> None:
        await self._db.execute(
            "UPDATE approvals SET prompt_message_id = ? WHERE id = ?",
            (platform_message_id, approval_id),
        )

    async def is_card(self, channel: str, platform_chat_id: str, message_id: str) -> bool:
        """Whether that platform message is an approval's card (it shows the approval's id)."""
        row = await self._db.fetchone(
            "SELECT 1 FROM approvals WHERE prompt_message_id = ? AND channel = ? "
            "AND platform_chat_id = ? LIMIT 1",
            (message_id, channel, platform_chat_id),
        )
        return row is not None

    async def due_to_expire(self, now: datetime, slack: timedelta) -> list[Approval]:
        """Pending requests past their time, or made more than `slack` after `now` (the clock
        was set back since: they would outlive their minutes)."""
        rows = await self._db.fetchall(
            "SELECT * FROM approvals WHERE status = 'pending'"
            " AND (expires_at <= ? OR requested_at > ?)",
            (iso(now), iso(now + slack)),
        )
        return [_approval(r) for r in rows]

    async def fail_interrupted(self) -> list[Approval]:
        """Approvals a crash left mid-execution: never run again, marked failed."""
        rows = await self._db.fetchall(
            "SELECT * FROM approvals WHERE status IN ('executing', 'approved')"
        )
        for row in rows:
            await self.transition(
                row["id"],
                ApprovalStatus(row["status"]),
                ApprovalStatus.FAILED,
                result=(
                    "Steward restarted while this action was running: it may have run, "
                    "partly or fully, and was not run again."
                    if row["status"] == ApprovalStatus.EXECUTING
                    else "Steward restarted before this approved action started: it did not run."
                ),
                result_is_error=True,
            )
        return [_approval(r) for r in rows]
