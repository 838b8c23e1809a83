"""/goal: goals that persist, with a progress log, a next step and check-ins."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from agent.goals import GoalError, Goals
from agent.scheduler.when import WhenError, aparse_moment, parse_cadence
from bot.commands.registry import CommandContext, CommandGroup, UsageError
from memory.goals import GoalStatus

__all__ = ["group"]

group = CommandGroup()

USAGE = (
    "/goal add <text> · /goal list [all] · /goal show <id> · /goal note <id> <progress> · "
    "/goal next <id> <next step> · /goal done <id> · /goal drop <id> · "
    "/goal every <id> <daily | weekly | every monday 9:00 | every 3 days | off> · "
    "/goal due <id> <date | off>"
)


def _goal_id(text: str) -> tuple[int, str]:
    head, _, rest = text.strip().partition(" ")
    head = head.lstrip("#")
    if not head.isdigit():
        raise UsageError("Which goal? Give its id (see /goal list).")
    return int(head), rest.strip()


@group.command(
    "goal",
    summary="goals that persist: add, list, show, note, next, done, drop, every, due",
    usage=USAGE,
    example="/goal add Run a half marathon in spring",
)
async def goal_command(ctx: CommandContext) -> str:
    steward = ctx.steward
    goals = Goals(steward.stores, steward.scheduler, steward.settings.timezone, steward.memory)
    verb, _, rest = ctx.call.args.strip().partition(" ")
    verb = verb.lower()
    rest = rest.strip()
    zone = ZoneInfo(ctx.user.timezone or steward.settings.timezone)
    try:
        if verb in ("", "list"):
            return await goals.list_text(ctx.user, include_closed=rest.lower() == "all")
        if verb == "add":
            if not rest:
                raise UsageError("What is the goal? /goal add <text>")
            goal = await goals.add(ctx.user, rest, tainted=False)
            return (
                f"Goal #{goal.id} added: {goal.title}. Set the next step with "
                f"/goal next {goal.id} <step>, check-ins with /goal every {goal.id} weekly."
            )
        if verb == "show":
            goal_id, _ = _goal_id(rest)
            return await goals.show_text(ctx.user, goal_id)
        if verb == "note":
            goal_id, text = _goal_id(rest)
            if not text:
                raise UsageError("What progress? /goal note <id> <progress>")
            note = await goals.note(ctx.user, goal_id, text)
            return f"Noted on #{goal_id} ({note.created_at.astimezone(zone):%Y-%m-%d}): {text}"
        if verb == "next":
            goal_id, text = _goal_id(rest)
            if not text:
                raise UsageError("What is the next step? /goal next <id> <step>")
            await goals.next_step(ctx.user, goal_id, text)
            return f"Next step for #{goal_id}: {text}"
        if verb in ("done", "drop"):
            goal_id, _ = _goal_id(rest)
            status = GoalStatus.DONE if verb == "done" else GoalStatus.DROPPED
            goal = await goals.close(ctx.user, goal_id, status)
            return f"Goal #{goal.id} {goal.title} is {status.value}. Check-ins stopped."
        if verb == "every":
            goal_id, cadence = _goal_id(rest)
            if not cadence:
                raise UsageError("How often? /goal every <id> weekly")
            if cadence.lower() == "off":
                await goals.set_cadence(ctx.user, goal_id, None, chat=ctx.chat, address=ctx.address)
                return f"No more check-ins for #{goal_id}."
            recurrence = parse_cadence(cadence, steward.clock.now(), zone)
            await goals.set_cadence(
                ctx.user, goal_id, recurrence, chat=ctx.chat, address=ctx.address
            )
            return (
                f"I'll check in on #{goal_id} {recurrence.describe()}, and only message you "
                "when something is due."
            )
        if verb == "due":
            goal_id, when = _goal_id(rest)
            if not when:
                raise UsageError("When is it due? /goal due <id> 2026-06-01")
            if when.lower() == "off":
                await goals.set_due(ctx.user, goal_id, None)
                return f"#{goal_id} has no due date now."
            due = await aparse_moment(when, steward.clock.now(), zone)
            await goals.set_due(ctx.user, goal_id, due)
            return f"#{goal_id} is due {due.astimezone(zone):%a %Y-%m-%d}."
    except GoalError as exc:
        return str(exc)
    except WhenError as exc:
        raise UsageError(str(exc)) from None
    raise UsageError(f"I don't know /goal {verb}.")
