"""The append-only audit log, each event chained to the one before by its hash.

`hash = sha256(prev_hash + canonical JSON of the event)`, so editing or deleting any row breaks
every link after it; `verify()` names the first broken one. Events record ids and shapes, not
message text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from memory.clock import Clock, iso
from memory.db import Database

__all__ = ["GENESIS", "AuditEvent", "AuditLog", "Verification"]

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: str
    kind: str
    actor: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    first_broken_id: int | None = None
    problem: str = ""


def _digest(prev_hash: str, at: str, kind: str, actor: str, subject: str, detail: str) -> str:
    canonical = json.dumps([at, kind, actor, subject, detail], separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


class AuditLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self, kind: str, /, *, actor: str, subject: str = "", **detail: Any
    ) -> AuditEvent:
        at = iso(self._clock.now())
        detail_json = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
        async with self._db.transaction() as tx:
            cursor = await tx.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1")
            row = await cursor.fetchone()
            prev = row["hash"] if row else GENESIS
            digest = _digest(prev, at, kind, actor, subject, detail_json)
            cursor = await tx.execute(
                "INSERT INTO audit_events (at, kind, actor, subject, detail, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at, kind, actor, subject, detail_json, prev, digest),
            )
            event_id = cursor.lastrowid
        return AuditEvent(int(event_id or 0), at, kind, actor, subject, detail, prev, digest)

    async def recent(self, limit: int = 20, kind: str | None = None) -> list[AuditEvent]:
        if kind is None:
            rows = await self._db.fetchall(
                "SELECT * FROM audit_events ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM audit_events WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit)
            )
        return [self._event(row) for row in reversed(rows)]

    async def all(self) -> AsyncIterator[AuditEvent]:
        last_id = 0
        while True:
            rows = await self._db.fetchall(
                "SELECT * FROM audit_events WHERE id > ? ORDER BY id LIMIT 1000", (last_id,)
            )
            if not rows:
                return
            for row in rows:
                yield self._event(row)
            last_id = rows[-1]["id"]

    async def verify(self) -> Verification:
        expected_prev = GENESIS
        expected_id = 1
        count = 0
        async for event in self.all():
            count += 1
            detail_json = json.dumps(event.detail, sort_keys=True, separators=(",", ":"))
            if event.id != expected_id:
                return Verification(False, count, expected_id, f"event {expected_id} is missing")
            if event.prev_hash != expected_prev:
                return Verification(False, count, event.id, "does not link to the event before it")
            recomputed = _digest(
                event.prev_hash, event.at, event.kind, event.actor, event.subject, detail_json
            )
            if recomputed != event.hash:
                return Verification(False, count, event.id, "its content does not match its hash")
            expected_prev = event.hash
            expected_id += 1
        return Verification(True, count)

    @staticmethod
    def _event(row: Any) -> AuditEvent:
        return AuditEvent(
            id=row["id"],
            at=row["at"],
            kind=row["kind"],
            actor=row["actor"],
            subject=row["subject"],
            detail=json.loads(row["detail"]),
            prev_hash=row["prev_hash"],
            hash=row["hash"],
        )
