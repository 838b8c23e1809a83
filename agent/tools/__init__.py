"""Tool declarations, the registry, and the tool families."""

from agent.tools.builtin import BUILTIN_TOOLS
from agent.tools.registry import (
    Risk,
    Tool,
    ToolContext,
    ToolDeps,
    ToolError,
    ToolRegistry,
    ToolResult,
    tool,
)

__all__ = [
    "BUILTIN_TOOLS",
    "Risk",
    "Tool",
    "ToolContext",
    "ToolDeps",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "default_registry",
    "tool",
]


def default_registry(*, mail: bool = True) -> ToolRegistry:
    """Every built-in tool; `mail=False` leaves out the mail tools (no mailbox configured)."""
    from agent.tools.goals import GOAL_TOOLS
    from agent.tools.memory import MEMORY_TOOLS
    from agent.tools.messaging import MESSAGING_TOOLS
    from agent.tools.schedule import SCHEDULE_TOOLS
    from agent.tools.shell import SHELL_TOOLS
    from agent.tools.web import WEB_TOOLS
    from agent.tools.workspace import WORKSPACE_TOOLS

    if mail:  # the mail modules only with a mailbox
        from agent.tools.mail import MAIL_TOOLS
    return ToolRegistry(
        [
            *BUILTIN_TOOLS,
            *GOAL_TOOLS,
            *SCHEDULE_TOOLS,
            *WORKSPACE_TOOLS,
            *SHELL_TOOLS,
            *WEB_TOOLS,
            *MESSAGING_TOOLS,
            *MEMORY_TOOLS,
            *(MAIL_TOOLS if mail else ()),
        ]
    )
