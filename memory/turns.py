"""Agent turns: what ran, how it ended, and what it cost.

(Some 600 lines: the `turns` table's queries and their row types, one short method each;
the usage sums read the same rows and columns the turn log writes; ending a paused turn cuts
its prompt in the same transaction, by the plain functions at the end.)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from memory.clock import CLOCK_SLACK, Clock, iso
from memory.db import Database
from memory.labels import TRUSTED, Label
from memory.scrub import json_needle, scrub_json

__all__ = [
    "InterruptedTurn",
    "StoredTurn",
    "TokenUsage",
    "TurnLog",
    "TurnRecord",
    "TurnStatus",
    "UsageRow",
]


class TurnStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    STEP_LIMIT = "step_limit"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    AWAITING_APPROVAL = "awaiting_approval"


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
        )

    @property
    def total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_creation_input_tokens
        )


@dataclass(frozen=True)
class UsageRow:
    kind: str
    turns: int
    usage: TokenUsage
    cost_usd: float


@dataclass(frozen=True)
class InterruptedTurn:
    id: int
    chat_id: int | None
    message_id: int | None
    kind: str


@dataclass(frozen=True)
class StoredTurn:
    id: int
    kind: str
    status: str
    user_id: int | None
    chat_id: int | None
    message_id: int | None
    steps: int
    label: Label
    transcript: str | None
    paused_state: str | None


@dataclass(frozen=True)
class TurnRecord:
    """A turn as its row holds it, for looking back: how it ended, what it cost, and its
    `tainted` flag and `label` exactly as stored (not joined, unlike `StoredTurn.label`)."""

    id: int
    kind: str
    status: str
    steps: int
    tainted: bool
    label: Label
    usage: TokenUsage
    cost_usd: float
    error: str | None
    user_id: int | None
    chat_id: int | None
    message_id: int | None


def _record(row: sqlite3.Row) -> TurnRecord:
    return TurnRecord(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        steps=row["steps"],
        tainted=bool(row["tainted"]),
        label=Label.from_json(row["label"]),
        usage=TokenUsage(
            row["input_tokens"],
            row["output_tokens"],
            row["cache_read_input_tokens"],
            row["cache_creation_input_tokens"],
        ),
        cost_usd=float(row["cost_usd"]),
        error=row["error"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        message_id=row["message_id"],
    )


class TurnLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def start(
        self,
        *,
        kind: str,
        model: str,
        chat_id: int | None,
        user_id: int | None,
        message_id: int | None,
        label: Label = TRUSTED,
        run_id: int | None = None,
    ) -> int:
        return await self._db.execute(
            "INSERT INTO turns (chat_id, user_id, message_id, kind, status, model, tainted,"
            " started_at, label, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                user_id,
                message_id,
                kind,
                TurnStatus.RUNNING,
                model,
                int(label.tainted),
                iso(self._clock.now()),
                label.to_json(),
                run_id,
            ),
        )

    async def finish(
        self,
        turn_id: int,
        *,
        status: TurnStatus,
        steps: int,
        usage: TokenUsage,
        cost_usd: float,
        transcript: str | None,
        label: Label,
        error: str | None = None,
    ) -> None:
        """Record a turn's end; an ended turn keeps no paused state (the results of calls that
        ran before a pause: out of forgetting's reach, which reads transcripts)."""
        await self._write(turn_id, status, steps, usage, cost_usd, transcript, label, error, None)

    async def pause(
        self,
        turn_id: int,
        *,
        steps: int,
        usage: TokenUsage,
        cost_usd: float,
        transcript: str,
        paused_state: str,
        label: Label,
    ) -> None:
        """Park a turn that waits for approvals, with everything needed to resume it (in one
        statement: a resume never sees it waiting without the state to go on from)."""
        await self._write(
            turn_id,
            TurnStatus.AWAITING_APPROVAL,
            steps,
            usage,
            cost_usd,
            transcript,
            label,
            None,
            paused_state,
        )

    async def _write(
        self,
        turn_id: int,
        status: TurnStatus,
        steps: int,
        usage: TokenUsage,
        cost_usd: float,
        transcript: str | None,
        label: Label,
        error: str | None,
        paused_state: str | None,
    ) -> None:
        await self._db.execute(
            "UPDATE turns SET status = ?, steps = ?, input_tokens = ?, output_tokens = ?,"
            " cache_read_input_tokens = ?, cache_creation_input_tokens = ?, cost_usd = ?,"
            " transcript = ?, error = ?, finished_at = ?, tainted = ?, label = ?,"
            " paused_state = ? WHERE id = ?",
            (
                status,
                steps,
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_input_tokens,
                usage.cache_creation_input_tokens,
                cost_usd,
                transcript,
                error,
                None if paused_state is not None else iso(self._clock.now()),
                int(label.tainted),
                label.to_json(),
                paused_state,
                turn_id,
            ),
        )

    async def set_label(self, turn_id: int, label: Label) -> None:
        """Record a running turn's label as it grows, so a crash leaves what it had read."""
        await self._db.execute(
            "UPDATE turns SET tainted = ?, label = ? WHERE id = ?",
            (int(label.tainted), label.to_json(), turn_id),
        )

    async def set_usage(
        self, turn_id: int, *, steps: int, usage: TokenUsage, cost_usd: float
    ) -> None:
        """Record a running turn's steps and tokens so far, so a crash leaves what the API
        billed in /usage and the budget (R199: such a turn kept 0)."""
        await self._db.execute(
            "UPDATE turns SET steps = ?, input_tokens = ?, output_tokens = ?,"
            " cache_read_input_tokens = ?, cache_creation_input_tokens = ?, cost_usd = ?"
            " WHERE id = ?",
            (
                steps,
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_input_tokens,
                usage.cache_creation_input_tokens,
                cost_usd,
                turn_id,
            ),
        )

    async def set_status(self, turn_id: int, status: TurnStatus, *, label: Label) -> None:
        await self._db.execute(
            "UPDATE turns SET status = ?, tainted = ?, label = ? WHERE id = ?",
            (status, int(label.tainted), label.to_json(), turn_id),
        )

    async def end_paused(self, turn_id: int, status: TurnStatus, *, label: Label) -> None:
        """End a paused turn that will not be resumed (its request expired or was withdrawn,
        its person revoked, a restart): it keeps what a finished turn keeps, what came after
        its prompt. The prompt (history, context, the trigger) was stored for resuming only;
        left in, forgetting (`scrub_transcripts`) never reached its words (R256)."""
        now = iso(self._clock.now())
        await self._db.atomic(_end_paused, turn_id, status, label.to_json(), label.tainted, now)

    async def claim_paused(
        self, turn_id: int, *, label: Label, seen: StoredTurn | None = None
    ) -> bool:
        """A paused turn set running by this caller only: two resumes at once cannot both
        continue it. With `seen`, only while it still holds the transcript and paused state
        read there (a forgetting since scrubbed them: read again, or they come back)."""
        sql = "UPDATE turns SET status = ?, tainted = ?, label = ? WHERE id = ? AND status = ?"
        params: tuple[object, ...] = (
            TurnStatus.RUNNING,
            int(label.tainted),
            label.to_json(),
            turn_id,
            TurnStatus.AWAITING_APPROVAL,
        )
        if seen is not None:
            sql += " AND transcript IS ? AND paused_state IS ?"
            params += (seen.transcript, seen.paused_state)
        return await self._db.execute(sql, params) == 1

    async def stored(self, turn_id: int) -> StoredTurn | None:
        """A turn as stored: what resuming a paused turn starts from."""
        row = await self._db.fetchone("SELECT * FROM turns WHERE id = ?", (turn_id,))
        if row is None:
            return None
        return StoredTurn(
            id=row["id"],
            kind=row["kind"],
            status=row["status"],
            user_id=row["user_id"],
            chat_id=row["chat_id"],
            message_id=row["message_id"],
            steps=row["steps"],
            label=Label.from_json(row["label"]).join(Label.of(bool(row["tainted"]))),
            transcript=row["transcript"],
            paused_state=row["paused_state"],
        )

    async def label_of(self, turn_id: int) -> Label:
        """The label a turn ended (or paused) with: trusted only if it held nothing from outside."""
        row = await self._db.fetchone("SELECT label FROM turns WHERE id = ?", (turn_id,))
        return Label.from_json(row["label"]) if row else TRUSTED

    async def span_label(self, chat_id: int, first_message_id: int, last_message_id: int) -> Label:
        """The join of the labels of the turns that answered these messages of a chat."""
        rows = await self._db.fetchall(
            "SELECT label FROM turns WHERE chat_id = ? AND message_id BETWEEN ? AND ?"
            " AND label != '[]'",
            (chat_id, first_message_id, last_message_id),
        )
        return TRUSTED.join(*(Label.from_json(r["label"]) for r in rows))

    async def paused(self) -> list[int]:
        """The turns waiting on approvals, oldest first."""
        rows = await self._db.fetchall(
            "SELECT id FROM turns WHERE status = ? ORDER BY id", (TurnStatus.AWAITING_APPROVAL,)
        )
        return [int(r["id"]) for r in rows]

    async def interrupt_running(self) -> list[InterruptedTurn]:
        """Mark turns a crash left `running` as interrupted; returns them. One resumed after
        an approval still holds its paused transcript: it keeps only what came after the
        prompt, as if it had finished (R256). Run at start: an ended turn keeps no paused
        state (the results of the calls that ran before its pause), whichever version ended it."""
        rows = await self._db.atomic(_interrupt_running, iso(self._clock.now()))
        return [InterruptedTurn(*row) for row in rows]

    async def record(self, turn_id: int) -> TurnRecord | None:
        """One turn as stored (None: no such turn)."""
        row = await self._db.fetchone("SELECT * FROM turns WHERE id = ?", (turn_id,))
        return _record(row) if row else None

    async def recent(self, limit: int = 100, *, kind: str | None = None) -> list[TurnRecord]:
        """The latest `limit` turns (of one `kind`), oldest first."""
        if kind is None:
            rows = await self._db.fetchall("SELECT * FROM turns ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM turns WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit)
            )
        return [_record(row) for row in reversed(rows)]

    async def count(self, kind: str | None = None) -> int:
        """How many turns are on record (of one `kind`)."""
        if kind is None:
            return int(await self._db.scalar("SELECT COUNT(*) FROM turns"))
        return int(await self._db.scalar("SELECT COUNT(*) FROM turns WHERE kind = ?", (kind,)))

    async def triggers(self, turn_ids: Iterable[int]) -> dict[int, int]:
        """The message each of these turns answered (turns of no message left out)."""
        ids = sorted(set(turn_ids))
        if not ids:
            return {}
        rows = await self._db.fetchall(
            f"SELECT id, message_id FROM turns WHERE id IN ({','.join('?' * len(ids))})"
            " AND message_id IS NOT NULL",
            ids,
        )
        return {row["id"]: row["message_id"] for row in rows}

    async def of_message(self, message_id: int) -> TurnRecord | None:
        """The latest turn a message set off (None: none did)."""
        row = await self._db.fetchone(
            "SELECT * FROM turns WHERE message_id = ? ORDER BY id DESC LIMIT 1", (message_id,)
        )
        return _record(row) if row else None

    async def forget_transcript(self, turn_id: int) -> None:
        """Drop a finished turn's transcript (the owner forgot what it held); its usage stays.
        A turn waiting for an approval keeps it: it is how the turn goes on."""
        await self._db.execute(
            "UPDATE turns SET transcript = NULL WHERE id = ? AND status != ?",
            (turn_id, TurnStatus.AWAITING_APPROVAL),
        )

    async def scrub_transcripts(
        self,
        user_id: int,
        text: str,
        placeholder: str,
        *,
        side_calls: bool,
        waiting_only: bool = False,
    ) -> int:
        """Take forgotten words out of the stored transcripts of a person's turns: tool results
        that quoted them (a later search) and, with `side_calls`, the answers of memory side
        calls (the one that drew a fact); what the model said and asked tools to do stays as
        it was (R98: a person forgetting cannot rewrite the record of an approved action). How
        many changed. A turn waiting for an approval loses them from its tool results too, those
        of its paused state included: resumed, it wrote them back into its transcript after the
        forgetting (review 35), and from its prompt, the history it is sent again when it
        resumes (its calls after the prompt stay as they were). Read and
        written in one transaction: a turn resumed and ended in between got its old transcript
        and its paused state back."""
        return await self._db.atomic(
            _scrub_turns,
            user_id,
            text,
            placeholder,
            side_calls,
            TurnStatus.AWAITING_APPROVAL,
            waiting_only,
        )

    async def status_of(self, turn_id: int) -> str | None:
        return await self._db.scalar("SELECT status FROM turns WHERE id = ?", (turn_id,))

    async def cost_of(self, turn_id: int) -> float:
        """What one turn's model calls cost, in USD (0 when it is not on record)."""
        cost = await self._db.scalar("SELECT cost_usd FROM turns WHERE id = ?", (turn_id,))
        return float(cost or 0.0)

    def _until(self) -> str:
        """The latest `started_at` a sum from `since` takes in: now, and a little slack."""
        return iso(self._clock.now() + CLOCK_SLACK)

    async def usage_since(self, since: datetime) -> list[UsageRow]:
        rows = await self._db.fetchall(
            "SELECT kind, COUNT(*) AS n, SUM(input_tokens) AS i, SUM(output_tokens) AS o,"
            " SUM(cache_read_input_tokens) AS cr, SUM(cache_creation_input_tokens) AS cc,"
            " SUM(cost_usd) AS cost FROM turns WHERE started_at >= ? AND started_at <= ?"
            " GROUP BY kind ORDER BY kind",
            (iso(since), self._until()),
        )
        return [
            UsageRow(
                kind=r["kind"],
                turns=r["n"],
                usage=TokenUsage(r["i"] or 0, r["o"] or 0, r["cr"] or 0, r["cc"] or 0),
                cost_usd=float(r["cost"] or 0.0),
            )
            for r in rows
        ]

    async def tokens_since(self, since: datetime) -> int:
        rows = await self.usage_since(since)
        return sum(row.usage.total for row in rows)

    async def budget_tokens_since(self, since: datetime) -> int:
        """What counts against the daily budget: every turn but other people's (their
        conversations, and the check-ins and tasks they set up), which their own allowance
        bounds (`guest_tokens_since`), and summaries of comments anyone may write, which have
        a share of their own (`kind_tokens_since`)."""
        return int(
            await self._db.scalar(
                f"SELECT COALESCE(SUM({_TOTAL}), 0) FROM turns"
                " WHERE started_at >= ? AND started_at <= ? AND kind != 'comments'"
                " AND NOT EXISTS"  # a turn of no one is the owner's
                " (SELECT 1 FROM users u WHERE u.id = turns.user_id AND u.is_owner = 0)",
                (iso(since), self._until()),
            )
        )

    async def kind_tokens_since(self, kind: str, since: datetime) -> int:
        """The tokens of one kind of turn since `since`, whoever's."""
        return int(
            await self._db.scalar(
                f"SELECT COALESCE(SUM({_TOTAL}), 0) FROM turns WHERE kind = ? AND started_at >= ?"
                " AND started_at <= ?",
                (kind, iso(since), self._until()),
            )
        )

    async def guest_tokens_since(self, user_id: int, since: datetime) -> int:
        """One person's turns with Steward since `since`, in tokens: their conversation, what
        remembering them cost (the memory side calls are recorded under them), the turns
        resumed after an approval, and the check-ins and reminders they set up."""
        return int(
            await self._db.scalar(
                f"SELECT COALESCE(SUM({_TOTAL}), 0) FROM turns"
                " WHERE user_id = ? AND started_at >= ? AND started_at <= ?",
                (user_id, iso(since), self._until()),
            )
        )


