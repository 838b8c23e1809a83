"""Tools to schedule things: reminders, tasks Steward runs for itself later, and their list.

Creating one is an internal write; in a turn that holds untrusted content the policy asks the
owner first, and what is stored carries the turn's `tainted` flag, so a task made that way is
checked again when it runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from zoneinfo import ZoneInfo

from agent.errors import TooManySchedules
from agent.ports import Scheduling
from agent.recall import group_scope
from agent.scheduler.when import Parsed, WhenError, aparse_when
from agent.tools.registry import Risk, ToolContext, ToolError, ToolResult, tool
from memory.schedules import Schedule
from memory.visible import visible

__all__ = ["SCHEDULE_TOOLS"]


def _scheduler(ctx: ToolContext) -> Scheduling:
    if ctx.deps.scheduler is None:
        raise ToolError("the scheduler is not running in this Steward")
    return ctx.deps.scheduler


async def _add(ctx: ToolContext, kind: str, when: str, text: str) -> str:
    scheduler = _scheduler(ctx)
    if ctx.chat is None or ctx.address is None:
        raise ToolError("there is no chat to deliver to in this turn")
    text = text.strip()
    if not visible(text):  # zero-width marks alone fired a blank reminder (R199, as /remind R121)
        example = "call mom" if kind == "reminder" else "check whether the strike is over"
        raise ToolError(f"say what it is about in words, e.g. “{example}”")
    zone = ZoneInfo(ctx.timezone)
    try:
        first, recurrence = await aparse_when(when, ctx.clock.now(), zone)
    except WhenError as exc:
        raise ToolError(
            f"{exc} Use a form like “in 20 minutes”, “tomorrow 9:00”, “2026-12-24 18:00” "
            "or “every monday 8:00”."
        ) from None
    try:
        schedule = await scheduler.add_reminder(
            user=ctx.user,
            chat=ctx.chat,
            address=ctx.address,
            parsed=Parsed(first, text, recurrence),
            kind=kind,
            tainted=ctx.tainted,
            sources=ctx.sources,
            made_in_turn=ctx.turn_id,
        )
    except TooManySchedules as exc:
        raise ToolError(str(exc)) from None
    return f"Scheduled {scheduler.describe(schedule, ctx.user)}"


@tool(risk=Risk.WRITE_INTERNAL)
async def reminder_add(ctx: ToolContext, when: str, text: str) -> str:
    """Set a reminder: at that time the text is sent to the user in this chat, word for word.

    Args:
        when: When, as the user said it: "in 20 minutes", "tomorrow 9:00", "2026-12-24 18:00", "every monday 8:00", "every day 21:00".
        text: What to remind them of, e.g. "call mom".
    """  # noqa: E501
    return await _add(ctx, "reminder", when, text)


@tool(risk=Risk.WRITE_INTERNAL)
async def task_add(ctx: ToolContext, when: str, instruction: str) -> str:
    """Schedule work for yourself: at that time you run the instruction as your own turn and message the user what came of it.

    Args:
        when: When, in the same forms as reminder_add.
        instruction: What to do then, e.g. "check whether the Berlin train strike is over".
    """  # noqa: E501
    return await _add(ctx, "task", when, instruction)


@tool(risk=Risk.READ)
async def schedule_list(ctx: ToolContext) -> str | ToolResult:
    """List the user's pending reminders and scheduled tasks with their ids."""
    scheduler = _scheduler(ctx)
    schedules = await scheduler.pending_for(ctx.user)
    if (here := group_scope(ctx.chat)) is not None:  # a group reads the reply: only its own
        schedules = [s for s in schedules if s.chat_id == here]
    if not schedules:
        return "No reminders or tasks." + (" (in a group, only this chat's)" if here else "")
    text = "\n".join(scheduler.describe(s, ctx.user) for s in schedules)
    planted = [s.id for s in schedules if s.tainted]
    if planted:  # a job made from outside content: its words are outside content
        return ToolResult(text, source="task:" + ",".join(f"#{i}" for i in planted))
    return text


def _wanted(arguments: dict[str, Any]) -> int:
    try:
        return int(arguments.get("schedule_id", 0))
    except (TypeError, ValueError):
        return 0


async def _the_pending(ctx: ToolContext, wanted: int) -> Schedule | None:
    """The user's pending reminder or task with that id, as cancel would find it."""
    found = [s for s in await _scheduler(ctx).pending_for(ctx.user) if s.id == wanted]
    return found[0] if found else None


async def _cancel_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """Which reminder or task: the card names it, not only its number (review 62)."""
    wanted = _wanted(arguments)
    found = await _the_pending(ctx, wanted)
    if found is None:
        return f"Cancel #{wanted}: no pending reminder or task of yours has that number."
    # its words on one line: a reminder's text cannot draw lines of its own on the card
    return "Cancel " + " ".join(_scheduler(ctx).describe(found, ctx.user).split())


async def _cancel_fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """R222: bound to the row the card named (or to there being none): a card that said no
    reminder has that number cancelled the owner's reminder made after it under that id."""
    wanted = _wanted(arguments)
    found = await _the_pending(ctx, wanted)
    if found is None:
        return f"schedule:{wanted}:none"
    row = [found.kind, found.trigger, found.payload, found.created_at.isoformat()]
    digest = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
    return f"schedule:{wanted}:{digest}"


@tool(risk=Risk.WRITE_INTERNAL, preview=_cancel_preview, fingerprint=_cancel_fingerprint)
async def schedule_cancel(ctx: ToolContext, schedule_id: int) -> str:
    """Cancel one of the user's reminders or scheduled tasks.

    Args:
        schedule_id: The id from schedule_list.
    """
    scheduler = _scheduler(ctx)
    approved = ctx.approved_fingerprint  # R222: checked again, after the approval's awaits
    if approved is not None and approved != await _cancel_fingerprint(
        ctx, {"schedule_id": schedule_id}
    ):
        raise ToolError(
            f"refused: reminder or task #{schedule_id} changed after it was approved; "
            "nothing was cancelled"
        )
    cancelled = await scheduler.cancel(ctx.user, schedule_id)
    if cancelled is None:
        raise ToolError(f"there is no pending reminder or task #{schedule_id}")
    return f"Cancelled #{schedule_id}."


SCHEDULE_TOOLS = (reminder_add, task_add, schedule_list, schedule_cancel)
