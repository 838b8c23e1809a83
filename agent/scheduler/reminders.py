"""Reminder jobs: the text the user set, sent word for word through the courier, no model.

The claim records the exact message (with its "late by" note), so after a crash recovery finds
it in the message log and does not send it twice. The note says why it is late: Steward was not
running (it is sent at start-up), or the computer slept or had its clock set (Steward ran). A
repeating reminder missed while Steward was down is not sent late when its next time is nearer
than it is late: it goes then (`down_grace`, R209).
"""

from __future__ import annotations

from datetime import timedelta

from agent.scheduler.jobs import (
    LATE_AFTER,
    DueJob,
    JobResult,
    JobRuntime,
    job_sources,
    while_down,
)
from agent.scheduler.recurrence import describe_delta
from memory.labels import Label
from memory.schedules import RunStatus, Schedule, ScheduleRun

__all__ = ["ReminderJob", "reminder_text"]


def reminder_text(schedule: Schedule, late: timedelta) -> str:
    text = f"Reminder: {schedule.payload.get('text', '')}"
    if late > LATE_AFTER:
        why = (
            "I wasn't running when it fell due"
            if while_down(late)
            else "the computer I run on was asleep, or its clock was changed"
        )
        text += f"\n(late by {describe_delta(late)}: {why})"
    return text


class ReminderJob:
    """Delivered even in quiet hours: the user asked for it at that time. Missed while Steward
    was down, a repeating one whose next time is nearer than it is late waits for that time
    (R209: sent late, it came twice within minutes); a one-off is always sent, late."""

    deferrable = False
    grace: timedelta | None = None
    down_grace: timedelta | None = timedelta.max  # no fixed window: only a nearer next time

    def __init__(self, runtime: JobRuntime) -> None:
        self.runtime = runtime

    def run_text(self, schedule: Schedule, late: timedelta) -> str | None:
        return reminder_text(schedule, late)

    async def fire(self, job: DueJob) -> JobResult:
        assert job.text is not None
        address, chat = await self.runtime.destination(job.schedule)
        label = Label.of(job.schedule.tainted, job_sources(job.schedule))  # a planted reminder
        delivered = await self.runtime.sender.send(
            address, chat.id, job.text, label=label, schedule_id=job.schedule.id
        )
        reason = f"late by {describe_delta(job.late)}" if job.late > LATE_AFTER else "due"
        return JobResult(
            RunStatus.SENT, reason, detail={"chars": len(job.text), "delivered": delivered}
        )

    async def sent_message(self, run: ScheduleRun, chat_id: int) -> int | None:
        if not run.text:
            return None
        return await self.runtime.schedules.sent_message_since(chat_id, run.started_at, run.text)

    async def settle_sent(self, run: ScheduleRun, schedule: Schedule) -> None:
        return None

    async def acted(self, run: ScheduleRun, chat_id: int) -> int | None:
        return None  # a reminder runs no turn
