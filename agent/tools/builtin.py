"""Tools every Steward has: the time."""

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


BUILTIN_TOOLS = (current_time,)  # the goal tools live in agent/tools/goals.py