_TOTAL = (
    "COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0)"
    " + COALESCE(cache_read_input_tokens, 0) + COALESCE(cache_creation_input_tokens, 0)"
)


_HOLDS_PROMPT = (TurnStatus.AWAITING_APPROVAL, TurnStatus.RUNNING)
"""The states in which a turn's stored transcript may still be the whole one it paused with."""


def _after_prompt(transcript: str | None, paused_state: str | None) -> str | None:
    """A paused turn's stored transcript (a JSON list of messages) without its prompt, the
    first `prompt` messages its paused state (agent/transcript.py `PausedState`) counts: what
    `after_prompt` keeps once a resumed turn finishes. Unreadable, nothing is kept rather
    than the prompt."""
    if transcript is None or paused_state is None:
        return transcript  # never paused: a running turn stores no transcript until it ends
    try:
        state = json.loads(paused_state)
        messages = json.loads(transcript)
        prompt = int(state.get("prompt", 0)) if isinstance(state, dict) else 0
    except (ValueError, TypeError):
        return None
    if not isinstance(messages, list):
        return None
    return json.dumps(messages[max(prompt, 0) :], ensure_ascii=False)


def _ended_transcript(conn: sqlite3.Connection, turn_id: int) -> str | None:
    """Inside the caller's transaction: the transcript a turn keeps as it ends unfinished.
    Paused, or resumed and not finished (`finish` and `pause` write it anew), it still holds
    its prompt, cut off here; any other keeps what it has."""
    row = conn.execute(
        "SELECT status, transcript, paused_state FROM turns WHERE id = ?", (turn_id,)
    ).fetchone()
    if row is None:
        return None
    status, transcript, paused_state = row[0], row[1], row[2]
    return _after_prompt(transcript, paused_state) if status in _HOLDS_PROMPT else transcript


