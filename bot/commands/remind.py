"""/remind: reminders in plain words, their list, and cancelling one."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from agent.scheduler import SchedulerService
from agent.scheduler.when import EXAMPLES, WhenError, aparse_reminder, describe_delta
from bot.commands.registry import CommandContext, CommandGroup, UsageError

__all__ = ["group", "scheduler_of"]

group = CommandGroup()

USAGE = (
    "/remind <when> <what>  (when: 45s, 10m, 2h30m, tomorrow 9:00, 2026-12-24 18:00, "
    "every monday 8:00, every day 21:00)\n/remind list\n/remind cancel <id>"
)


def scheduler_of(ctx: CommandContext) -> SchedulerService:
    """The running scheduler: the core knows it only by its `Scheduling` port, the commands
    need the whole service (briefing, quiet hours, timezone)."""
    scheduler = ctx.steward.scheduler
    if not isinstance(scheduler, SchedulerService):
        raise UsageError("The scheduler is not running in this Steward.")
    return scheduler


@group.command(
    "remind",
    summary="reminders: /remind 10m stretch, /remind list, /remind cancel <id>",
    usage=USAGE,
    example="/remind tomorrow 9:00 call mom",
)
async def remind_command(ctx: CommandContext) -> str:
    scheduler = scheduler_of(ctx)
    args = ctx.call.args
    head, _, rest = args.partition(" ")
    if not args:
        raise UsageError(f"Tell me when and what. Examples: {EXAMPLES}")
    if head.lower() == "list" and not rest:
        schedules = await scheduler.pending_for(ctx.user)
        if not schedules:
            return "No reminders. Set one with /remind 10m stretch."
        return "\n".join(scheduler.describe(s, ctx.user) for s in schedules)
    if head.lower() == "cancel":
        if not rest.strip().lstrip("#").isdigit():
            raise UsageError("Which one? /remind cancel <id> (the ids are in /remind list).")
        schedule_id = int(rest.strip().lstrip("#"))
        cancelled = await scheduler.cancel(ctx.user, schedule_id)
        if cancelled is None:
            return f"There is no pending reminder #{schedule_id}. See /remind list."
        return f"Cancelled #{schedule_id}: {cancelled.payload.get('text', '')}"
    zone = ZoneInfo(ctx.user.timezone or ctx.steward.settings.timezone)
    now = ctx.steward.clock.now()
    try:
        parsed = await aparse_reminder(args, now, zone)
    except WhenError as exc:
        raise UsageError(f"{exc}\nExamples: {EXAMPLES}") from None
    schedule = await scheduler.add_reminder(
        user=ctx.user, chat=ctx.chat, address=ctx.address, parsed=parsed
    )
    first = f"{parsed.first.astimezone(zone):%a %Y-%m-%d %H:%M}"
    if parsed.recurrence is not None:
        when = f"{parsed.recurrence.describe()}, first on {first}"
    else:
        when = f"{first} (in {describe_delta(parsed.first - now)})"
    return f"OK, #{schedule.id}: {when} — {parsed.text}. Cancel with /remind cancel {schedule.id}."
