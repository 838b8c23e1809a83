"""/goal: goals that persist, with a progress log, a next step and check-ins.

The goal operations are the shared `Goals` (`agent/goals.py`), as for the goal tools: what they
refuse (`GoalError`, "There is no goal #9.") is the answer; a date or cadence that does not
parse is a usage error.
"""

from __future__ import annotations

import functools
from typing import Any

from agent.errors import GoalTitleError
from agent.goals import GoalError, Goals, earlier_note
from agent.scheduler.when import WhenError, parse_cadence
from agent.types import Address
from bot.commands.handlers import Handler
from bot.commands.ids import LeadingIds, digits_of_id, leading_ids
from bot.commands.privacy import IN_PRIVATE, in_group
from bot.commands.registry import CommandGroup, UsageError
from memory.clock import Clock
from memory.goals import GoalStatus
from memory.people import Chat, User
from memory.stores import Stores

__all__ = ["group"]

group = CommandGroup()

USAGE = (
    "/goal add <text> · /goal list [all] · /goal show <id> · /goal note <id> <progress> · "
    "/goal next <id> <next step> · /goal done <id> · /goal drop <id> · /goal reopen <id> · "
    "/goal rename <id> <title> · "
    "/goal every <id> <daily | weekly | every monday 9:00 | every 3 days | off> · "
    "/goal due <id> <date | off>"
)
WHICH = "Which goal? Give its id (see /goal list)."

goal = group.command(
    "goal",
    summary=(
        "goals that persist: add, list, show, note, next, done, drop, every, due, reopen, rename"
    ),
    usage=USAGE,
    example="/goal add Run a half marathon in spring",
)


def _goal_id(text: str) -> int:
    return int(digits_of_id(text, WHICH))


def _goal_ids(text: str) -> LeadingIds:
    return leading_ids(text, WHICH)  # "/goal done 3 4", "3, 4", "3,4", "3 4 finally"


def _answers(handler: Handler) -> Handler:
    """What `Goals` refuses is the reply; a date or cadence it cannot read, a usage error."""

    @functools.wraps(handler)
    async def answer(**kwargs: Any) -> str:
        try:
            return await handler(**kwargs)
        except (GoalTitleError, WhenError) as exc:  # what was typed: usage and an example
            raise UsageError(str(exc)) from None
        except GoalError as exc:
            return str(exc)

    return answer


@goal.sub("")
@_answers
async def list_active(user: User, chat: Chat, goals: Goals) -> str:
    if in_group(chat):
        return IN_PRIVATE
    return await goals.list_text(user, include_closed=False)


@goal.sub("list [which...]")
@_answers
async def list_goals(which: str, user: User, chat: Chat, goals: Goals) -> str:
    if in_group(chat):
        return IN_PRIVATE
    return await goals.list_text(user, include_closed=which.lower() == "all")


@goal.sub("add <title...>", problem="What is the goal? /goal add <text>")
@_answers
async def add(title: str, user: User, goals: Goals) -> str:
    added = await goals.add(user, title, tainted=False)
    return (
        f"Goal #{added.id} added: {added.title}. Set the next step with "
        f"/goal next {added.id} <step>, check-ins with /goal every {added.id} weekly."
        + earlier_note(await goals.closed_alike(user, added))
    )


@goal.sub("show <goal_id> [ignored...]", problem=WHICH, goal_id=_goal_id)
@_answers
async def show(goal_id: int, user: User, chat: Chat, goals: Goals) -> str:
    if in_group(chat):
        return IN_PRIVATE
    return await goals.show_text(user, goal_id)


@goal.sub("note <goal_id> [text...]", problem=WHICH, goal_id=_goal_id)
@_answers
async def note(goal_id: int, text: str, user: User, goals: Goals) -> str:
    if not text:
        raise UsageError("What progress? /goal note <id> <progress>")
    noted = await goals.note(user, goal_id, text)
    day = noted.created_at.astimezone(goals.zone(user))
    return f"Noted on #{goal_id} ({day:%Y-%m-%d}): {text}"


@goal.sub("next <goal_id> [text...]", problem=WHICH, goal_id=_goal_id)
@_answers
async def next_step(goal_id: int, text: str, user: User, goals: Goals) -> str:
    if not text:
        raise UsageError("What is the next step? /goal next <id> <step>")
    await goals.next_step(user, goal_id, text)
    return f"Next step for #{goal_id}: {text}"


