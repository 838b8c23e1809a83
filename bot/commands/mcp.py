"""/mcp: the MCP servers, their state and their tools (owner only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.config import Settings
from bot.commands.privacy import IN_PRIVATE, in_group
from bot.commands.registry import CommandGroup
from memory.people import Chat

if TYPE_CHECKING:
    from agent.mcp import McpSupervisor

__all__ = ["group"]

group = CommandGroup()

mcp_command = group.command(
    "mcp",
    summary="the MCP servers: state and tools",
    usage="/mcp",
    example="/mcp",
    owner_only=True,
)


@mcp_command
async def show_mcp(settings: Settings, chat: Chat, mcp: McpSupervisor | None = None) -> str:
    if in_group(chat):  # the configuration's paths and the servers' state: the owner's
        return IN_PRIVATE
    states = mcp.states() if mcp is not None else []
    if not states:
        return (
            f"No MCP servers are configured. Add them to {settings.mcp_config_path} "
            '({"mcpServers": {…}}, see the README) and restart; `steward mcp check` tests them.'
        )
    tools = {t.name: t for t in mcp.tools()} if mcp is not None else {}
    lines: list[str] = []
    for state in states:
        head = f"{state.name} ({state.transport}): {state.status}"
        if state.restarts:
            head += f", restarted {state.restarts}x"
        lines.append(head)
        if state.error:
            lines.append(f"  last problem: {state.error}")
        for name in state.tools:
            tool = tools.get(name)
            risk = tool.risk.value if tool is not None else "?"
            lines.append(f"  {name} ({risk})")
        if state.status == "up" and not state.tools:
            lines.append("  (no tools)")
    return "\n".join(lines)
