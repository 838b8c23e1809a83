"""Scheduled jobs (reminders, tasks, briefings, goal check-ins), their runs, and quiet hours.

SQLite is the source of truth: a schedule row holds its trigger, its next run, the user it
belongs to, where it posts and whether the turn that made it held untrusted content. Firing a job
is two transactions around the sending: `claim()` marks the schedule `firing` and opens a run;
`finish()` records what was sent and, for a one-shot job, marks it `done` in the same
transaction. A crash in between leaves the run `firing` for the next start-up to settle.

(Over 400 lines: schedules and their runs are one store; `claim()`, `finish()` and
`interrupt()` each change both tables in one transaction.)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from memory.clock import Clock, iso, parse_iso
from memory.db import Database
from memory.labels import TRUSTED, Label

__all__ = [
    "BUDGET_SPENT",
    "QuietWindow",
    "RunStatus",
    "Schedule",
    "ScheduleRun",
    "ScheduleStatus",
    "ScheduleStore",
]


BUDGET_SPENT = "today's token budget is spent"
"""What the reason of a run the daily token budget skipped says (agent/scheduler/jobs.py
`agent_turn`): the budget's notice and /usage find those runs by it (R209)."""


class ScheduleStatus(StrEnum):
    ACTIVE = "active"
    FIRING = "firing"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class RunStatus(StrEnum):
    FIRING = "firing"
    SENT = "sent"
    SILENT = "silent"
    SKIPPED = "skipped"
    WAITING = "waiting"  # its turn asks the owner to approve an action first
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Schedule:
    id: int
    user_id: int
    chat_id: int | None
    kind: str
    trigger: dict[str, Any]
    payload: dict[str, Any]
    status: ScheduleStatus
    next_run_at: datetime | None
    tainted: bool
    destination: dict[str, Any] | None
    created_at: datetime
    last_run_at: datetime | None = None
    label: Label = TRUSTED

    @property
    def recurring(self) -> bool:
        return self.trigger.get("type") != "once"


@dataclass(frozen=True)
class ScheduleRun:
    id: int
    schedule_id: int
    kind: str
    due_at: datetime
    started_at: datetime
    status: RunStatus
    reason: str = ""
    late_seconds: int = 0
    text: str | None = None
    turn_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QuietWindow:
    """Local wall-clock times "HH:MM"; `start > end` wraps past midnight."""

    start: str
    end: str


