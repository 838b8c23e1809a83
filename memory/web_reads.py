"""Read-only queries the web console needs and no other store answers, plus model-call timings.

- the audit timeline filtered by kind, tool, chat and decision, newest first, by pages;
- one turn's whole story: its row, its messages, its audit events;
- tokens and cost by UTC day and kind of turn;
- model calls with their latency (`ModelCallLog`, written by `agent.model_timing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memory.audit import AuditEvent, event_from_row
from memory.clock import CLOCK_SLACK, Clock, iso, parse_iso
from memory.db import Database
from memory.labels import Label

__all__ = [
    "AuditFilter",
    "ConsoleReads",
    "DayUsage",
    "ModelCall",
    "ModelCallLog",
    "TurnMessage",
    "TurnStory",
]


@dataclass(frozen=True)
class AuditFilter:
    kind: str = ""  # a prefix: "approval." matches every approval event
    tool: str = ""
    chat: str = ""  # a chat as the events name it (`test:c1`), or a turn's chat id
    decision: str = ""  # allow / ask / deny (tool.requested), or approved / denied …
    actor: str = ""
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class TurnStory:
    id: int
    kind: str
    status: str
    model: str
    user_id: int | None
    chat_id: int | None
    message_id: int | None
    started_at: str
    finished_at: str | None
    steps: int
    label: Label
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    error: str | None
    transcript: str | None


@dataclass(frozen=True)
class TurnMessage:
    id: int
    chat_id: int
    direction: str
    text: str
    status: str
    created_at: str
    label: Label


@dataclass(frozen=True)
class DayUsage:
    day: str  # YYYY-MM-DD, UTC
    kind: str
    turns: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float

    @property
    def total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@dataclass(frozen=True)
class ModelCall:
    at: datetime
    model: str
    latency_ms: int
    ok: bool


class ConsoleReads:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def audit_events(self, where: AuditFilter) -> list[AuditEvent]:
        """Events matching every filter given, newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if where.kind:
            clauses.append("kind LIKE ? ESCAPE '\\'")
            params.append(_like_prefix(where.kind))
        if where.tool:
            clauses.append("(json_extract(detail, '$.tool') = ? OR subject = ?)")
            params += [where.tool, where.tool]
        if where.chat:
            clauses.append(
                "(json_extract(detail, '$.chat') = ? OR json_extract(detail, '$.chat_id') = ?"
                " OR subject = ?)"
            )
            params += [where.chat, where.chat, where.chat]
        if where.decision:
            clauses.append("(json_extract(detail, '$.decision') = ? OR kind = ?)")
            params += [where.decision, f"approval.{where.decision}"]
        if where.actor:
            clauses.append("actor = ?")
            params.append(where.actor)
        if where.before_id is not None:
            clauses.append("id < ?")
            params.append(where.before_id)
        sql = "SELECT * FROM audit_events"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(where.limit)
        return [event_from_row(row) for row in await self._db.fetchall(sql, params)]

    async def audit_kinds(self) -> list[str]:
        rows = await self._db.fetchall("SELECT DISTINCT kind FROM audit_events ORDER BY kind")
        return [row["kind"] for row in rows]

    async def turn(self, turn_id: int) -> TurnStory | None:
        row = await self._db.fetchone("SELECT * FROM turns WHERE id = ?", (turn_id,))
        if row is None:
            return None
        return TurnStory(
            id=row["id"],
            kind=row["kind"],
            status=row["status"],
            model=row["model"] or "",
            user_id=row["user_id"],
            chat_id=row["chat_id"],
            message_id=row["message_id"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            steps=row["steps"] or 0,
            label=Label.from_json(row["label"]).join(Label.of(bool(row["tainted"]))),
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
            cache_read_tokens=row["cache_read_input_tokens"] or 0,
            cache_write_tokens=row["cache_creation_input_tokens"] or 0,
            cost_usd=float(row["cost_usd"] or 0.0),
            error=row["error"],
            transcript=row["transcript"],
        )

    async def turn_messages(self, turn_id: int, trigger_id: int | None) -> list[TurnMessage]:
        """The message that started the turn and every message the turn sent, in order."""
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE turn_id = ? OR id = ? ORDER BY id",
            (turn_id, trigger_id if trigger_id is not None else -1),
        )
        return [
            TurnMessage(
                id=r["id"],
                chat_id=r["chat_id"],
                direction=r["direction"],
                text=r["text"],
                status=r["status"],
                created_at=r["created_at"],
                label=Label.from_json(r["label"]),
            )
            for r in rows
        ]

    async def turn_events(self, turn_id: int, approval_ids: list[str]) -> list[AuditEvent]:
        """Every audit event of the turn: by it, about it, or about one of its approvals."""
        ref = f"turn:{turn_id}"
        marks = ",".join("?" for _ in approval_ids) or "''"
        rows = await self._db.fetchall(
            "SELECT * FROM audit_events WHERE actor = ? OR subject = ?"
            f" OR subject IN ({marks}) OR json_extract(detail, '$.approval') IN ({marks})"
            " OR json_extract(detail, '$.turn_id') = ? ORDER BY id",
            (ref, ref, *approval_ids, *approval_ids, turn_id),
        )
        return [event_from_row(row) for row in rows]

    async def chats_of_user(self, user_id: int) -> set[int]:
        """The chats a user has written in (an approver's requests are theirs and these)."""
        rows = await self._db.fetchall(
            "SELECT DISTINCT chat_id FROM messages WHERE user_id = ? AND direction = 'in'",
            (user_id,),
        )
        return {row["chat_id"] for row in rows}

    async def recent_turns(self, limit: int = 30) -> list[TurnStory]:
        rows = await self._db.fetchall("SELECT id FROM turns ORDER BY id DESC LIMIT ?", (limit,))
        found = [await self.turn(row["id"]) for row in rows]
        return [t for t in found if t is not None]

    async def usage_by_day(self, since: datetime) -> list[DayUsage]:
        rows = await self._db.fetchall(
            "SELECT substr(started_at, 1, 10) AS day, kind, COUNT(*) AS n,"
            " SUM(input_tokens) AS i, SUM(output_tokens) AS o,"
            " SUM(cache_read_input_tokens) AS cr, SUM(cache_creation_input_tokens) AS cc,"
            " SUM(cost_usd) AS cost FROM turns WHERE started_at >= ? AND started_at <= ?"
            " GROUP BY day, kind ORDER BY day, kind",
            (iso(since), iso(self._clock.now() + CLOCK_SLACK)),
        )
        return [
            DayUsage(
                day=r["day"],
                kind=r["kind"],
                turns=r["n"],
                input_tokens=r["i"] or 0,
                output_tokens=r["o"] or 0,
                cache_read_tokens=r["cr"] or 0,
                cache_write_tokens=r["cc"] or 0,
                cost_usd=float(r["cost"] or 0.0),
            )
            for r in rows
        ]