def _end_paused(
    conn: sqlite3.Connection, turn_id: int, status: str, label: str, tainted: bool, now: str
) -> None:
    conn.execute(
        "UPDATE turns SET status = ?, tainted = ?, label = ?, transcript = ?,"
        " finished_at = COALESCE(finished_at, ?), paused_state = NULL WHERE id = ?",
        (status, int(tainted), label, _ended_transcript(conn, turn_id), now, turn_id),
    )


def _interrupt_running(
    conn: sqlite3.Connection, now: str
) -> list[tuple[int, int | None, int | None, str]]:
    rows = conn.execute(
        "SELECT id, chat_id, message_id, kind FROM turns WHERE status = ? ORDER BY id",
        (TurnStatus.RUNNING,),
    ).fetchall()
    for row in rows:
        conn.execute(
            "UPDATE turns SET status = ?, finished_at = ?, error = 'process stopped mid-turn',"
            " transcript = ?, paused_state = NULL WHERE id = ?",
            (TurnStatus.INTERRUPTED, now, _ended_transcript(conn, row[0]), row[0]),
        )
    return [(int(r[0]), r[1], r[2], str(r[3])) for r in rows]


def _scrub_turns(
    conn: sqlite3.Connection,
    user_id: int,
    text: str,
    placeholder: str,
    side_calls: bool,
    waiting_status: str,
    waiting_only: bool = False,
) -> int:
    """Inside the caller's transaction: `TurnLog.scrub_transcripts` (`waiting_only`: the turns
    waiting for an approval alone, whose prompts are sent again)."""
    needle = json_needle(text)
    rows = conn.execute(
        "SELECT id, kind, status, transcript, paused_state FROM turns WHERE user_id = ?"
        " AND (? = 0 OR status = ?) AND (instr(transcript, ?) > 0 OR instr(paused_state, ?) > 0)",
        (user_id, int(waiting_only), waiting_status, needle, needle),
    ).fetchall()
    changed = 0
    for turn_id, kind, status, transcript, paused_state in rows:
        side = kind == "memory"
        if side and not side_calls:
            continue
        waiting = status == waiting_status
        scrubbed = (
            scrub_json(
                transcript,
                text,
                placeholder,
                results_only=not side or waiting,
                whole_head=_prompt_length(paused_state) if waiting else 0,
            )
            if transcript
            else None
        )
        state = (
            scrub_json(paused_state, text, placeholder, results_only=True)
            if waiting and paused_state
            else None
        )
        if scrubbed is not None or state is not None:
            changed += conn.execute(
                "UPDATE turns SET transcript = COALESCE(?, transcript),"
                " paused_state = COALESCE(?, paused_state) WHERE id = ?",
                (scrubbed, state, turn_id),
            ).rowcount
    return changed


def _prompt_length(paused_state: str | None) -> int:
    """How many messages of a waiting turn's transcript are its prompt (the history it was
    asked with, sent again when it resumes): a forgetting takes the words from all of them."""
    try:
        state = json.loads(paused_state or "{}")
    except ValueError:
        return 0
    prompt = state.get("prompt") if isinstance(state, dict) else None
    return prompt if isinstance(prompt, int) and prompt > 0 else 0
