"""Tools every Steward has: the time, and the owner's goals."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from agent.tools.registry import Risk, ToolContext, ToolError, tool

__all__ = ["BUILTIN_TOOLS"]


@tool(risk=Risk.READ)
async def current_time(ctx: ToolContext, timezone: str | None = None) -> str:
    """Tell the current date and time.

    Args:
        timezone: An IANA timezone such as Europe/Berlin; the user's own when omitted.
    """
    try:
        zone = ZoneInfo(timezone or ctx.timezone)
    except (KeyError, ValueError) as exc:
        raise ToolError(f"unknown timezone {timezone!r}") from exc
    return ctx.clock.now().astimezone(zone).strftime("%A %Y-%m-%d %H:%M %Z")


@tool(risk=Risk.READ)
async def goal_list(ctx: ToolContext) -> str:
    """List the user's active goals with their ids and next steps."""
    goals = await ctx.stores.goals.active(ctx.user.id)
    if not goals:
        return "No active goals."
    return "\n".join(
        f"#{g.id} {g.title}" + (f" (next: {g.next_step})" if g.next_step else "") for g in goals
    )


@tool(risk=Risk.WRITE_INTERNAL)
async def goal_add(ctx: ToolContext, title: str) -> str:
    """Start tracking a new goal for the user.

    Args:
        title: The goal in a few words, e.g. "Run a half marathon in spring".
    """
    title = title.strip()
    if not title:
        raise ToolError("a goal needs a title")
    goal = await ctx.stores.goals.add(ctx.user.id, title, tainted=ctx.tainted)
    return f"Goal #{goal.id} added: {goal.title}"


BUILTIN_TOOLS = (current_time, goal_list, goal_add)