def _dt(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def _schedule(row: sqlite3.Row) -> Schedule:
    return Schedule(
        id=row["id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        kind=row["kind"],
        trigger=json.loads(row["trigger"]),
        payload=json.loads(row["payload"] or "{}"),
        status=ScheduleStatus(row["status"]),
        next_run_at=_dt(row["next_run_at"]),
        tainted=bool(row["tainted"]),
        destination=json.loads(row["destination"]) if row["destination"] else None,
        created_at=parse_iso(row["created_at"]),
        last_run_at=_dt(row["last_run_at"]),
        label=Label.of(bool(row["tainted"]), Label.from_json(row["label"]).sources),
    )


def _run(row: sqlite3.Row) -> ScheduleRun:
    return ScheduleRun(
        id=row["id"],
        schedule_id=row["schedule_id"],
        kind=row["kind"],
        due_at=parse_iso(row["due_at"]),
        started_at=parse_iso(row["started_at"]),
        status=RunStatus(row["status"]),
        reason=row["reason"],
        late_seconds=row["late_seconds"],
        text=row["text"],
        turn_id=row["turn_id"],
        detail=json.loads(row["detail"] or "{}"),
    )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class ScheduleStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # -- schedules ---------------------------------------------------------------------------

    async def add(
        self,
        *,
        user_id: int,
        chat_id: int | None,
        kind: str,
        trigger: dict[str, Any],
        payload: dict[str, Any],
        next_run_at: datetime,
        destination: dict[str, Any] | None,
        tainted: bool = False,
        sources: tuple[str, ...] = (),
        made_in_turn: int | None = None,
    ) -> Schedule:
        """`tainted`/`sources`: the label of the turn that made it; a tainted job's turns are
        tainted when they fire. `made_in_turn`: the turn whose tool call made it."""
        now = iso(self._clock.now())
        label = Label.of(tainted, sources)  # the flag the jobs read says what the label says
        schedule_id = await self._db.execute(
            'INSERT INTO schedules (user_id, chat_id, kind, "trigger", payload, status,'
            " next_run_at, tainted, destination, created_at, updated_at, label, made_in_turn)"
            " VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?)",
            (
                user_id,
                chat_id,
                kind,
                _json(trigger),
                _json(payload),
                iso(next_run_at),
                int(label.tainted),
                _json(destination) if destination is not None else None,
                now,
                now,
                label.to_json(),
                made_in_turn,
            ),
        )
        schedule = await self.get(schedule_id)
        assert schedule is not None
        return schedule

    async def get(self, schedule_id: int) -> Schedule | None:
        row = await self._db.fetchone("SELECT * FROM schedules WHERE id = ?", (schedule_id,))
        return _schedule(row) if row else None

    async def for_user(
        self, user_id: int, kinds: tuple[str, ...], *, statuses: tuple[str, ...] = ("active",)
    ) -> list[Schedule]:
        rows = await self._db.fetchall(
            f"SELECT * FROM schedules WHERE user_id = ?"
            f" AND kind IN ({','.join('?' * len(kinds))})"
            f" AND status IN ({','.join('?' * len(statuses))}) ORDER BY next_run_at, id",
            (user_id, *kinds, *statuses),
        )
        return [_schedule(row) for row in rows]

    async def count_active(self, user_id: int | None = None) -> int:
        if user_id is None:
            sql, params = "SELECT COUNT(*) FROM schedules WHERE status = 'active'", ()
        else:
            sql = "SELECT COUNT(*) FROM schedules WHERE status = 'active' AND user_id = ?"
            params = (user_id,)
        return int(await self._db.scalar(sql, params))

    async def count_made_since(
        self, user_id: int, kind: str, since: datetime, until: datetime
    ) -> int:
        """How many schedules of a kind were made for a user between `since` and `until`
        (whatever became of them). Bounded above: after the clock is set back, the ones
        stamped "later" are not this window's (R224)."""
        return int(
            await self._db.scalar(
                "SELECT COUNT(*) FROM schedules WHERE user_id = ? AND kind = ?"
                " AND created_at >= ? AND created_at <= ?",
                (user_id, kind, iso(since), iso(until)),
            )
        )

    async def find(self, user_id: int, kind: str, **payload: Any) -> Schedule | None:
        """The active (or firing) schedule of a kind whose payload has these values."""
        for schedule in await self.for_user(user_id, (kind,), statuses=("active", "firing")):
            if all(schedule.payload.get(k) == v for k, v in payload.items()):
                return schedule
        return None

    async def elapsed_waiting(self, after: datetime) -> list[Schedule]:
        """One-shot schedules said as time to wait ("in 5 minutes"), still to come after
        `after`."""
        rows = await self._db.fetchall(
            "SELECT * FROM schedules WHERE status = 'active' AND next_run_at > ?"
            " AND json_extract(\"trigger\", '$.type') = 'once'"
            " AND json_extract(\"trigger\", '$.elapsed') = 1 ORDER BY id",
            (iso(after),),
        )
        return [_schedule(row) for row in rows]

    async def repeating_after(self, after: datetime) -> list[Schedule]:
        """Active repeating schedules whose next run is later than `after`: those a clock set
        back may have left far ahead (R240)."""
        rows = await self._db.fetchall(
            "SELECT * FROM schedules WHERE status = 'active' AND next_run_at > ?"
            " AND json_extract(\"trigger\", '$.type') IS NOT 'once' ORDER BY id",
            (iso(after),),
        )
        return [_schedule(row) for row in rows]

    async def due(self, now: datetime) -> list[Schedule]:
        rows = await self._db.fetchall(
            "SELECT * FROM schedules WHERE status = 'active' AND next_run_at IS NOT NULL"
            " AND next_run_at <= ? ORDER BY next_run_at, id",
            (iso(now),),
        )
        return [_schedule(row) for row in rows]

    async def checkins_sent_since(
        self, user_id: int, since: datetime, until: datetime, *, besides: int
    ) -> int:
        """How many check-ins (of repeating schedules) went, or are going, to a user between
        `since` and `until`, the run `besides` left out: at most a few a day go out (R232: 25
        daily goals were 25 messages every morning). Runs under way count (R234: alarms a
        minute apart each fired while the one before waited on the model: six went, not
        three); bounded above, as a clock set back stamps earlier runs "later"."""
        return int(
            await self._db.scalar(
                "SELECT COUNT(*) FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id"
                " WHERE s.user_id = ? AND s.kind = 'checkin'"
                " AND r.status IN ('sent', 'waiting', 'firing') AND r.id != ?"
                " AND json_extract(s.trigger, '$.type') != 'once'"
                " AND r.started_at >= ? AND r.started_at <= ?",
                (user_id, besides, iso(since), iso(until)),
            )
        )

    async def next_run_time(
        self, *, after: datetime | None = None, exclude: Collection[int] = ()
    ) -> datetime | None:
        """The earliest next run of an active schedule (later than `after`, if given), leaving
        out the schedules in `exclude` (those a run in progress already holds)."""
        sql = "SELECT MIN(next_run_at) FROM schedules WHERE status = 'active'"
        sql += " AND next_run_at > ?" if after else " AND next_run_at IS NOT NULL"
        params: list[Any] = [iso(after)] if after else []
        if exclude:
            sql += f" AND id NOT IN ({', '.join('?' * len(exclude))})"
            params += sorted(exclude)
        value = await self._db.scalar(sql, tuple(params))
        return parse_iso(value) if value else None

    async def update(
        self,
        schedule_id: int,
        *,
        trigger: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
        next_run_at: datetime | None = None,
        destination: dict[str, Any] | None = None,
        chat_id: int | None = None,
    ) -> None:
        sets: list[str] = []
        params: list[Any] = []
        for column, value in (
            ('"trigger"', None if trigger is None else _json(trigger)),
            ("payload", None if payload is None else _json(payload)),
            ("next_run_at", None if next_run_at is None else iso(next_run_at)),
            ("destination", None if destination is None else _json(destination)),
            ("chat_id", chat_id),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        if not sets:
            return
        sets.append("updated_at = ?")
        params.append(iso(self._clock.now()))
        await self._db.execute(
            f"UPDATE schedules SET {', '.join(sets)} WHERE id = ?", (*params, schedule_id)
        )

    async def move(self, schedule_id: int, *, was: datetime, to: datetime) -> bool:
        """Set an active schedule's next run to `to` if it is still `was` (not run, changed or
        cancelled meanwhile)."""
        changed = await self._db.execute(
            "UPDATE schedules SET next_run_at = ?, updated_at = ?"
            " WHERE id = ? AND status = 'active' AND next_run_at = ?",
            (iso(to), iso(self._clock.now()), schedule_id, iso(was)),
        )
        return changed == 1

    async def update_if_active(self, schedule_id: int, *, payload: dict[str, Any]) -> bool:
        """Change a schedule's payload only while it waits (not once it is firing)."""
        changed = await self._db.execute(
            "UPDATE schedules SET payload = ?, updated_at = ? WHERE id = ? AND status = 'active'",
            (_json(payload), iso(self._clock.now()), schedule_id),
        )
        return changed == 1

    async def cancel(self, schedule_id: int) -> bool:
        """Cancel an active schedule; False when it was not active."""
        count = await self._db.execute(
            "UPDATE schedules SET status = 'cancelled', updated_at = ?"
            " WHERE id = ? AND status IN ('active', 'firing')",
            (iso(self._clock.now()), schedule_id),
        )
        return count > 0

    async def made_in(self, user_id: int, turn_ids: Collection[int]) -> list[Schedule]:
        """A person's reminders and tasks these turns' tool calls made, whatever their status."""
        if not turn_ids:
            return []
        marks = ", ".join("?" * len(turn_ids))
        rows = await self._db.fetchall(
            f"SELECT * FROM schedules WHERE user_id = ? AND made_in_turn IN ({marks})"
            " AND kind IN ('reminder', 'task') ORDER BY id",
            (user_id, *sorted(turn_ids)),
        )
        return [_schedule(row) for row in rows]

    async def forget_made_in(
        self, user_id: int, turn_ids: Collection[int], placeholder: str
    ) -> list[Schedule] | None:
        """The reminders and tasks a person's forgotten exchanges set (`made_in_turn`): each
        loses its words (theirs, in the model's wording), those of its runs too, and one still
        to come is cancelled (review 36: it sent them again). Those, as they were; None, with
        nothing changed, when one of them is firing now (its run holds the words)."""
        if not turn_ids:
            return []
        return await self._db.atomic(
            _forget_made_in, user_id, sorted(turn_ids), placeholder, iso(self._clock.now())
        )

    async def run_turns(self, schedule_ids: Sequence[int]) -> list[int]:
        """The turns these schedules' runs took (a task's), oldest first."""
        if not schedule_ids:
            return []
        marks = ", ".join("?" * len(schedule_ids))
        rows = await self._db.fetchall(
            f"SELECT turn_id FROM schedule_runs WHERE schedule_id IN ({marks})"
            " AND turn_id IS NOT NULL ORDER BY id",
            tuple(schedule_ids),
        )
        return [int(row["turn_id"]) for row in rows]

    async def cancel_for_user(self, user_id: int) -> int:
        """Cancel every active schedule of a user (revoked); how many."""
        return await self._db.execute(
            "UPDATE schedules SET status = 'cancelled', updated_at = ?"
            " WHERE user_id = ? AND status IN ('active', 'firing')",
            (iso(self._clock.now()), user_id),
        )

    # -- runs --------------------------------------------------------------------------------

    async def claim(
        self,
        schedule: Schedule,
        *,
        late_seconds: int,
        text: str | None = None,
        due_at: datetime | None = None,
    ) -> int | None:
        """Take a due schedule for one run; None when someone else already took it. The run is
        due at `due_at` (the occurrence it answers; a try again's, the failed run's), else at
        `next_run_at`."""
        assert schedule.next_run_at is not None
        now = iso(self._clock.now())
        async with self._db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE schedules SET status = 'firing', updated_at = ?"
                " WHERE id = ? AND status = 'active' AND next_run_at = ?",
                (now, schedule.id, iso(schedule.next_run_at)),
            )
            if cursor.rowcount != 1:
                return None
            cursor = await tx.execute(
                "INSERT INTO schedule_runs (schedule_id, kind, due_at, started_at, status,"
                " late_seconds, text) VALUES (?, ?, ?, ?, 'firing', ?, ?)",
                (
                    schedule.id,
                    schedule.kind,
                    iso(due_at or schedule.next_run_at),
                    now,
                    late_seconds,
                    text,
                ),
            )
            return int(cursor.lastrowid or 0)

    async def set_run_text(self, run_id: int, text: str) -> None:
        await self._db.execute("UPDATE schedule_runs SET text = ? WHERE id = ?", (text, run_id))

    async def finish(
        self,
        run_id: int,
        schedule_id: int,
        *,
        status: RunStatus,
        reason: str = "",
        turn_id: int | None = None,
        detail: dict[str, Any] | None = None,
        next_run_at: datetime | None = None,
        schedule_status: ScheduleStatus | None = None,
    ) -> None:
        """Record how a run ended and, in the same transaction, what becomes of its schedule:
        the next run of a recurring job, or `done` for a one-shot one."""
        now = iso(self._clock.now())
        if schedule_status is None:
            schedule_status = ScheduleStatus.ACTIVE if next_run_at else ScheduleStatus.DONE
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE schedule_runs SET status = ?, reason = ?, turn_id = ?, detail = ?,"
                " finished_at = ? WHERE id = ?",
                (status, reason, turn_id, _json(detail or {}), now, run_id),
            )
            await tx.execute(
                "UPDATE schedules SET status = CASE WHEN status = 'cancelled' THEN status"
                " ELSE ? END, next_run_at = ?, last_run_at = ?, updated_at = ? WHERE id = ?",
                (
                    schedule_status,
                    iso(next_run_at) if next_run_at else None,
                    now,
                    now,
                    schedule_id,
                ),
            )

    async def record_skip(
        self,
        schedule: Schedule,
        *,
        reason: str,
        late_seconds: int,
        next_run_at: datetime | None,
        detail: dict[str, Any] | None = None,
    ) -> int | None:
        """A run that is decided without doing anything (missed, nothing due): one claim and
        one finish, so it is on record like any other run."""
        run_id = await self.claim(schedule, late_seconds=late_seconds)
        if run_id is None:
            return None
        await self.finish(
            run_id,
            schedule.id,
            status=RunStatus.SKIPPED,
            reason=reason,
            detail=detail,
            next_run_at=next_run_at,
        )
        return run_id

    async def firing_runs(self) -> list[ScheduleRun]:
        rows = await self._db.fetchall(
            "SELECT * FROM schedule_runs WHERE status = 'firing' ORDER BY id"
        )
        return [_run(row) for row in rows]

    async def interrupt(self, run: ScheduleRun, *, due_again_at: datetime) -> None:
        """A run a crash cut short before it sent anything: close it, and make its schedule due
        again at the time it was missed (the next run treats it as late)."""
        now = iso(self._clock.now())
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE schedule_runs SET status = 'interrupted', finished_at = ?,"
                " reason = 'process stopped mid-run' WHERE id = ?",
                (now, run.id),
            )
            await tx.execute(
                "UPDATE schedules SET status = CASE WHEN status = 'firing' THEN 'active'"
                " ELSE status END, next_run_at = ?, updated_at = ? WHERE id = ?",
                (iso(due_again_at), now, run.schedule_id),
            )

    async def runs(self, schedule_id: int | None = None, *, limit: int = 100) -> list[ScheduleRun]:
        if schedule_id is None:
            rows = await self._db.fetchall(
                "SELECT * FROM schedule_runs ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM schedule_runs WHERE schedule_id = ? ORDER BY id DESC LIMIT ?",
                (schedule_id, limit),
            )
        return [_run(row) for row in reversed(rows)]

    async def last_runs(
        self, schedule_id: int, statuses: tuple[str, ...], limit: int
    ) -> list[ScheduleRun]:
        """The newest `limit` runs of a schedule that ended so, oldest first."""
        rows = await self._db.fetchall(
            f"SELECT * FROM schedule_runs WHERE schedule_id = ?"
            f" AND status IN ({','.join('?' * len(statuses))}) ORDER BY id DESC LIMIT ?",
            (schedule_id, *statuses, limit),
        )
        return [_run(row) for row in reversed(rows)]

    async def last_goal_checkins(
        self, goal_id: int, statuses: tuple[str, ...], limit: int
    ) -> list[ScheduleRun]:
        """The newest `limit` runs that ended so of every check-in schedule a goal has had
        (its cadence's, each due date's), oldest first: a due date's check-in is a new
        schedule whenever the date or the time zone changes (R176: two in a day)."""
        rows = await self._db.fetchall(
            "SELECT r.* FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id"
            " WHERE s.kind = 'checkin' AND json_extract(s.payload, '$.goal_id') = ?"
            f" AND r.status IN ({','.join('?' * len(statuses))}) ORDER BY r.id DESC LIMIT ?",
            (goal_id, *statuses, limit),
        )
        return [_run(row) for row in reversed(rows)]

    async def last_checkins(self, goal_ids: Collection[int]) -> dict[int, str]:
        """When each goal's last check-in turn ran (any of its check-in schedules; stored
        time, so text order is time order); a goal never checked in on is left out. Due
        check-ins are run least recently checked-in first (R209: in id order, under a tight
        budget goals 1-23 got one every day and goals 24-40 never)."""
        if not goal_ids:
            return {}
        marks = ",".join("?" * len(goal_ids))
        rows = await self._db.fetchall(
            "SELECT json_extract(s.payload, '$.goal_id') AS goal, MAX(r.started_at) AS last"
            " FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id"
            " WHERE s.kind = 'checkin' AND r.status IN ('sent', 'silent', 'waiting')"
            f" AND json_extract(s.payload, '$.goal_id') IN ({marks}) GROUP BY goal",
            tuple(goal_ids),
        )
        return {int(row["goal"]): str(row["last"]) for row in rows}

    async def budget_skips(
        self, since: datetime, until: datetime | None = None
    ) -> list[ScheduleRun]:
        """The runs the daily token budget skipped that started in [since, until), oldest
        first: what the budget's notice and /usage name (R209: the owner never learnt their
        briefing was skipped five days running)."""
        sql = "SELECT * FROM schedule_runs WHERE status = 'skipped' AND reason LIKE ?"
        sql += " AND started_at >= ?" + (" AND started_at < ?" if until else "")
        params = [f"%{BUDGET_SPENT}%", iso(since)] + ([iso(until)] if until else [])
        rows = await self._db.fetchall(sql + " ORDER BY id", tuple(params))
        return [_run(row) for row in rows]

    async def run_of(self, run_id: int) -> tuple[ScheduleRun, Schedule] | None:
        """A run and its schedule, by the run's id (a job's turn knows only that)."""
        row = await self._db.fetchone("SELECT * FROM schedule_runs WHERE id = ?", (run_id,))
        if row is None:
            return None
        schedule = await self.get(int(row["schedule_id"]))
        return (_run(row), schedule) if schedule is not None else None

    async def last_run(self, schedule_id: int, statuses: tuple[str, ...]) -> ScheduleRun | None:
        row = await self._db.fetchone(
            f"SELECT * FROM schedule_runs WHERE schedule_id = ?"
            f" AND status IN ({','.join('?' * len(statuses))}) ORDER BY id DESC LIMIT 1",
            (schedule_id, *statuses),
        )
        return _run(row) if row else None

    async def sent_message_since(self, chat_id: int, since: datetime, text: str) -> int | None:
        """An outgoing message with exactly this text stored in the chat since `since`."""
        return await self._db.scalar(
            "SELECT id FROM messages WHERE chat_id = ? AND direction = 'out' AND created_at >= ?"
            " AND text = ? ORDER BY id LIMIT 1",
            (chat_id, iso(since), text),
        )

    async def turn_message_since(self, chat_id: int, kind: str, since: datetime) -> int | None:
        """An outgoing message of a turn of `kind` started in the chat since `since` that did
        not fail (a failed task's notice is sent with its turn, and says it did not run)."""
        return await self._db.scalar(
            "SELECT messages.id FROM messages JOIN turns ON turns.id = messages.turn_id"
            " WHERE messages.chat_id = ? AND messages.direction = 'out' AND turns.kind = ?"
            " AND turns.started_at >= ? AND turns.status != 'failed'"  # its notice is no run's
            " ORDER BY messages.id LIMIT 1",
            (chat_id, kind, iso(since)),
        )

    async def run_turn_acted(self, run: ScheduleRun, chat_id: int) -> int | None:
        """The run's own turn, if it had asked for a tool that changes something and was not
        refused (it ran, or waits for approval): a run cut short after it began to act.
        Reading alone is safe to repeat. A turn from before its run was recorded on it
        (migration 0013) is found as before, by chat, kind and time."""
        acted = (
            " AND EXISTS (SELECT 1 FROM audit_events WHERE audit_events.actor = 'turn:' ||"
            " turns.id AND audit_events.kind = 'tool.requested' AND"
            " json_extract(audit_events.detail, '$.risk') IS NOT 'read' AND"
            " json_extract(audit_events.detail, '$.decision') IS NOT 'deny')"
        )
        found = await self._db.scalar(
            f"SELECT turns.id FROM turns WHERE turns.run_id = ?{acted} ORDER BY turns.id LIMIT 1",
            (run.id,),
        )
        if found is not None:
            return int(found)
        if await self._db.scalar("SELECT 1 FROM turns WHERE run_id = ? LIMIT 1", (run.id,)):
            return None  # its own turn is known, and did not act: no other turn stands for it
        return await self._db.scalar(
            "SELECT turns.id FROM turns WHERE turns.run_id IS NULL AND turns.chat_id = ?"
            f" AND turns.kind = ? AND turns.started_at >= ?{acted} ORDER BY turns.id LIMIT 1",
            (chat_id, run.kind, iso(run.started_at)),
        )

    # -- quiet hours -------------------------------------------------------------------------

    async def quiet(self, user_id: int) -> QuietWindow | None:
        row = await self._db.fetchone(
            "SELECT start_time, end_time FROM quiet_hours WHERE user_id = ?", (user_id,)
        )
        return QuietWindow(row["start_time"], row["end_time"]) if row else None

    async def set_quiet(self, user_id: int, window: QuietWindow | None) -> None:
        if window is None:
            await self._db.execute("DELETE FROM quiet_hours WHERE user_id = ?", (user_id,))
            return
        await self._db.execute(
            "INSERT INTO quiet_hours (user_id, start_time, end_time) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET start_time = excluded.start_time,"
            " end_time = excluded.end_time",
            (user_id, window.start, window.end),
        )


def _forget_made_in(
    conn: sqlite3.Connection, user_id: int, turn_ids: list[int], placeholder: str, now: str
) -> list[Schedule] | None:
    """`ScheduleStore.forget_made_in` in one transaction."""
    marks = ", ".join("?" * len(turn_ids))
    rows = conn.execute(
        f"SELECT * FROM schedules WHERE user_id = ? AND made_in_turn IN ({marks})"
        " AND kind IN ('reminder', 'task') ORDER BY id",
        (user_id, *turn_ids),
    ).fetchall()
    if any(row["status"] == ScheduleStatus.FIRING for row in rows):
        return None
    for row in rows:
        conn.execute(
            "UPDATE schedules SET payload = json_set(payload, '$.text', ?), updated_at = ?,"
            " status = CASE status WHEN 'active' THEN 'cancelled' ELSE status END"
            " WHERE id = ?",
            (placeholder, now, row["id"]),
        )
        conn.execute(
            "UPDATE schedule_runs SET text = ? WHERE schedule_id = ? AND text IS NOT NULL",
            (placeholder, row["id"]),
        )
    return [_schedule(row) for row in rows]
