"""Goal check-ins: whether one is due is decided in code; only a due one reaches the model.

Nothing is due when progress was noted since the last check-in (the owner is on it), unless the
goal's due date is within three days, either side (long past, progress still quiets it: a daily
check-in of a goal a month overdue nagged every day, R107). Otherwise the model reviews the
goal and may still decide to stay silent by answering exactly SKIP. `CheckinJob` is the
scheduler's handler for these jobs. None goes out within 20 hours of the last, and after three
in a row unanswered (the owner wrote nothing in that chat since) they wait for the owner to
write again. A repeating one missed while Steward was not running, by over an hour, is not run at
start-up: it comes at its next time (`DOWN_GRACE`, R209).

The check-ins of one person due together in one chat go out as one turn and one message (R232:
25 goals checked in on at 09:00 were 25 messages and 25 model calls): the one the scheduler
fires first takes in the others that are due too, and records each of them as run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.fence import fence, new_fence_id
from agent.scheduler.jobs import NO_MODEL, AgentJob, DueJob, JobResult, job_sources
from agent.scheduler.recurrence import next_run
from agent.types import TurnRequest
from memory.clock import iso, parse_iso
from memory.goals import Goal, GoalNote, GoalStatus
from memory.longterm import Kind, Source
from memory.people import Chat, User
from memory.schedules import RunStatus, Schedule, ScheduleStatus

__all__ = [
    "DOWN_GRACE",
    "DUE_SOON",
    "CheckinJob",
    "checkin_decision",
    "checkin_prompt",
    "checkins_prompt",
]

log = logging.getLogger(__name__)

DUE_SOON = timedelta(days=3)
MIN_APART = timedelta(hours=20)
UNANSWERED_MOST = 3
DOWN_GRACE = timedelta(hours=1)
"""A repeating check-in missed while Steward was not running for longer than this is skipped
and comes at its next time (R209: after 3 days down, 40 check-ins made 40 model calls at
start-up, 82 % of the day's budget); a short restart still lets it through, late."""
TOGETHER_NOTES = 5
"""Progress notes shown per goal when several are checked in on in one message (alone: 15)."""


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


def _goal_lines(
    goal: Goal, notes: list[GoalNote], last: datetime | None, zone: ZoneInfo, reason: str
) -> list[str]:
    """One goal as its check-in shows it; `last`, when the last check-in was sent (None:
    never). R232: it was the last run of any kind, a skipped one too, so the model was told
    "Last check-in: Mon 2026-03-30" when the owner's last nudge was on Mar 13."""

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
    return lines


_SKIP = (
    "You may decide that a message would not help right now: then reply exactly SKIP and "
    "nothing is sent."
)


def checkin_prompt(
    goal: Goal, notes: list[GoalNote], last: datetime | None, zone: ZoneInfo, reason: str
) -> str:
    lines = _goal_lines(goal, notes, last, zone, reason)
    lines.append(
        "Write the owner one short, friendly nudge (two or three sentences) that names the next "
        "step; if none is recorded, suggest one and record it with goal_next_step. " + _SKIP
    )
    return "\n".join(lines)


def checkins_prompt(due: list[_Due], zone: ZoneInfo) -> str:
    """Several goals' check-ins, due together, for one message (R232)."""
    lines = [f"{len(due)} goal check-ins are due together: answer them in one message."]
    for one in due:
        lines += ["", *_goal_lines(one.goal, one.notes[-TOGETHER_NOTES:], one.last, zone, one.why)]
    lines += [
        "",
        "Write the owner one short, friendly message covering these goals: a sentence or two "
        "for each, by its number, naming its next step; where none is recorded, suggest one "
        "and record it with goal_next_step. " + _SKIP,
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class _Due:
    """A goal whose check-in is due, with what its prompt shows; `run_id`, the run claimed
    for its schedule when it goes with another's (None: the run the scheduler fired)."""

    schedule: Schedule
    goal: Goal
    notes: list[GoalNote]
    last: datetime | None
    why: str
    run_id: int | None = None

    @property
    def tainted(self) -> bool:
        return self.schedule.tainted or self.goal.tainted


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
        sent = await self.runtime.schedules.last_goal_checkins(goal_id, ("sent",), UNANSWERED_MOST)
        if sent and now - sent[-1].started_at < MIN_APART:
            return "the last check-in went out under 20 hours ago"
        if chat is None or len(sent) < UNANSWERED_MOST:
            return ""
        wrote = await self.runtime.stores.messages.last_from(chat.id, user.id)
        if all(wrote is None or r.started_at > wrote for r in sent[-UNANSWERED_MOST:]):
            return f"the last {UNANSWERED_MOST} check-ins went unanswered: quiet until you write"
        return ""

    async def _due(self, schedule: Schedule, now: datetime) -> _Due | JobResult:
        """The goal of a check-in, if one is due for it; else why not, decided without the
        model. Progress counts from the check-in's last run of any kind (a day with a note
        quiets that day's, not every one after it); the prompt shows the last one sent."""
        stores, schedules = self.runtime.stores, self.runtime.schedules
        goal = await stores.goals.by_id(int(schedule.payload.get("goal_id", 0)))
        if goal is None or goal.status is not GoalStatus.ACTIVE:
            state = "gone" if goal is None else goal.status.value
            return JobResult(RunStatus.SKIPPED, f"the goal is {state}", stop=True)
        previous = await schedules.last_run(schedule.id, ("sent", "silent", "skipped", "waiting"))
        looked = previous.started_at if previous else schedule.created_at
        notes = await stores.goals.notes(goal.id, limit=15)
        due, reason = checkin_decision(goal, notes, looked, now)
        if not due:
            return JobResult(RunStatus.SKIPPED, reason + " (decided without the model)")
        sent = await schedules.last_goal_checkins(goal.id, ("sent",), 1)
        return _Due(schedule, goal, notes, sent[-1].started_at if sent else None, reason)

    async def fire(self, job: DueJob) -> JobResult:
        runtime, schedule, user = self.runtime, job.schedule, job.user
        now = runtime.clock.now()
        first = await self._due(schedule, now)
        if isinstance(first, JobResult):
            return first
        address, chat = await runtime.destination(schedule)
        quiet = await self._unanswered(schedule, user, chat, now)
        if quiet:
            return JobResult(RunStatus.SKIPPED, quiet + " (decided without the model)")
        if not runtime.has_model:
            return JobResult(RunStatus.SKIPPED, NO_MODEL)
        together = [first, *await self._together(job, first, chat, now)]
        zone = runtime.zone_for(user)
        if len(together) == 1:
            text = checkin_prompt(first.goal, first.notes, first.last, zone, first.why)
        else:
            text = checkins_prompt(together, zone)
        sources = [s for d in together for s in job_sources(d.schedule)]
        sources += [s for d in together if d.goal.tainted for s in d.goal.label.sources]
        request = TurnRequest(
            kind="checkin",
            user=user,
            chat=chat,
            address=address,
            text=text,
            tainted=first.tainted,
            sources=tuple(dict.fromkeys(sources)),
            run_id=job.run_id,
        )
        try:  # failed: the next one comes
            result = await runtime.agent_turn(request, retried=job)
        except Exception as exc:
            failed = JobResult(RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
            await self._finish_together(together[1:], failed, job, now)
            raise
        await self._finish_together(together[1:], result, job, now)
        result.reason = f"{first.why}; {result.reason}"
        if len(together) > 1:
            result.reason += "; with goals " + ", ".join(f"#{d.goal.id}" for d in together[1:])
            result.detail["with_goals"] = [d.goal.id for d in together[1:]]
        if result.status is RunStatus.SENT:
            titles = ", ".join(f"“{d.goal.title}”" for d in together)
            await runtime.remember(
                request,
                result,
                f"Check-in on goal{'s' if len(together) > 1 else ''} {titles} "
                f"({runtime.today(user):%Y-%m-%d}): {result.reply}",
                kind=Kind.GOAL_NOTE,
                source=Source.MODEL_INFERRED,
                subject=f"goal{'s' if len(together) > 1 else ''} "
                + ", ".join(str(d.goal.id) for d in together),
            )
        return result

    async def _together(self, job: DueJob, first: _Due, chat: Chat, now: datetime) -> list[_Due]:
        """The person's other check-ins due now in the same chat, due for a nudge as this one
        is and as trusted (a goal from outside content taints the whole turn), each claimed
        for a run of its own: they go in this one message (R232). One missed by more than
        DOWN_GRACE is left to the scheduler, which may skip it; the least recently checked in
        on comes first, as the scheduler orders them."""
        schedule, schedules = job.schedule, self.runtime.schedules
        if schedule.chat_id is None:
            return []
        found = await schedules.due_checkins(job.user.id, schedule.chat_id, now - DOWN_GRACE, now)
        others = [s for s in found if s.id != schedule.id and s.destination == schedule.destination]
        goals = {s.id: int(s.payload.get("goal_id", 0)) for s in others}
        last = await schedules.last_checkins(set(goals.values())) if goals else {}
        others.sort(key=lambda s: (s.next_run_at or now, last.get(goals[s.id], ""), s.id))
        taken: list[_Due] = []
        for other in others:
            due = await self._due(other, now)
            if isinstance(due, JobResult) or due.tainted != first.tainted:
                continue  # its own run decides it, as before
            if await self._unanswered(other, job.user, chat, now):
                continue
            assert other.next_run_at is not None
            late = max(0, int((now - other.next_run_at).total_seconds()))
            run_id = await schedules.claim(other, late_seconds=late, due_at=other.next_run_at)
            if run_id is not None:
                taken.append(_Due(other, due.goal, due.notes, due.last, due.why, run_id))
        return taken

    async def _finish_together(
        self, together: list[_Due], result: JobResult, job: DueJob, now: datetime
    ) -> None:
        """Record the runs of the check-ins that went with `job`'s as it ended: sent, silent,
        skipped for the budget (a one-off's waiting for the next day), failed (tried again
        with it); each gets its next time, as the scheduler gives the one it fired."""
        runtime = self.runtime
        zone = runtime.zone_for(job.user)
        fired = int(job.schedule.payload.get("goal_id", 0))
        for one in together:
            assert one.run_id is not None and one.schedule.next_run_at is not None
            schedule, due_at = one.schedule, one.schedule.next_run_at
            at = next_run(schedule.trigger, now, zone)
            if result.retry_at is not None and (at is None or result.retry_at < at):
                at = result.retry_at
            elif at is None and result.again_at is not None:  # a one-off: at its own time
                at = due_at.astimezone(zone)
                while at < result.again_at:
                    at += timedelta(days=1)
            ended = None
            if at is None and result.status is RunStatus.FAILED:
                ended = ScheduleStatus.FAILED
            detail: dict[str, Any] = {"with_run": job.run_id}
            if "retry_at" in result.detail and at == result.retry_at:
                detail["retry_at"] = result.detail["retry_at"]  # known as a try again by it
            reason = f"{one.why}; {result.reason}; with goal #{fired}"
            try:
                await runtime.schedules.finish(
                    one.run_id,
                    schedule.id,
                    status=result.status,
                    reason=reason,
                    turn_id=result.turn_id,
                    detail=detail,
                    next_run_at=at,
                    schedule_status=ended,
                )
                await runtime.stores.audit.record(
                    "schedule.run",
                    actor="scheduler",
                    subject=f"schedule:{schedule.id}",
                    job=schedule.kind,
                    outcome=result.status.value,
                    reason=reason,
                    due_at=iso(due_at),
                    late_s=max(0, int((now - due_at).total_seconds())),
                    turn_id=result.turn_id,
                    tainted=schedule.tainted,
                    **detail,
                )
            except Exception:  # left `firing`: the next start settles it, by the message log
                log.exception("check-in %s, run with another, not recorded", schedule.id)
