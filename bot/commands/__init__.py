"""The command registry and the command groups of each feature."""

from bot.commands import (
    access,
    approvals,
    audit,
    briefing,
    core,
    goals,
    memory,
    remind,
    settings,
)
from bot.commands.registry import (
    Command,
    CommandCall,
    CommandContext,
    CommandGroup,
    UsageError,
    parse_command,
)

__all__ = [
    "Command",
    "CommandCall",
    "CommandContext",
    "CommandGroup",
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
    return root