class ModelCallLog:
    """How long each model call took: the console's latency chart."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        model: str,
        latency_ms: int,
        *,
        ok: bool,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> None:
        await self._db.execute(
            "INSERT INTO model_calls (at, model, latency_ms, ok, input_tokens, output_tokens)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (iso(self._clock.now()), model, latency_ms, int(ok), input_tokens, output_tokens),
        )

    async def since(self, since: datetime, limit: int = 2000) -> list[ModelCall]:
        rows = await self._db.fetchall(
            "SELECT at, model, latency_ms, ok FROM model_calls WHERE at >= ?"
            " ORDER BY id DESC LIMIT ?",
            (iso(since), limit),
        )
        return [
            ModelCall(parse_iso(r["at"]), r["model"], r["latency_ms"], bool(r["ok"]))
            for r in reversed(rows)
        ]

    async def latencies_by_day(self, since: datetime) -> dict[str, list[int]]:
        """Every call's latency since `since`, by UTC day (`YYYY-MM-DD`), none left out (R226:
        `since`'s 2,000 newest dropped the oldest days of the console's chart above ~143 calls
        a day). One row a day: the latencies come joined, not a row object each."""
        rows = await self._db.fetchall(
            "SELECT substr(at, 1, 10) AS day, group_concat(latency_ms) AS ms FROM model_calls"
            " WHERE at >= ? GROUP BY day ORDER BY day",
            (iso(since),),
        )
        return {r["day"]: [int(ms) for ms in str(r["ms"]).split(",")] for r in rows}


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
