"""What the owner is told when the daily token budget stops self-initiated work: the job it
skipped, by what it is to them, and what it skipped in all on the last day it ran out (R209:
one fixed text a day, and the owner never learnt their briefing was skipped five days running).
`/usage` lists today's with `describe_skips`."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.cards import plain_name
from agent.types import TurnRequest
from memory.people import User
from memory.schedules import ScheduleRun
from memory.stores import Stores

__all__ = ["BudgetNotices", "describe_skips"]


class BudgetNotices:
    """`timezone`: the one the budget's day is counted in (STEWARD_TIMEZONE)."""

    def __init__(self, stores: Stores, timezone: str) -> None:
        self._stores = stores
        self._timezone = timezone

    async def skipped_job(self, request: TurnRequest, owner: User, zone: ZoneInfo) -> str:
        """The job the budget skipped, as its owner knows it: "your 10:00 briefing", "your
        check-in for goal #24 “Learn Dutch”", "your scheduled task “…”". Titles and texts only
        of the owner's own untainted jobs: the notice is Steward's own, trusted words."""
        found = await self._stores.schedules.run_of(request.run_id) if request.run_id else None
        if found is None:
            return _A_JOB.get(request.kind, f"a {request.kind} turn")
        run, schedule = found
        own = schedule.user_id == owner.id
        whose = "your" if own else "another person's"
        if schedule.kind == "briefing":
            return f"{whose} {run.due_at.astimezone(zone):%H:%M} briefing"
        if schedule.kind == "checkin":
            goal_id = int(schedule.payload.get("goal_id", 0))
            goal = await self._stores.goals.by_id(goal_id)
            shown = own and goal is not None and not (goal.tainted or schedule.tainted)
            title = f" “{plain_name(goal.title, 60)}”" if shown and goal else ""
            return f"{whose} check-in for goal #{goal_id}{title}"
        if schedule.kind == "task" and own and not schedule.tainted:
            return f"your scheduled task “{plain_name(schedule.payload.get('text', ''), 60)}”"
        return f"{whose} scheduled {_JOB_NAMES.get(schedule.kind, schedule.kind)} #{schedule.id}"

    async def recap(self, last_day: str, zone: ZoneInfo) -> str:
        """What the budget skipped on `last_day` (the day of its last notice, which named only
        the first), or "" when that was only the one job."""
        budget_zone = ZoneInfo(self._timezone)
        day = date.fromisoformat(last_day)
        since = datetime.combine(day, datetime.min.time(), budget_zone)
        until = datetime.combine(day + timedelta(days=1), datetime.min.time(), budget_zone)
        runs = await self._stores.schedules.budget_skips(since, until)
        if len(runs) < 2:
            return ""
        return (
            f"The last day the budget ran out ({day:%a %-d %b}), it skipped {len(runs)} jobs in "
            f"all: {describe_skips(runs, zone)}."
        )


_A_JOB = {"briefing": "a briefing", "checkin": "a goal check-in", "task": "a scheduled task"}
_JOB_NAMES = {"checkin": "check-in"}


def describe_skips(runs: list[ScheduleRun], zone: ZoneInfo) -> str:
    """Runs the budget skipped, a briefing by its time and the rest counted by kind: "the 10:00
    briefing, 17 check-ins" (R209; /usage says it too)."""
    times = sorted({f"{r.due_at.astimezone(zone):%H:%M}" for r in runs if r.kind == "briefing"})
    parts = [f"the {t} briefing" for t in times]
    counts = Counter(r.kind for r in runs if r.kind != "briefing")
    for kind, n in sorted(counts.items()):
        name = _JOB_NAMES.get(kind, kind)
        parts.append(f"{n} {name}{'' if n == 1 else 's'}")
    return ", ".join(parts)
