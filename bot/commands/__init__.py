"""The command registry and the command groups of each feature.

A handler names what it needs (`bot/commands/handlers.py`); subcommands are declared with
`Command.sub(pattern)` and parsed before it runs (`bot/commands/arguments.py`).
"""

from bot.commands import (
    access,
    approvals,
    audit,
    briefing,
    conversation,
    core,
    goals,
    mail,
    mcp,
    memory,
    remind,
    settings,
    web,
)
from bot.commands.registry import (
    Command,
    CommandCall,
    CommandDeps,
    CommandGroup,
    Invocation,
    UsageError,
    parse_command,
)

__all__ = [
    "Command",
    "CommandCall",
    "CommandDeps",
    "CommandGroup",
    "Invocation",
    "UsageError",
    "build_commands",
    "parse_command",
]


def build_commands() -> CommandGroup:
    root = CommandGroup()
    root.include(core.group)
    root.include(approvals.group)
    root.include(audit.group)
    root.include(access.group)
    root.include(remind.group)
    root.include(goals.group)
    root.include(briefing.group)
    root.include(settings.group)
    root.include(memory.group)
    root.include(conversation.group)
    root.include(mail.group)
    root.include(web.group)
    root.include(mcp.group)
    return root
