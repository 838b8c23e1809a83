"""Goal check-ins: whether one is due is decided in code; only a due one reaches the model.

Nothing is due when progress was noted since the last check-in (the owner is on it), unless the
goal's due date is within three days, either side (long past, progress still quiets it: a daily
check-in of a goal a month overdue nagged every day, R107). Otherwise the model reviews the
goal and may still decide to stay silent by answering exactly SKIP. `CheckinJob` is the
scheduler's handler for these jobs. None goes out within 20 hours of the last, and after three
in a row unanswered (the owner wrote nothing in that chat since) they wait for the owner to
write again. A repeating one missed while Steward was not running, by over an hour, is not run at
start-up: it comes at its next time (`DOWN_GRACE`, R209). At most `A_DAY` repeating check-ins
go to one person a day (R232: 25 daily goals were 25 messages every morning); the scheduler runs
the goals least recently checked in on first, so the others get theirs on the days after. A
due date's own check-in always goes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.fence import fence, new_fence_id
from agent.scheduler.jobs import NO_MODEL, AgentJob, DueJob, JobResult, job_sources
from agent.types import TurnRequest
from memory.clock import CLOCK_SLACK, parse_iso
from memory.goals import Goal, GoalNote, GoalStatus
from memory.longterm import Kind, Source
from memory.people import Chat, User
from memory.schedules import RunStatus, Schedule, ScheduleRun

__all__ = ["DOWN_GRACE", "DUE_SOON", "CheckinJob", "checkin_decision", "checkin_prompt"]

DUE_SOON = timedelta(days=3)
MIN_APART = timedelta(hours=20)
A_DAY = 3
"""The most repeating check-ins sent to one person in one day of theirs (R232)."""
UNANSWERED_MOST = 3
_WENT = ("sent", "waiting")
"""Runs whose nudge went out: a "waiting" one waited on an approval and posts when it ends."""
DOWN_GRACE = timedelta(hours=1)
"""A repeating check-in missed while Steward was not running for longer than this is skipped
and comes at its next time (R209: after 3 days down, 40 check-ins made 40 model calls at
start-up, 82 % of the day's budget); a short restart still lets it through, late."""


def checkin_decision(
    goal: Goal, notes: list[GoalNote], since: datetime, now: datetime
) -> tuple[bool, str]:
    """(due, why): is there anything for a check-in to say?"""
    if goal.status is not GoalStatus.ACTIVE:
        return False, f"the goal is {goal.status.value}"
    overdue = False
    if goal.due_at:
        due = parse_iso(goal.due_at)
        if now - DUE_SOON <= due < now:
            return True, "the goal is past its due date"
        if now <= due <= now + DUE_SOON:
            return True, "the goal is due within 3 days"
        overdue = due < now  # long past: progress noted still means nothing is due (R107)
    recent = [n for n in notes if n.created_at > since]
    if recent:
        return False, f"progress noted since the last check-in ({len(recent)} notes)"
    if overdue:
        return (
            True,
            "the goal is past its due date, and no progress noted since the last check-in",
        )
    return True, "no progress noted since the last check-in"


def checkin_prompt(
    goal: Goal,
    notes: list[GoalNote],
    last: datetime | None,
    zone: ZoneInfo,
    reason: str,
    for_owner: bool = True,
) -> str:
    """`last`: when the goal's last check-in was sent (None: never). R232: it was the last run
    of any kind, a skipped one too, so the model was told "Last check-in: Mon 2026-03-30" when
    the owner's last nudge was on Mar 13. `for_owner` False: the goal is a guest's, and the
    nudge is theirs (it said "Write the owner", and the guest read about "your owner")."""

    def day(moment: datetime) -> str:
        return f"{moment.astimezone(zone):%a %Y-%m-%d}"

    lines = [
        f"Goal check-in for goal #{goal.id}: “{goal.title}”. Why now: {reason}.",
        f"Tracking since: {day(parse_iso(goal.created_at))}."
        if goal.created_at
        else "Tracking since: unknown.",
        f"Due: {day(parse_iso(goal.due_at))}." if goal.due_at else "Due: no date set.",
        f"Next step: {goal.next_step}" if goal.next_step else "Next step: none recorded.",
        f"Last check-in: {day(last)}." if last else "Last check-in: none yet.",
        "Progress log (oldest first):",
    ]
    lines += [f"- {day(n.created_at)}: {n.note}" for n in notes] or ["- (nothing logged yet)"]
    if goal.tainted:  # shaped by outside content: shown as data
        lines = [fence("\n".join(lines), f"goal:#{goal.id}", new_fence_id())]
    whom = "the owner" if for_owner else "the person this goal belongs to (not the owner)"
    # R248: a tainted goal's tools ask the owner: a guest's check-in waited on a card every
    # morning, in a chat where no one could decide it, and the step was never recorded
    record = (
        "suggest one in the message (do not record it: changing this goal needs the owner's "
        "approval)"
        if goal.tainted
        else "suggest one and record it with goal_next_step"
    )
    lines.append(
        f"Write {whom} one short, friendly nudge (two or three sentences) that names the next "
        f"step; if none is recorded, {record}. You may decide that a message would not help "
        "right now: then reply exactly SKIP and nothing is sent."
    )
    return "\n".join(lines)


def _made_by(now: datetime, runs: list[ScheduleRun]) -> list[ScheduleRun]:
    """The runs made by `now`: one stamped later went out while the clock ran fast, since set
    right (R247: its "under 20 hours ago" silenced a daily check-in for as long as the clock
    had been ahead, and the owner's answers never came after it)."""
    return [run for run in runs if run.started_at <= now + CLOCK_SLACK]


class CheckinJob(AgentJob):
    """Self-initiated, so it waits out quiet hours; a closed goal ends its check-ins. Missed
    while Steward was down by over DOWN_GRACE, a repeating one waits for its next time."""

    deferrable = True
    down_grace = DOWN_GRACE

    async def _unanswered(
        self, schedule: Schedule, user: User, chat: Chat | None, now: datetime
    ) -> str:
        """Why not to check in now, or "": the last one went out under 20 hours ago (a time
        zone changed while travelling: R135 had two in a day), or the last UNANSWERED_MOST went
        unanswered (28 ignored daily nudges, each one more memory, R135): quiet until the
        owner writes there again."""
        goal_id = int(schedule.payload.get("goal_id", 0))  # all of its check-ins, not one's
        # R248: a check-in that waited on an approval posts its nudge once decided or expired,
        # its run left "waiting": counted as sent, or an ignored goal's nudges never went quiet
        sent = _made_by(
            now, await self.runtime.schedules.last_goal_checkins(goal_id, _WENT, UNANSWERED_MOST)
        )
        if sent and now - sent[-1].started_at < MIN_APART:
            return "the last check-in went out under 20 hours ago"
        if chat is None or len(sent) < UNANSWERED_MOST:
            return ""
        wrote = await self.runtime.stores.messages.last_from(chat.id, user.id)
        if all(wrote is None or r.started_at > wrote for r in sent[-UNANSWERED_MOST:]):
            return f"the last {UNANSWERED_MOST} check-ins went unanswered: quiet until you write"
        return ""

    async def _many_today(self, job: DueJob, now: datetime) -> str:
        """Why not: A_DAY repeating check-ins went to this person today (their day), or ""."""
        if job.schedule.trigger.get("type") == "once":
            return ""  # a due date's own: it comes once, the day before
        local = now.astimezone(self.runtime.zone_for(job.user))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        went = await self.runtime.schedules.checkins_sent_since(
            job.user.id, midnight, now + timedelta(minutes=1), besides=job.run_id
        )
        if went < A_DAY:
            return ""
        return f"{A_DAY} check-ins went to you today already: this goal's comes on another day"

    async def fire(self, job: DueJob) -> JobResult:
        runtime, schedule, user = self.runtime, job.schedule, job.user
        goal = await runtime.stores.goals.by_id(int(schedule.payload.get("goal_id", 0)))
        if goal is None or goal.status is not GoalStatus.ACTIVE:
            state = "gone" if goal is None else goal.status.value
            return JobResult(RunStatus.SKIPPED, f"the goal is {state}", stop=True)
        previous = await runtime.schedules.last_run(
            schedule.id, ("sent", "silent", "skipped", "waiting")
        )
        now = runtime.clock.now()
        since = min(previous.started_at if previous else schedule.created_at, now)  # R247
        notes = await runtime.stores.goals.notes(goal.id, limit=15)
        due, reason = checkin_decision(goal, notes, since, now)
        if not due:
            return JobResult(RunStatus.SKIPPED, reason + " (decided without the model)")
        address, chat = await runtime.destination(schedule)
        quiet = await self._unanswered(schedule, user, chat, now)
        if quiet:
            return JobResult(RunStatus.SKIPPED, quiet + " (decided without the model)")
        many = await self._many_today(job, now)
        if many:
            return JobResult(RunStatus.SKIPPED, many + " (decided without the model)")
        if not runtime.has_model:
            return JobResult(RunStatus.SKIPPED, NO_MODEL)
        sent = _made_by(now, await runtime.schedules.last_goal_checkins(goal.id, _WENT, 1))
        request = TurnRequest(
            kind="checkin",
            user=user,
            chat=chat,
            address=address,
            text=checkin_prompt(
                goal,
                notes,
                sent[-1].started_at if sent else None,
                runtime.zone_for(user),
                reason,
                for_owner=user.is_owner,
            ),
            tainted=schedule.tainted or goal.tainted,
            sources=job_sources(schedule) + (goal.label.sources if goal.tainted else ()),
            run_id=job.run_id,
        )
        result = await runtime.agent_turn(request, retried=job)  # failed: the next one comes
        result.reason = f"{reason}; {result.reason}"
        if result.status is RunStatus.SENT:
            await runtime.remember(
                request,
                result,
                f"Check-in on goal “{goal.title}” ({runtime.today(user):%Y-%m-%d}): {result.reply}",
                kind=Kind.GOAL_NOTE,
                source=Source.MODEL_INFERRED,
                subject=f"goal {goal.id}",
            )
        return result