@goal.sub("done <goal_ids...>", problem=WHICH, goal_ids=_goal_ids)
@_answers
async def done(goal_ids: LeadingIds, user: User, chat: Chat, goals: Goals) -> str:
    return await _close(goals, user, chat, goal_ids, GoalStatus.DONE)


@goal.sub("drop <goal_ids...>", problem=WHICH, goal_ids=_goal_ids)
@_answers
async def drop(goal_ids: LeadingIds, user: User, chat: Chat, goals: Goals) -> str:
    return await _close(goals, user, chat, goal_ids, GoalStatus.DROPPED)


async def _close(
    goals: Goals, user: User, chat: Chat, goal_ids: LeadingIds, status: GoalStatus
) -> str:
    """Each goal given, a line each; R231: "1 2 finally" closes both, and a number after the
    words ("1 then 2", "1 -2") is named as left out (#2 was left open unsaid)."""
    lines = []
    for goal_id in goal_ids.ids:
        try:
            closed = await goals.close(user, goal_id, status)
        except GoalError as exc:
            lines.append(str(exc))
            continue
        title = "" if in_group(chat) else f" {closed.title}"  # a group hears only the number
        lines.append(f"Goal #{closed.id}{title} is {status.value}. Check-ins stopped.")
    verb = "done" if status is GoalStatus.DONE else "drop"
    if left := goal_ids.left_said(f"/goal {verb}"):
        lines.append(left)
    return "\n".join(lines)


@goal.sub("reopen <goal_id> [ignored...]", problem=WHICH, goal_id=_goal_id)
@_answers
async def reopen(goal_id: int, user: User, chat: Chat, goals: Goals) -> str:
    """A goal closed by mistake is active again, with the check-ins it had."""
    before = await goals.get(user, goal_id)
    opened = await goals.reopen(user, goal_id)
    title = "" if in_group(chat) else f" {opened.title}"
    said = f"Goal #{goal_id}{title} is active again."
    if opened.cadence:
        said += f" Check-ins: {opened.cadence}."
    elif before.cadence:
        said += f" Its check-ins were not set again: /goal every {goal_id} weekly."
    return said


@goal.sub("rename <goal_id> [title...]", problem=WHICH, goal_id=_goal_id)
@_answers
async def rename(goal_id: int, title: str, user: User, chat: Chat, goals: Goals) -> str:
    if not title:
        raise UsageError("What should it be called? /goal rename <id> <title>")
    renamed = await goals.rename(user, goal_id, title)
    return f"Goal #{goal_id} is now: {renamed.title}" if not in_group(chat) else "Renamed."


@goal.sub("every <goal_id> off", goal_id=_goal_id)
@_answers
async def every_off(goal_id: int, user: User, chat: Chat, address: Address, goals: Goals) -> str:
    await goals.set_cadence(user, goal_id, None, chat=chat, address=address)
    return f"No more check-ins for #{goal_id}."


@goal.sub("every <goal_id> [cadence...]", problem=WHICH, goal_id=_goal_id)
@_answers
async def every(
    goal_id: int,
    cadence: str,
    user: User,
    chat: Chat,
    address: Address,
    clock: Clock,
    goals: Goals,
    stores: Stores,
) -> str:
    if not cadence:
        raise UsageError("How often? /goal every <id> weekly")
    recurrence = parse_cadence(cadence, clock.now(), goals.zone(user))
    # a check-in carries the goal's notes: Goals sets it in the private chat, never here
    where = " in our private chat" if in_group(chat) else ""
    await goals.set_cadence(user, goal_id, recurrence, chat=chat, address=address)
    return (
        f"I'll check in on #{goal_id} {recurrence.describe()}{where}, and only message you "
        "when something is due."
    )


@goal.sub("due <goal_id> off", goal_id=_goal_id)
@_answers
async def due_off(goal_id: int, user: User, goals: Goals) -> str:
    await goals.set_due(user, goal_id, None)
    return f"#{goal_id} has no due date now."


@goal.sub("due <goal_id> [when...]", problem=WHICH, goal_id=_goal_id)
@_answers
async def due(goal_id: int, when: str, user: User, clock: Clock, goals: Goals) -> str:
    if not when:
        raise UsageError("When is it due? /goal due <id> 2026-06-01")
    # a due date is a day: "today" counts (read from the day's start), and whatever time the
    # words gave, it is due by that day's end ("24.12.2026" was 00:00, "2026-12-24" 09:00)
    due = await goals.due_by(user, when)
    await goals.set_due(user, goal_id, due)
    return f"#{goal_id} is due {due.astimezone(goals.zone(user)):%a %Y-%m-%d}."
