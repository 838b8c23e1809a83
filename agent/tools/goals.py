"""Tools for the user's goals: list them, start one, log progress, set the next step, close."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal
from zoneinfo import ZoneInfo

from agent.goals import GoalError, Goals, earlier_note
from agent.recall import group_scope
from agent.scheduler.when import WhenError, parse_cadence
from agent.tools.registry import Risk, ToolContext, ToolError, ToolResult, tool
from memory.goals import GoalStatus
from memory.longterm import Source

__all__ = ["GOAL_TOOLS"]


IN_PRIVATE = (
    "In a group everyone reads the reply: the user's goals are listed in their private chat."
)


def _goals(ctx: ToolContext) -> Goals:
    return Goals(
        ctx.stores, ctx.deps.scheduler, ctx.deps.timezone, ctx.deps.memory, clock=ctx.clock
    )


@tool(risk=Risk.READ)
async def goal_list(ctx: ToolContext) -> str | ToolResult:
    """List the user's active goals with ids, next steps, due dates and last progress."""
    if group_scope(ctx.chat) is not None:
        return IN_PRIVATE
    text = await _goals(ctx).list_text(ctx.user)
    planted = [g.id for g in await ctx.stores.goals.active(ctx.user.id) if g.tainted]
    if planted:  # a goal changed by a turn that read outside content
        return ToolResult(text, source="goal:" + ",".join(f"#{i}" for i in planted))
    return text


@tool(risk=Risk.WRITE_INTERNAL)
async def goal_add(
    ctx: ToolContext, title: str, due: str | None = None, cadence: str | None = None
) -> str:
    """Start tracking a new goal for the user.

    Args:
        title: The goal in a few words, e.g. "Run a half marathon in spring".
        due: Optional due date in the user's words, e.g. "2026-06-01" or "next friday".
        cadence: Optional check-in cadence: "daily", "weekly", "every monday 9:00", "every 3 days".
    """
    goals = _goals(ctx)
    zone = ZoneInfo(ctx.timezone)
    due, cadence = _given(due), _given(cadence)  # a blank due raised ValueError (R199)
    try:
        due_at = await goals.due_by(ctx.user, due) if due else None
        recurrence = parse_cadence(cadence, ctx.clock.now(), zone) if cadence else None
        goal = await goals.add(
            ctx.user,
            title,
            tainted=ctx.tainted,
            due=due_at,
            sources=ctx.sources,
            made_in_turn=ctx.turn_id,
        )
    except (GoalError, WhenError) as exc:
        raise ToolError(str(exc)) from None
    # the day the words were read as, so the model can tell the user ("March": Wed 2027-03-31)
    added = f"Goal #{goal.id} added: {goal.title}" + (
        f" (due {due_at.astimezone(zone):%a %Y-%m-%d})" if due_at else ""
    )
    added += earlier_note(await goals.closed_alike(ctx.user, goal))
    if recurrence is not None:
        try:
            goal = await goals.set_cadence(
                ctx.user, goal.id, recurrence, chat=ctx.chat, address=ctx.address
            )
        except GoalError as exc:  # the goal stands; say so, and why check-ins did not
            return f"{added}; check-ins not set: {exc}"
    where = " in the user's private chat" if group_scope(ctx.chat) is not None else ""
    return added + (f" (check-ins {goal.cadence}{where})" if goal.cadence else "")


def _given(value: str | None) -> str | None:
    """An optional argument the model sent blank (" ") is one it did not give."""
    return value if value and value.strip() else None


def _goal_id(arguments: dict[str, Any]) -> int:
    try:
        return int(arguments.get("goal_id", 0))
    except (TypeError, ValueError):
        return 0


async def _goal_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The goal by its title, not only its number (review 62), then what would change."""
    goal_id = _goal_id(arguments)
    goal = await ctx.stores.goals.get(ctx.user.id, goal_id)
    title = f"goal #{goal_id} {goal.title!r}" if goal else f"goal #{goal_id} (none of yours)"
    rest = "\n".join(
        f"{k}: {' '.join(str(v).split())}" for k, v in arguments.items() if k != "goal_id"
    )
    return f"{title}\n{rest}" if rest else title


async def _goal_fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """R222: bound to the goal the card named (or to there being none): a card that said
    "(none of yours)" dropped the goal the owner added after it under that id."""
    goal_id = _goal_id(arguments)
    goal = await ctx.stores.goals.get(ctx.user.id, goal_id)
    if goal is None:
        return f"goal:{goal_id}:none"
    row = [goal.title, goal.status.value, goal.created_at]
    digest = hashlib.sha256(json.dumps(row).encode()).hexdigest()
    return f"goal:{goal_id}:{digest}"


async def _as_approved(ctx: ToolContext, goal_id: int) -> None:
    """R222: the goal is still the one approved, checked again after the approval's awaits."""
    approved = ctx.approved_fingerprint
    if approved is not None and await _goal_fingerprint(ctx, {"goal_id": goal_id}) != approved:
        raise ToolError(f"refused: goal #{goal_id} changed after it was approved; nothing changed")


@tool(risk=Risk.WRITE_INTERNAL, preview=_goal_preview, fingerprint=_goal_fingerprint)
async def goal_progress(ctx: ToolContext, goal_id: int, note: str) -> str:
    """Log progress on a goal (dated today) when the user reports some.

    Args:
        goal_id: The goal's id.
        note: What was done, e.g. "ran 8 km in 45 minutes".
    """
    await _as_approved(ctx, goal_id)
    try:
        await _goals(ctx).note(
            ctx.user,
            goal_id,
            note,
            source=Source.MODEL_INFERRED,
            tainted=ctx.tainted,
            label=ctx.label,
        )
    except GoalError as exc:
        raise ToolError(str(exc)) from None
    return f"Noted on goal #{goal_id}."


@tool(risk=Risk.WRITE_INTERNAL, preview=_goal_preview, fingerprint=_goal_fingerprint)
async def goal_next_step(ctx: ToolContext, goal_id: int, next_step: str) -> str:
    """Record the next concrete step for a goal.

    Args:
        goal_id: The goal's id.
        next_step: The next step, e.g. "book a physio appointment".
    """
    await _as_approved(ctx, goal_id)
    try:
        await _goals(ctx).next_step(ctx.user, goal_id, next_step, label=ctx.label)
    except GoalError as exc:
        raise ToolError(str(exc)) from None
    return f"Next step for goal #{goal_id}: {next_step.strip()}"


@tool(risk=Risk.WRITE_INTERNAL, preview=_goal_preview, fingerprint=_goal_fingerprint)
async def goal_close(ctx: ToolContext, goal_id: int, status: Literal["done", "dropped"]) -> str:
    """Close a goal: done when achieved, dropped when the user gives it up.

    Args:
        goal_id: The goal's id.
        status: "done" or "dropped".
    """
    await _as_approved(ctx, goal_id)
    try:
        await _goals(ctx).close(
            ctx.user,
            goal_id,
            GoalStatus(status),
            source=Source.MODEL_INFERRED,
            tainted=ctx.tainted,
            label=ctx.label,
        )
    except GoalError as exc:
        raise ToolError(str(exc)) from None
    return f"Goal #{goal_id} is {status}."


GOAL_TOOLS = (goal_list, goal_add, goal_progress, goal_next_step, goal_close)
